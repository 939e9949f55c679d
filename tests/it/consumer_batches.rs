//! Batch handlers against the real broker: batches in offset order, one at a
//! time per topic; a failing batch retried whole, then split until the event
//! at fault is alone, so only it is dead-lettered.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus::contract::{ShopOrdersBatchDispatcher, ShopOrdersBatchHandler, ShopOrdersEvent};
use protobus_runtime::dead_letter::headers as dlq;
use protobus_runtime::{
    Batched, ConsumerSettings, ConsumerStats, EventConsumer, HandlerError, RetryPolicy, SendOptions,
};

/// What the batch handler saw.
#[derive(Debug, Default)]
struct Seen {
    running: usize,
    /// Batch calls that began while another was running.
    overlaps: usize,
    /// Sizes of the batches handed over (failed ones too).
    sizes: Vec<usize>,
    /// Per partition, the offsets of the events handled, in handling order.
    offsets: BTreeMap<i32, Vec<i64>>,
    /// Order ids handled, with repeats.
    handled: Vec<String>,
    /// Calls that failed.
    failed_calls: usize,
}

/// A batch handler that takes `delay` per call and fails every batch that
/// holds an order id `fails` refuses.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    delay: Duration,
    fails: fn(&str) -> Option<HandlerError>,
}

impl ShopOrdersBatchHandler for Recorder {
    async fn handle_batch(
        &self,
        batch: Vec<Batched<'_, ShopOrdersEvent>>,
    ) -> Result<(), HandlerError> {
        {
            let mut seen = self.seen.lock().unwrap();
            seen.running += 1;
            if seen.running > 1 {
                seen.overlaps += 1;
            }
            seen.sizes.push(batch.len());
        }
        tokio::time::sleep(self.delay).await;
        let mut seen = self.seen.lock().unwrap();
        seen.running -= 1;
        for item in &batch {
            let ShopOrdersEvent::OrderPlaced(order) = &item.event else {
                panic!("only OrderPlaced is sent")
            };
            if let Some(err) = (self.fails)(&order.order_id) {
                seen.failed_calls += 1;
                return Err(err);
            }
        }
        for item in batch {
            let ShopOrdersEvent::OrderPlaced(order) = item.event else {
                unreachable!()
            };
            let context = item.context;
            seen.offsets
                .entry(context.partition())
                .or_default()
                .push(context.offset());
            seen.handled.push(order.order_id);
        }
        Ok(())
    }
}

/// Each test's own orders topic.
type Setup = common::OrdersTopic;

async fn setup(partitions: i32) -> Setup {
    common::orders_topic("batches", partitions).await
}

impl Setup {
    /// Sends the orders `ids`, in order.
    async fn send(&self, ids: &[String]) {
        let mut pending = Vec::new();
        for id in ids {
            let order = OrderPlaced {
                order_id: id.clone(),
                customer_id: "c".into(),
                ..OrderPlaced::default()
            };
            let delivery = self.producer.enqueue(&order, SendOptions::default());
            pending.push(delivery.await.unwrap());
        }
        for delivery in pending {
            delivery.await.unwrap();
        }
    }

