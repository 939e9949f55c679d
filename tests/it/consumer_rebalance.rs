//! The typed consumer across a rebalance, against the real broker: records a
//! member read ahead of a revoke belong to the assignment that ended, so a
//! partition that comes back is read again from its committed offset and
//! every event is handled.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{ConsumerSettings, EventConsumer, EventContext, HandlerError};
use rdkafka::consumer::{BaseConsumer, Consumer as _};

/// Records every event id it takes; the first call waits for `gate`.
#[derive(Clone, Default)]
struct Gated {
    taken: common::Recorder,
    gate: Arc<tokio::sync::Notify>,
    /// Set once a call was held at the gate (only the first is).
    held: Arc<AtomicBool>,
}

impl Gated {
    async fn take(&self, context: &EventContext<'_>) -> Result<(), HandlerError> {
        if !self.held.swap(true, Ordering::AcqRel) {
            self.gate.notified().await;
        }
        self.taken.record(context)
    }
}

impl ShopOrdersHandler for Gated {
    async fn order_placed(&self, _: OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.take(c).await
    }
    async fn order_paid(&self, _: OrderPaid, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.take(c).await
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.take(c).await
    }
}

/// The state of `group` as the broker describes it.
fn group_state(kafka: &common::Kafka, group: &str) -> String {
    let admin: BaseConsumer = kafka.config().create().unwrap();
    let groups = admin
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .unwrap();
    groups
        .groups()
        .first()
        .map_or_else(String::new, |g| g.state().to_owned())
}

/// A member holds records read ahead while its only handler call waits
/// (`max_in_flight` 1). A second member joins; the eager range assignor
/// revokes the partition from the first and gives it straight back (it
/// goes to the member id that sorts first). Released after the revoke is
/// queued, the first member takes a few records, serves the revoke and gives
/// the partition up with a record started but not finished. Records read
/// ahead must not outlive that assignment: taken afterwards, they would
/// open the partition again past that record, and the next assignment's
/// copy of it would be dropped as read twice, then committed past.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_read_ahead_of_a_revoke_are_read_again_when_the_partition_comes_back() {
    const EVENTS: usize = 600;
    let t = common::orders_topic("rebalance", 1).await;
    let sends = (0..EVENTS).map(|i| {
        let order = OrderPlaced {
            order_id: format!("ahead-{i}"),
            customer_id: "c".into(),
            ..OrderPlaced::default()
        };
        let producer = &t.producer;
        async move { producer.send(&order).await.unwrap().event_id }
    });
    let ids = futures_util::future::join_all(sends).await;
    let group = common::unique_name("rebalance");
    let schemas = t.producer.registry().clone();
    let start = |name: &str, handler: Gated| {
        let mut settings = ConsumerSettings::new(t.kafka.bootstrap(), &group);
        settings.topic_prefix = t.prefix.clone();
        settings.max_in_flight = 1;
        settings
            .kafka
            .set("client.id", name)
            .set("partition.assignment.strategy", "range")
            .set("heartbeat.interval.ms", "100");
        let consumer =
            EventConsumer::new(settings, schemas.clone(), ShopOrdersDispatcher(handler)).unwrap();
        common::start_consumer(consumer)
    };
    let first = Gated::default();
    let first_member = start("rebalance-a", first.clone());
    common::wait_until("the first member's first handler call to wait", || {
        first.held.load(Ordering::Acquire)
    })
    .await;
    // Holds no call: it only joins.
    let second = Gated::default();
    second.held.store(true, Ordering::Release);
    let second_member = start("rebalance-b", second.clone());
    common::wait_until("the second member's join to start a rebalance", || {
        group_state(&t.kafka, &group) == "PreparingRebalance"
    })
    .await;
    // Ten heartbeats of the first member: it has learnt of the rebalance and
    // queued the revoke, which it serves once its handler call returns.
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.gate.notify_one();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !first.taken.has_all(ids.iter()) {
        if Instant::now() > deadline {
            let taken = first.taken.handled();
            let missing: Vec<_> = ids.iter().filter(|id| !taken.contains(id)).collect();
            panic!(
                "{} of {EVENTS} events never handled (first member took {}, second {}): {missing:?}",
                missing.len(),
                taken.len(),
                second.taken.handled().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        second.taken.handled().is_empty(),
        "the partition went back to the first member"
    );
    second_member.stop().await;
    first_member.stop().await;
}
