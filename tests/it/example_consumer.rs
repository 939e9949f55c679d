//! The example consumer (examples/consumer.rs) run as docker-compose.yml's
//! `consumer` service runs it, configured by environment alone: it handles
//! events of the contract topics, serves the metrics its health check asks
//! for, and stops cleanly on SIGTERM (what `docker stop` sends), here with
//! two members in its one process.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::Event;
use protobus_runtime::instruments::EVENTS_CONSUMED;

/// An example binary, built now (a no-op when scripts/test.sh built the
/// examples already): a stale one would test old code.
fn example(name: &str) -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "--message-format=json",
            "--example",
            name,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build --example");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == name)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo named no executable for example {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_handles_events_serves_metrics_and_stops_on_sigterm() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("example"));
    for topic in [OrderPlaced::TOPIC, CustomerRegistered::TOPIC] {
        kafka.create_topic(&format!("{prefix}{topic}"), 1).await;
    }
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    for i in 0..3 {
        let order = OrderPlaced {
            order_id: format!("example-{i}"),
            ..OrderPlaced::default()
        };
        producer.send(&order).await.expect("sent");
    }

    let metrics = common::free_address();
    let mut consumer = common::Process(
        Command::new(example("consumer"))
            .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
            .env("SCHEMA_REGISTRY_URL", schemas.url())
            .env("PROTOBUS_GROUP", common::unique_name("example"))
            .env("PROTOBUS_TOPIC_PREFIX", &prefix)
            .env("PROTOBUS_CONSUMER_MEMBERS", "2")
            .env("PROTOBUS_METRICS_LISTEN", metrics.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example consumer"),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = common::scrape(metrics).await;
        let consumed = common::value(
            &text,
            EVENTS_CONSUMED,
            &[("event_type", OrderPlaced::FULL_NAME)],
        );
        if consumed >= 3.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the example consumer handled {consumed} of 3 events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let pid = consumer.0.id().to_string();
    let signalled = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = consumer.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
}
