//! `protobus lag` reports, per partition, what a group committed, where the
//! partition ends and the difference, as Kafka has them.

use crate::common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protobus::contract::ShopOrdersDispatcher;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{ConsumerSettings, Event, EventConsumer};
use serde_json::Value;

fn lag(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_protobus"))
        .arg("lag")
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
        .output()
        .expect("run protobus lag")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_is_what_the_group_has_not_committed() {
    const HANDLED: usize = 30;
    const LATER: usize = 12;
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("lag"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 3).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let order = |i: usize| OrderPlaced {
        order_id: format!("order-{i}"),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    };
    for i in 0..HANDLED {
        producer.send(&order(i)).await.unwrap();
    }

    // A group handles the first 30 and commits them as it shuts down.
    let group = common::unique_name("lag");
    let count = common::Count::default();
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &group);
    settings.topic_prefix = prefix.clone();
    let consumer = EventConsumer::new(
        settings,
        schemas.clone(),
        ShopOrdersDispatcher(count.clone()),
    )
    .unwrap();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.0.load(Ordering::Relaxed) < HANDLED {
        assert!(
            Instant::now() < deadline,
            "handled {count:?}",
            count = count.0
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    for i in HANDLED..HANDLED + LATER {
        producer.send(&order(i)).await.unwrap();
    }

    // The contract's topics that exist behind the prefix: here shop.orders.
    let output = lag(&[
        "--group",
        &group,
        "--topic-prefix",
        &prefix,
        "--format",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "one row per partition: {rows:?}");
    let end = kafka.end_offsets(&topic, 3);
    let committed = kafka.committed_offsets(&group, &topic, 3);
    for row in &rows {
        assert_eq!(row["topic"], topic.as_str());
        assert_eq!(row["group"], group.as_str());
        let partition = row["partition"].as_i64().unwrap() as i32;
        assert_eq!(row["end"].as_i64(), Some(end[&partition]), "{row}");
        let committed = committed[&partition];
        assert_eq!(row["committed"].as_i64(), Some(committed), "{row}");
        assert_eq!(
            row["lag"].as_i64(),
            Some(end[&partition] - committed),
            "{row}"
        );
    }
    let total = |field: &str| rows.iter().map(|r| r[field].as_i64().unwrap()).sum::<i64>();
    assert_eq!(total("lag"), LATER as i64);
    assert_eq!(total("committed"), HANDLED as i64);
    assert_eq!(total("end"), (HANDLED + LATER) as i64);

    // The table says the same for people.
    let output = lag(&["--group", &group, "--topic", &topic]);
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    let last = table.lines().last().unwrap();
    assert!(
        last.starts_with("total") && last.ends_with(&LATER.to_string()),
        "{table}"
    );

    // A topic that does not exist is an error that names it.
    let missing = format!("{prefix}missing");
    let output = lag(&["--group", &group, "--topic", &missing]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("topic {missing} does not exist")),
        "{stderr}"
    );
}
