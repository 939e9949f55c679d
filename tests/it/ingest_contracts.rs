//! Contracts `protobus ingest` loads while it runs: a copy of `proto/` plus
//! a new event type is served without a rebuild; a second type added to the
//! sources is served after SIGHUP on the same client connection; a Rust
//! handler built from the same sources reads both. The same contract is
//! then served from a descriptor set and from the registry.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus_fixtures::extended::shop::common::v1::Money;
use protobus_fixtures::extended::shop::returns::v1::{ReturnApproved, ReturnRequested};
use protobus_fixtures::extended::{ShopReturnsDispatcher, ShopReturnsHandler};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_runtime::{ConsumerSettings, Event, EventConsumer, EventContext, HandlerError};
use tonic::transport::Channel;

const RETURNS: &str = "shop/returns/v1";

/// Starts `protobus ingest` with `args` and a client of it.
async fn ingest(
    registry: &str,
    prefix: &str,
    args: &[&str],
) -> (common::Process, IngestClient<Channel>) {
    let listen = common::free_address().to_string();
    let mut all = vec![
        "ingest",
        "--listen",
        &listen,
        "--registry",
        registry,
        "--topic-prefix",
        prefix,
    ];
    all.extend_from_slice(args);
    let process = common::protobus(&all);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(client) = IngestClient::connect(format!("http://{listen}")).await {
            return (process, client);
        }
        assert!(Instant::now() < deadline, "ingest {args:?} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(client: &mut IngestClient<Channel>, event: &impl Event) -> api::Result {
    let response = client
        .publish(api::PublishRequest {
            events: vec![api::Event {
                r#type: event_type(event).into(),
                payload: Some(Payload::Binary(event.encode_to_vec().into())),
                ..api::Event::default()
            }],
            request_id: 1,
        })
        .await
        .expect("a batch answers per event")
        .into_inner();
    response.results.into_iter().next().expect("one result")
}

fn event_type<E: Event>(_: &E) -> &'static str {
    E::FULL_NAME
}

fn acked(result: &api::Result) -> bool {
    matches!(result.outcome, Some(Outcome::Ack(_)))
}

fn requested(id: &str) -> ReturnRequested {
    ReturnRequested {
        return_id: id.into(),
        order_id: format!("order-of-{id}"),
        refund: Some(Money {
            currency: "EUR".into(),
            minor_units: 1_250,
        }),
    }
}

fn approved(id: &str) -> ReturnApproved {
    ReturnApproved {
        return_id: id.into(),
        approved_by: "desk-3".into(),
    }
}

#[derive(Clone, Default)]
struct Returns {
    requested: Arc<Mutex<Vec<ReturnRequested>>>,
    approved: Arc<Mutex<Vec<ReturnApproved>>>,
}

impl ShopReturnsHandler for Returns {
    async fn return_requested(
        &self,
        event: ReturnRequested,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.requested.lock().unwrap().push(event);
        Ok(())
    }

    async fn return_approved(
        &self,
        event: ReturnApproved,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.approved.lock().unwrap().push(event);
        Ok(())
    }
}

fn copy_file(name: &str, to: &Path) {
    let from = Path::new(protobus_fixtures::EXTENSION_PROTO_DIR).join(RETURNS);
    std::fs::create_dir_all(to.join(RETURNS)).unwrap();
    std::fs::copy(from.join(name), to.join(RETURNS).join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_event_types_are_served_from_sources_after_a_reload_and_read_by_typed_handlers() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("contracts"));
    kafka
        .create_topic(&format!("{prefix}{}", ReturnRequested::TOPIC), 2)
        .await;
    let schemas = kafka.schema_registry().await;
    let registry = schemas.url().to_owned();
    let sources = tempfile::tempdir().unwrap();
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"),
        sources.path(),
    );
    copy_file("requested.proto", sources.path());
    let dir = sources.path().to_str().unwrap();
    let (process, mut client) = ingest(&registry, &prefix, &["--contract", dir]).await;

    assert!(acked(&publish(&mut client, &requested("r-1")).await));
    let refused = publish(&mut client, &approved("r-1")).await;
    let Some(Outcome::Failure(failure)) = &refused.outcome else {
        panic!("{refused:?}");
    };
    assert_eq!(
        (failure.field.as_str(), failure.code),
        ("type", tonic::Code::InvalidArgument as i32)
    );
    assert!(
        failure
            .reason
            .contains("`shop.returns.v1.ReturnApproved` is not an event type of the contract"),
        "{}",
        failure.reason
    );

    // The second type, then SIGHUP: the same client (one connection) is
    // served the new contract once it is loaded.
    copy_file("approved.proto", sources.path());
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !acked(&publish(&mut client, &approved("r-1")).await) {
        assert!(
            Instant::now() < deadline,
            "ReturnApproved not served after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(acked(&publish(&mut client, &requested("r-2")).await));

    // A descriptor set of the same sources (no source text): the schemas
    // the registry now has, by their latest versions.
    let export = tempfile::tempdir().unwrap();
    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["contract", "export", "--proto", dir, "--out"])
        .arg(export.path())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let set = export.path().join("contract.binpb");
    let set = set.to_str().unwrap();
    let (_from_set, mut from_set) = ingest(
        &registry,
        &prefix,
        &["--descriptor-set", set, "--registration", "latest"],
    )
    .await;
    assert!(acked(&publish(&mut from_set, &requested("r-3")).await));
    assert!(acked(&publish(&mut from_set, &approved("r-3")).await));

    // The registry's own view of the contract.
    let (_from_registry, mut from_registry) = ingest(
        &registry,
        &prefix,
        &["--contract-from-registry", "--registration", "latest"],
    )
    .await;
    assert!(acked(&publish(&mut from_registry, &requested("r-4")).await));
    assert!(acked(&publish(&mut from_registry, &approved("r-4")).await));

    // A Rust handler built from the same sources reads every event, intact.
    let returns = Returns::default();
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("returns"));
    settings.topic_prefix = prefix.clone();
    let consumer =
        EventConsumer::new(settings, schemas, ShopReturnsDispatcher(returns.clone())).unwrap();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while returns.requested.lock().unwrap().len() + returns.approved.lock().unwrap().len() < 7 {
        assert!(Instant::now() < deadline, "not every event was read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
    let mut requested_ids: Vec<ReturnRequested> = returns.requested.lock().unwrap().clone();
    requested_ids.sort_by(|a, b| a.return_id.cmp(&b.return_id));
    assert_eq!(
        requested_ids,
        ["r-1", "r-2", "r-3", "r-4"].map(requested).to_vec()
    );
    let mut approved_ids = returns.approved.lock().unwrap().clone();
    approved_ids.sort_by(|a, b| a.return_id.cmp(&b.return_id));
    assert_eq!(approved_ids, ["r-1", "r-3", "r-4"].map(approved).to_vec());
}

/// A descriptor set cannot register schemas: the service says so at start
/// instead of failing each event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_set_without_registration_latest_is_refused_at_start() {
    let export = tempfile::tempdir().unwrap();
    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["contract", "export", "--out"])
        .arg(export.path())
        .output()
        .unwrap();
    assert!(exported.status.success());
    let kafka = common::kafka().await;
    let schemas = kafka.schema_registry().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["ingest", "--listen", &common::free_address().to_string()])
        .args(["--registry", schemas.url(), "--descriptor-set"])
        .arg(export.path().join("contract.binpb"))
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--registration latest"), "{stderr}");
}
