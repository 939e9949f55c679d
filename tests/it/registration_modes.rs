//! How producers find schema ids, as Confluent's serializers choose it:
//! `--registration lookup` only finds this build's exact schemas and
//! `--registration latest` uses the subject's latest version; neither makes
//! a write request to the registry (counted by the registry's own metrics).

use crate::common;

use std::process::Output;
use std::sync::Arc;

use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_registry::{REQUESTS, Registry};
use protobus_runtime::{SchemaRegistry, wire};

const SUBJECT_WRITES: &str = "/subjects/{subject}/versions";

fn protobus(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run protobus")
}

/// Registrations (`POST /subjects/{subject}/versions`) the registry served.
async fn writes(metrics: std::net::SocketAddr) -> f64 {
    let text = common::scrape(metrics).await;
    common::value(
        &text,
        REQUESTS,
        &[("method", "POST"), ("endpoint", SUBJECT_WRITES)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_and_latest_producers_never_write_to_the_registry() {
    let _kafka = common::kafka().await;
    let (listen, metrics) = (common::free_address(), common::free_address());
    let _registry = common::protobus(&[
        "registry",
        "--store",
        "memory",
        "--listen",
        &listen.to_string(),
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    let url = format!("http://{listen}");
    common::wait_for_http(&format!("{url}/health")).await;
    let topic = format!("{}.shop.orders", common::unique_name("registration"));
    let publish = |registration: &str| {
        protobus(&[
            "publish",
            &topic,
            "--type",
            "OrderPlaced",
            r#"{"orderId":"o-1"}"#,
            "--registry",
            &url,
            "--registration",
            registration,
        ])
    };

    let refused = publish("lookup");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("not registered under subject shop.orders-shop.orders.v1.OrderPlaced"),
        "{stderr}"
    );
    assert_eq!(writes(metrics).await, 0.0, "a lookup-only producer wrote");

    let registered = protobus(&["schema", "register", "--registry", &url]);
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let after_register = writes(metrics).await;
    assert!(after_register > 0.0);

    for registration in ["lookup", "latest"] {
        let sent = publish(registration);
        assert!(
            sent.status.success(),
            "{registration}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&sent.stdout).lines().count(),
            1,
            "{registration}: one event written"
        );
        assert_eq!(
            writes(metrics).await,
            after_register,
            "a {registration} producer wrote to the registry"
        );
    }
}

/// A producer moved to another registry, as the ingest service's is when it
/// reloads its contracts, frames with that registry's schema ids rather
/// than those it found in the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_moved_to_another_registry_frames_with_its_ids() {
    let kafka = common::kafka().await;
    let registry = || async {
        let url = common::serve_registry(Registry::in_memory()).await;
        Arc::new(SchemaRegistry::new(&url).expect("registry client"))
    };
    let (first, second) = (registry().await, registry().await);
    // Another type first, so that the second registry numbers it apart.
    second.id_of::<CustomerRegistered>().await.unwrap();
    let prefix = format!("{}.", common::unique_name("moved"));
    let topic = format!("{prefix}shop.orders");
    kafka.create_topic(&topic, 1).await;
    let producer = kafka.event_producer(first.clone(), &prefix, &[]);
    let order = OrderPlaced {
        order_id: "o-1".into(),
        ..OrderPlaced::default()
    };
    producer.send(&order).await.unwrap();
    let moved = producer.clone().with_registry(second.clone());
    moved.send(&order).await.unwrap();
    // The first producer's clones keep the first registry.
    producer.send(&order).await.unwrap();

    let ids = [
        first.id_of::<OrderPlaced>().await.unwrap(),
        second.id_of::<OrderPlaced>().await.unwrap(),
    ];
    assert_ne!(ids[0], ids[1], "the registries number the type alike");
    let framed: Vec<u32> = kafka
        .records(&topic)
        .iter()
        .map(|(_, value, _)| {
            wire::read_header(value.as_deref().expect("a value"))
                .expect("a framed event")
                .schema_id
        })
        .collect();
    assert_eq!(framed, [ids[0], ids[1], ids[0]]);
}
