//! The Go and Python recipes of `docs/languages.md` (`examples/go`,
//! `examples/python`), end to end against the real broker, the project's
//! registry and the ingest service. Each generates its code from
//! `protobus contract export` with its own toolchain, reads events the typed
//! producer wrote, and writes or publishes events a typed handler reads:
//! the same count, and for each event the same type, key, headers and fields.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use protobus::contract::shop::common::v1::Money;
use protobus::contract::shop::orders::v1::{LineItem, OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET, ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, HandlerError, SchemaRegistry, SendOptions,
};
use serde::Deserialize;

const COUNT: usize = 10;

/// One event as a recipe prints it, and as the Rust side sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Line {
    r#type: String,
    key: String,
    headers: BTreeMap<String, String>,
    /// The event in proto3 JSON.
    event: serde_json::Value,
}

/// A topic of its own, a registry, an ingest service, and the exported contract.
struct Setup {
    kafka: common::Kafka,
    prefix: String,
    topic: String,
    schemas: Arc<SchemaRegistry>,
    ingest: std::net::SocketAddr,
    contract: tempfile::TempDir,
}

async fn setup(label: &str) -> Setup {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name(label));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 3).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let service = IngestService::new(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        producer,
        IngestSettings::default(),
    )
    .unwrap();
    let ingest = common::serve_ingest(service).await;
    let contract = tempfile::tempdir().unwrap();
    run(std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["contract", "export", "--out"])
        .arg(contract.path()));
    Setup {
        kafka,
        prefix,
        topic,
        schemas,
        ingest,
        contract,
    }
}

/// Runs `command`; its standard output, or a failed test that shows both outputs.
fn run(command: &mut std::process::Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn lines(stdout: &str) -> Vec<Line> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn example(language: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(language)
}

/// An event in proto3 JSON, as the other languages print it.
fn json_of(full_name: &str, bytes: &[u8]) -> serde_json::Value {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let descriptor = pool.get_message_by_name(full_name).unwrap();
    serde_json::to_value(DynamicMessage::decode(descriptor, bytes).unwrap()).unwrap()
}

/// `COUNT` orders from the typed producer, each with a correlation id; the
/// lines a reader in another language must print for them.
async fn send_from_rust(setup: &Setup) -> Vec<Line> {
    let producer = setup
        .kafka
        .event_producer(setup.schemas.clone(), &setup.prefix, &[]);
    let money = |units: i64| {
        Some(Money {
            currency: "EUR".into(),
            minor_units: units,
        })
    };
    let mut sent = Vec::new();
    for i in 0..COUNT {
        let event = OrderPlaced {
            order_id: format!("rs-order-{i}"),
            customer_id: format!("rs-customer-{i}"),
            lines: vec![LineItem {
                sku: format!("rs-sku-{i}"),
                quantity: 2,
                unit_price: money(100 + i as i64),
            }],
            total: money(200 + 2 * i as i64),
            placed_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + i as i64,
                nanos: 0,
            }),
            coupon_code: "RS".into(),
        };
        let correlation_id = format!("rs-checkout-{i}");
        let options = SendOptions {
            correlation_id: Some(correlation_id.clone()),
            ..SendOptions::default()
        };
        let delivery = producer.send_with(&event, options).await.expect("send");
        sent.push(Line {
            r#type: OrderPlaced::FULL_NAME.into(),
            key: event.order_id.clone(),
            headers: BTreeMap::from([
                ("protobus-event-id".into(), delivery.event_id),
                ("protobus-event-type".into(), OrderPlaced::FULL_NAME.into()),
                ("protobus-correlation-id".into(), correlation_id),
            ]),
            event: json_of(OrderPlaced::FULL_NAME, &event.encode_to_vec()),
        });
    }
    sent
}

#[derive(Clone, Default)]
struct Read(Arc<Mutex<Vec<Line>>>);

impl Read {
    fn record(&self, event: &impl Event, context: &EventContext<'_>) {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        self.0.lock().unwrap().push(Line {
            r#type: context.event_type().into(),
            key: context.key().map(text).unwrap_or_default(),
            headers: context
                .headers()
                .map(|(name, value)| (name.to_owned(), value.map(text).unwrap_or_default()))
                .collect(),
            event: json_of(context.event_type(), &event.encode_to_vec()),
        });
    }
}

impl ShopOrdersHandler for Read {
    async fn order_placed(&self, e: OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.record(&e, c);
        Ok(())
    }
    async fn order_paid(&self, e: OrderPaid, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.record(&e, c);
        Ok(())
    }
    async fn order_shipped(
        &self,
        e: OrderShipped,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(&e, c);
        Ok(())
    }
}

