//! `protobus topics apply` against a real broker: topics created with the
//! contract's settings (read back with DescribeConfigs), config differences
//! applied with the topic's other settings kept, partitions added only when
//! asked, nothing changed by a dry run or a second run.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::Value;

fn apply(prefix: &str, extra: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["topics", "apply", "--topic-prefix", prefix])
        .args(extra)
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run protobus topics apply");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty() || output.status.success(), "{stderr}");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn by_topic(json_lines: &str) -> HashMap<String, Value> {
    json_lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["topic"].as_str().unwrap().to_owned(), v))
        .collect()
}

fn partitions(kafka: &common::Kafka, topic: &str) -> Option<usize> {
    let consumer: rdkafka::consumer::BaseConsumer = kafka.config().create().unwrap();
    let metadata = rdkafka::consumer::Consumer::fetch_metadata(
        &consumer,
        Some(topic),
        Duration::from_secs(10),
    )
    .unwrap();
    metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_provisions_the_contracts_topics_and_a_second_run_changes_nothing() {
    let kafka = common::kafka().await;
    let admin: AdminClient<DefaultClientContext> = kafka.config().create().unwrap();
    let prefix = format!("{}.", common::unique_name("apply"));
    let orders = format!("{prefix}shop.orders");

    // A dry run on an empty prefix changes nothing.
    let (ok, dry) = apply(&prefix, &["--dry-run"]);
    assert!(ok, "{dry}");
    assert!(dry.contains("dry run: 4 topic(s) would change"), "{dry}");
    assert_eq!(
        partitions(&kafka, &orders),
        None,
        "a dry run created a topic"
    );

    // shop.orders exists already: one partition, a day's retention, and a
    // setting of its own that apply must keep.
    let existing = NewTopic::new(&orders, 1, TopicReplication::Fixed(1))
        .set("retention.ms", "86400000")
        .set("max.message.bytes", "2000000");
    admin
        .create_topics([&existing], &AdminOptions::new())
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();

    let (ok, first) = apply(&prefix, &["--format", "json"]);
    assert!(ok, "{first}");
    let first = by_topic(&first);
    assert_eq!(first.len(), 4, "{first:?}");
    let orders_plan = &first[&orders];
    assert_eq!(orders_plan["action"], "update", "{orders_plan}");
    assert_eq!(
        orders_plan["configs"],
        serde_json::json!([{ "name": "retention.ms", "from": "86400000", "to": "604800000" }])
    );
    let note = orders_plan["notes"][0].as_str().unwrap();
    assert!(
        note.contains("has 1 partition(s), the contract declares 3: --add-partitions"),
        "{note}"
    );
    for created in ["shop.orders.dlq", "shop.customers", "shop.customers.dlq"] {
        assert_eq!(first[&format!("{prefix}{created}")]["action"], "create");
    }

    let orders_configs = common::topic_configs(&kafka.config(), &orders).await;
    assert_eq!(orders_configs["retention.ms"], "604800000");
    assert_eq!(
        orders_configs["max.message.bytes"], "2000000",
        "its own setting is kept"
    );
    assert_eq!(orders_configs["min.insync.replicas"], "1");
    let dead_letters = common::topic_configs(&kafka.config(), &format!("{orders}.dlq")).await;
    assert_eq!(dead_letters["retention.ms"], "2419200000");
    assert_eq!(partitions(&kafka, &format!("{orders}.dlq")), Some(1));
    assert_eq!(
        partitions(&kafka, &format!("{prefix}shop.customers")),
        Some(1)
    );
    assert_eq!(
        partitions(&kafka, &orders),
        Some(1),
        "partitions only when asked"
    );

    let (ok, second) = apply(&prefix, &[]);
    assert!(ok, "{second}");
    assert!(
        second.ends_with("no changes: every topic is as the contract declares\n"),
        "{second}"
    );

    let (ok, grown) = apply(&prefix, &["--add-partitions"]);
    assert!(ok, "{grown}");
    assert!(grown.contains("partitions 1 -> 3"), "{grown}");
    assert_eq!(partitions(&kafka, &orders), Some(3));
    let (_, third) = apply(&prefix, &[]);
    assert!(third.contains("no changes"), "{third}");
}
