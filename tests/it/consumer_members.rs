//! A consumer of several members against the real broker: each joins the
//! group on its own (static membership too), the partitions are spread
//! among them, every event is handled once and every partition committed
//! to its end.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protobus::contract::ShopOrdersDispatcher;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{ConsumerSettings, EventConsumer};
use rdkafka::consumer::{BaseConsumer, Consumer as _};

const PARTITIONS: i32 = 6;

/// Partitions in a member's assignment as the broker describes it (the
/// consumer protocol's: version, then per topic its name and partitions).
fn assigned_partitions(assignment: &[u8]) -> usize {
    let mut at = 2;
    let mut take = |n: usize| {
        let bytes = &assignment[at..at + n];
        at += n;
        bytes
    };
    let count = |bytes: &[u8]| i32::from_be_bytes(bytes.try_into().unwrap()).max(0) as usize;
    let topics = count(take(4));
    let mut partitions = 0;
    for _ in 0..topics {
        let name = i16::from_be_bytes(take(2).try_into().unwrap()).max(0) as usize;
        take(name);
        let n = count(take(4));
        take(4 * n);
        partitions += n;
    }
    partitions
}

/// Per member of `group` that holds partitions, how many it holds.
fn assignments(kafka: &common::Kafka, group: &str) -> Vec<usize> {
    let admin: BaseConsumer = kafka.config().create().unwrap();
    let groups = admin
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .unwrap();
    let Some(group) = groups.groups().first() else {
        return Vec::new();
    };
    group
        .members()
        .iter()
        .filter_map(|m| m.assignment())
        .map(assigned_partitions)
        .filter(|&n| n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_of_two_members_spreads_the_partitions_and_handles_every_event_once() {
    const EVENTS: usize = 1200;
    let t = common::orders_topic("members", PARTITIONS).await;
    let sends = (0..EVENTS).map(|i| {
        let order = OrderPlaced {
            order_id: format!("members-{i}"),
            customer_id: format!("c{}", i % 60),
            ..OrderPlaced::default()
        };
        let producer = &t.producer;
        async move { producer.send(&order).await.unwrap().event_id }
    });
    let ids = futures_util::future::join_all(sends).await;
    let group = common::unique_name("members");
    let mut settings = ConsumerSettings::new(t.kafka.bootstrap(), &group);
    settings.topic_prefix = t.prefix.clone();
    settings.members = 2;
    // One name for the consumer: each member must still join as its own.
    settings.kafka.set("group.instance.id", &group);
    let handled = common::Recorder::default();
    let consumer = EventConsumer::new(
        settings,
        t.producer.registry().clone(),
        ShopOrdersDispatcher(handled.clone()),
    )
    .unwrap();
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut spread = Vec::new();
    while !(handled.has_all(ids.iter()) && spread.len() == 2) {
        assert!(
            Instant::now() < deadline,
            "after 60 s: {} of {EVENTS} events handled, members holding partitions {spread:?}",
            handled.handled().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        spread = assignments(&t.kafka, &group);
    }
    assert_eq!(
        spread.iter().sum::<usize>(),
        PARTITIONS as usize,
        "{spread:?}"
    );
    running.stop().await;

    let mut taken = handled.handled();
    taken.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(taken, expected, "every event handled once");
    // The members' counters add up in the consumer's one `ConsumerStats`.
    assert_eq!(stats.handled.load(Ordering::Relaxed), EVENTS as u64);
    assert_eq!(stats.in_flight.load(Ordering::Relaxed), 0);
    assert_eq!(
        t.kafka.committed_offsets(&group, &t.topic, PARTITIONS),
        t.kafka.end_offsets(&t.topic, PARTITIONS),
        "every partition committed to its end"
    );
}