    /// Runs a batch member of a new group until `done` holds (at most 120 s),
    /// stops it and returns its stats and group.
    async fn consume(
        &self,
        recorder: &Recorder,
        max_batch_size: usize,
        done: impl Fn(&ConsumerStats) -> bool,
    ) -> (Arc<ConsumerStats>, String) {
        let group = common::unique_name("batches");
        let mut settings = ConsumerSettings::new(self.kafka.bootstrap(), &group);
        settings.topic_prefix = self.prefix.clone();
        settings.max_batch_size = max_batch_size;
        settings.commit_interval = Duration::from_millis(100);
        settings.retry = RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(1),
            jitter: 0.0,
        };
        let schemas = self.producer.registry().clone();
        let member = EventConsumer::new(
            settings,
            schemas,
            ShopOrdersBatchDispatcher(recorder.clone()),
        )
        .unwrap();
        let stats = member.stats();
        let running = common::start_consumer(member);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(&stats) {
            assert!(Instant::now() < deadline, "timed out: {stats:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        running.stop().await;
        (stats, group)
    }
}

fn recorder(delay: Duration, fails: fn(&str) -> Option<HandlerError>) -> Recorder {
    Recorder {
        seen: Arc::default(),
        delay,
        fails,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_come_in_offset_order_one_at_a_time_and_everything_is_committed() {
    let s = setup(3).await;
    let n = 3000;
    let ids: Vec<String> = (0..n).map(|i| format!("order-{i}")).collect();
    s.send(&ids).await;
    let handler = recorder(Duration::from_millis(5), |_| None);
    let (stats, group) = s
        .consume(&handler, 200, |stats| stats.handled.load(Relaxed) == n)
        .await;

    let seen = handler.seen.lock().unwrap();
    assert_eq!(seen.overlaps, 0, "two batches of one topic ran at once");
    assert!(
        seen.sizes.iter().all(|&size| size <= 200),
        "{:?}",
        seen.sizes
    );
    let largest = seen.sizes.iter().max().copied().unwrap_or(0);
    assert!(largest > 1, "no batch held more than one event");
    for (partition, offsets) in &seen.offsets {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: offsets out of order"
        );
    }
    let delivery = common::Delivery::check(
        ids.iter().map(String::as_str),
        seen.handled.iter().map(String::as_str),
    );
    assert_eq!(delivery, common::Delivery::default());
    assert_eq!(
        s.kafka.committed_offsets(&group, &s.topic, 3),
        s.kafka.end_offsets(&s.topic, 3),
        "everything handled is committed"
    );
    common::figure(&format!(
        "batches in order: events={n} batches={} largest={largest} overlaps=0",
        stats.batches.load(Relaxed)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_event_among_500_is_found_by_splitting_and_dead_lettered_alone() {
    let s = setup(1).await;
    let ids: Vec<String> = (0..500)
        .map(|i| {
            if i == 337 {
                "poison".to_owned()
            } else {
                format!("order-{i}")
            }
        })
        .collect();
    s.send(&ids).await;
    let handler = recorder(Duration::from_millis(10), |id| {
        (id == "poison").then(|| HandlerError::retryable("the database refused it"))
    });
    let (stats, group) = s
        .consume(&handler, 500, |stats| {
            stats.handled.load(Relaxed) == 499 && stats.dead_lettered.load(Relaxed) == 1
        })
        .await;

    let seen = handler.seen.lock().unwrap();
    assert_eq!(seen.sizes[0], 500, "one batch of all 500 first");
    let handled: HashMap<&str, usize> = seen.handled.iter().fold(HashMap::new(), |mut m, id| {
        *m.entry(id.as_str()).or_default() += 1;
        m
    });
    assert_eq!(handled.len(), 499);
    assert!(handled.values().all(|&n| n == 1), "an event handled twice");
    assert!(!handled.contains_key("poison"));
    assert_eq!(
        seen.offsets[&0],
        (0..500).filter(|&o| o != 337).collect::<Vec<i64>>(),
        "the others handled in offset order"
    );
    let splits = stats.batch_splits.load(Relaxed);
    // 500 → … → 1: one split per halving on the poison's side, and the
    // whole batch tried three times before the first.
    assert!((9..=10).contains(&splits), "{splits} splits");
    let letters = s.kafka.records(&format!("{}.dlq", s.topic));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0.as_deref(), Some(&b"poison"[..]));
    assert_eq!(letters[0].2[dlq::REASON], "retries-exhausted");
    assert_eq!(letters[0].2[dlq::ERROR], "the database refused it");
    assert_eq!(stats.dead_lettered.load(Relaxed), 1);
    assert_eq!(
        s.kafka.committed_offsets(&group, &s.topic, 1),
        s.kafka.end_offsets(&s.topic, 1)
    );
    common::figure(&format!(
        "batch bisection: events=500 handled={} dead_lettered={} splits={splits} \
         batch_calls={} failed_calls={}",
        stats.handled.load(Relaxed),
        stats.dead_lettered.load(Relaxed),
        seen.sizes.len(),
        seen.failed_calls
    ));
}
