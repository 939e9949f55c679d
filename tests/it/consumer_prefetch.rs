//! What a member reads ahead of its handlers, against the real broker: the
//! records of all its partitions share one bound, librdkafka's
//! `queued.min.messages` (and `queued.max.messages.kbytes`), as they do in
//! librdkafka's own consumer queue.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protobus::contract::ShopOrdersDispatcher;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus_runtime::{ConsumerSettings, EventConsumer, EventContext, HandlerError, SendOptions};

/// Every call waits until the gate opens.
#[derive(Clone)]
struct Held(Arc<tokio::sync::Semaphore>);

impl Held {
    async fn wait(&self) -> Result<(), HandlerError> {
        drop(self.0.acquire().await.expect("the gate is never closed"));
        Ok(())
    }
}

impl protobus::contract::ShopOrdersHandler for Held {
    async fn order_placed(&self, _: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.wait().await
    }
    async fn order_paid(&self, _: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.wait().await
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.wait().await
    }
}

/// Twelve partitions hold 3 000 events each, and the member's one handler
/// call waits until the end, so nothing is taken after the first read. With
/// `queued.min.messages` at 1 000, the member holds about that many records
/// of all partitions together, plus one fetch answer in flight and the run
/// loop's read batch: not 1 000 per partition (12 000 and more).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_reads_ahead_within_one_bound_for_all_its_partitions() {
    const PARTITIONS: i32 = 12;
    const EVENTS: usize = 36_000;
    const QUEUED_MIN: u64 = 1_000;
    let t = common::orders_topic("prefetch", PARTITIONS).await;
    // Small producer batches: a fetch answers at least one whole batch per
    // partition, whatever `max.partition.fetch.bytes` says.
    let producer = t.kafka.event_producer(
        t.producer.registry().clone(),
        &t.prefix,
        &[("batch.num.messages", "50")],
    );
    let mut pending = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let order = OrderPlaced {
            order_id: format!("ahead-{i}"),
            customer_id: "c".into(),
            ..OrderPlaced::default()
        };
        pending.push(
            producer
                .enqueue(&order, SendOptions::default())
                .await
                .unwrap(),
        );
    }
    for delivery in pending {
        delivery.await.unwrap();
    }
    let mut settings = ConsumerSettings::new(t.kafka.bootstrap(), &common::unique_name("prefetch"));
    settings.topic_prefix = t.prefix.clone();
    settings.max_in_flight = 1;
    settings.commit_interval = Duration::from_millis(100);
    settings.drain_timeout = Duration::from_millis(100);
    settings
        .kafka
        .set("queued.min.messages", QUEUED_MIN.to_string())
        .set("max.partition.fetch.bytes", "8192");
    let held = Held(Arc::new(tokio::sync::Semaphore::new(0)));
    let consumer = EventConsumer::new(
        settings,
        t.producer.registry().clone(),
        ShopOrdersDispatcher(held.clone()),
    )
    .unwrap();
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);
    // Until the member has held at least the bound for a second: librdkafka
    // has stopped fetching by then, and kept stopped.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut most, mut full_since) = (0, None::<Instant>);
    loop {
        let prefetched = stats.prefetched.load(Ordering::Relaxed);
        most = most.max(prefetched);
        if prefetched < QUEUED_MIN {
            full_since = None;
        } else if full_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member never held {QUEUED_MIN} records: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("records read ahead, at most: {most}");
    assert_eq!(
        stats.handled.load(Ordering::Relaxed),
        0,
        "the one call waits"
    );
    assert!(
        most <= 3 * QUEUED_MIN,
        "the member read {most} records ahead: more than {QUEUED_MIN} (`queued.min.messages`) \
         plus a fetch answer and a read batch, so the bound is not per member"
    );
    // One permit serves every call: each gives it back.
    held.0.add_permits(1);
    running.stop().await;
}