/// What a typed handler reads of the events `sent` (by key).
async fn read_in_rust(setup: &Setup, sent: &[Line]) -> Vec<Line> {
    let read = Read::default();
    let mut settings =
        ConsumerSettings::new(setup.kafka.bootstrap(), &common::unique_name("recipe"));
    settings.topic_prefix = setup.prefix.clone();
    let consumer = EventConsumer::new(
        settings,
        setup.schemas.clone(),
        ShopOrdersDispatcher(read.clone()),
    )
    .unwrap();
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);
    let of_sent = |lines: &[Line]| -> Vec<Line> {
        lines
            .iter()
            .filter(|l| sent.iter().any(|s| s.key == l.key))
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while of_sent(&read.0.lock().unwrap()).len() < sent.len() {
        assert!(
            Instant::now() < deadline,
            "read {} of {}; poison {}",
            of_sent(&read.0.lock().unwrap()).len(),
            sent.len(),
            stats.poison.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    assert_eq!(stats.poison.load(std::sync::atomic::Ordering::Relaxed), 0);
    of_sent(&read.0.lock().unwrap())
}

/// The same events on both sides: count, and per key the type, the fields
/// and every header the writer set.
fn assert_same(who: &str, sent: &[Line], read: &[Line]) {
    assert_eq!(read.len(), sent.len(), "{who}: {read:#?}");
    for expected in sent {
        let found = read
            .iter()
            .find(|l| l.key == expected.key)
            .unwrap_or_else(|| panic!("{who}: {} not read", expected.key));
        assert_eq!(found.r#type, expected.r#type, "{who}");
        assert_eq!(
            found.event, expected.event,
            "{who}: fields of {}",
            expected.key
        );
        for (name, value) in &expected.headers {
            assert_eq!(
                found.headers.get(name),
                Some(value),
                "{who}: header {name} of {}",
                expected.key
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_recipe_reads_writes_and_publishes_the_contract_s_events() {
    let python = common::confluent_python();
    let setup = setup("recipe-py").await;
    let dir = example("python");
    run(std::process::Command::new(dir.join("generate.sh"))
        .arg(setup.contract.path())
        .env("PYTHON", &python));
    let registry = setup.schemas.url().to_owned();
    let recipe = |args: &[&str]| {
        let mut command = std::process::Command::new(&python);
        command.arg(dir.join("shop_events.py")).args(args);
        lines(&run(&mut command))
    };
    let kafka_args = [
        "--bootstrap",
        setup.kafka.bootstrap(),
        "--registry",
        &registry,
        "--topic",
        &setup.topic,
    ];
    let count = COUNT.to_string();

    // First, so that Confluent's serializer registers the schema before
    // Protobus does (a base64 descriptor, not source text).
    let produced = recipe(&[&["produce"], &kafka_args[..], &["--count", &count]].concat());
    assert_same(
        "ProtobufSerializer → typed handler",
        &produced,
        &read_in_rust(&setup, &produced).await,
    );

    let sent = send_from_rust(&setup).await;
    let group = common::unique_name("py");
    let consumed = recipe(
        &[
            &["consume"],
            &kafka_args[..],
            &["--count", &(2 * COUNT).to_string(), "--group", &group],
        ]
        .concat(),
    );
    let consumed: Vec<Line> = consumed
        .into_iter()
        .filter(|l| l.key.starts_with("rs-"))
        .collect();
    assert_same("typed producer → ProtobufDeserializer", &sent, &consumed);

    let ingest = setup.ingest.to_string();
    let published = recipe(&[
        "publish",
        "--ingest",
        &ingest,
        "--count",
        &count,
        "--id-prefix",
        "pyi",
    ]);
    assert_same(
        "Python gRPC stub → Ingest → typed handler",
        &published,
        &read_in_rust(&setup, &published).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_go_recipe_consumes_and_publishes_the_contract_s_events() {
    let tools = common::go_tools();
    let setup = setup("recipe-go").await;
    let dir = example("go");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(std::process::Command::new(dir.join("generate.sh"))
        .arg(setup.contract.path())
        .env("PATH", &path));
    let binary = setup.contract.path().join("shopevents");
    run(std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&dir));

    let sent = send_from_rust(&setup).await;
    let group = common::unique_name("go");
    let consumed = lines(&run(std::process::Command::new(&binary).args([
        "consume",
        "-bootstrap",
        setup.kafka.bootstrap(),
        "-topic",
        &setup.topic,
        "-group",
        &group,
        "-count",
        &COUNT.to_string(),
    ])));
    assert_same("typed producer → kafka-go", &sent, &consumed);

    let published = lines(&run(std::process::Command::new(&binary).args([
        "publish",
        "-ingest",
        &setup.ingest.to_string(),
        "-count",
        &COUNT.to_string(),
    ])));
    assert_same(
        "Go gRPC client → Ingest → typed handler",
        &published,
        &read_in_rust(&setup, &published).await,
    );
}
