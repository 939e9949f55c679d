//! The consumer's curve: one typed consumer (one group member) reading a
//! topic of 1, 12, 120 and 600 partitions, filled with the same 200 000
//! events of 100 B spread over them by key. For each: events per second from
//! the first event to the last, the longest wait between two events, and
//! this process's resident memory while it reads (sampled every 20 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, EventProducer, HandlerError,
    SchemaRegistry, SendOptions,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::Curve;

const EVENTS: usize = 200_000;

/// Counts events; notes the first and the last.
#[derive(Clone, Default)]
struct Count {
    seen: Arc<AtomicUsize>,
    first_ns: Arc<AtomicU64>,
    last_ns: Arc<AtomicU64>,
    /// The longest wait between two events, in nanoseconds.
    longest_gap_ns: Arc<AtomicU64>,
    epoch: Arc<std::sync::OnceLock<Instant>>,
}

impl Count {
    fn tick(&self) {
        let epoch = *self.epoch.get_or_init(Instant::now);
        let now = epoch.elapsed().as_nanos() as u64;
        if self.seen.fetch_add(1, Ordering::Relaxed) == 0 {
            self.first_ns.store(now, Ordering::Relaxed);
        } else {
            let gap = now.saturating_sub(self.last_ns.load(Ordering::Relaxed));
            self.longest_gap_ns.fetch_max(gap, Ordering::Relaxed);
        }
        self.last_ns.store(now, Ordering::Relaxed);
    }
}

impl ShopOrdersHandler for Count {
    async fn order_placed(&self, e: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        std::hint::black_box(e);
        self.tick();
        Ok(())
    }
    async fn order_paid(&self, _: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// This process's resident memory, in MiB.
fn resident_mib() -> f64 {
    crate::memory("self").0
}

pub(crate) async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    for result in admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(60))),
        )
        .await
        .expect("create the topic")
    {
        result.expect("create the topic");
    }
}

pub(crate) async fn run(
    bootstrap: &str,
    registry: Arc<SchemaRegistry>,
    partitions: &[i32],
) -> Curve {
    let mut curve = Curve::new(
        "consumer: partitions read by one member (200 000 events of 100 B)",
        &[
            "partitions",
            "events/s",
            "resident MiB before",
            "resident MiB while reading (max)",
            "longest wait between two events ms",
        ],
    );
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for &count in partitions {
        let prefix = format!("scale-consumer-{}.", uuid::Uuid::new_v4().simple());
        create_topic(bootstrap, &format!("{prefix}{}", OrderPlaced::TOPIC), count).await;
        let producer = EventProducer::new(&config, registry.clone())
            .expect("producer")
            .with_topic_prefix(&prefix);
        let mut pending = Vec::with_capacity(EVENTS);
        for i in 0..EVENTS {
            let event = OrderPlaced {
                order_id: format!("order-{i:08}"),
                customer_id: format!("customer-{}", i % 100),
                coupon_code: "x".repeat(60),
                ..OrderPlaced::default()
            };
            pending.push(
                producer
                    .enqueue(&event, SendOptions::default())
                    .await
                    .expect("enqueue"),
            );
        }
        for delivery in pending {
            delivery.await.expect("fill the topic");
        }
        drop(producer);

        let before = resident_mib();
        let count_handler = Count::default();
        let mut settings = ConsumerSettings::new(
            bootstrap,
            &format!("scale-{}", uuid::Uuid::new_v4().simple()),
        );
        settings.topic_prefix = prefix.clone();
        let consumer = EventConsumer::new(
            settings,
            registry.clone(),
            ShopOrdersDispatcher(count_handler.clone()),
        )
        .expect("consumer");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(consumer.run(async move {
            let _ = stopped.await;
        }));
        let mut peak = before;
        let deadline = Instant::now() + Duration::from_secs(600);
        while count_handler.seen.load(Ordering::Relaxed) < EVENTS {
            assert!(
                Instant::now() < deadline,
                "the consumer did not read every event"
            );
            peak = peak.max(resident_mib());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak = peak.max(resident_mib());
        let _ = stop.send(());
        running.await.unwrap().expect("consumer run");
        let seconds = (count_handler.last_ns.load(Ordering::Relaxed)
            - count_handler.first_ns.load(Ordering::Relaxed)) as f64
            / 1e9;
        curve.row(vec![
            count.to_string(),
            format!("{:.0}", (EVENTS - 1) as f64 / seconds),
            format!("{before:.0}"),
            format!("{peak:.0}"),
            format!(
                "{:.1}",
                count_handler.longest_gap_ns.load(Ordering::Relaxed) as f64 / 1e6
            ),
        ]);
    }
    curve
}
