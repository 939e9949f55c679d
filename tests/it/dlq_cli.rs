//! `protobus dlq list` shows a dead-lettered event decoded with why it
//! failed; `protobus dlq replay` sends it back, where a fixed handler takes it.

use crate::common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{ConsumerSettings, Event, EventConsumer, EventContext, HandlerError};
use serde_json::Value;

/// Refuses orders whose id starts with "bad" until `fixed` is set.
#[derive(Clone, Default)]
struct Orders {
    fixed: Arc<std::sync::atomic::AtomicBool>,
    handled: Arc<Mutex<Vec<String>>>,
}

impl Orders {
    fn handle(&self, id: &str) -> Result<(), HandlerError> {
        if id.starts_with("bad") && !self.fixed.load(Ordering::Relaxed) {
            return Err(HandlerError::permanent(format!("no customer for {id}")));
        }
        self.handled.lock().unwrap().push(id.to_owned());
        Ok(())
    }
}

impl ShopOrdersHandler for Orders {
    async fn order_placed(&self, e: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(&e.order_id)
    }
    async fn order_paid(&self, e: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(&e.order_id)
    }
    async fn order_shipped(
        &self,
        e: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.handle(&e.order_id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_shows_why_and_replay_sends_it_back() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("dlq"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 2).await;
    kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    let (registry, url) = {
        let registry =
            protobus_registry::Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
                .await
                .unwrap();
        let url = common::serve_registry(registry).await;
        (
            Arc::new(protobus_runtime::SchemaRegistry::new(&url).unwrap()),
            url,
        )
    };
    let producer = kafka.event_producer(registry.clone(), &prefix, &[]);
    for id in ["good-1", "bad-1", "good-2", "bad-2"] {
        let order = OrderPlaced {
            order_id: id.into(),
            customer_id: "c".into(),
            ..OrderPlaced::default()
        };
        producer.send(&order).await.unwrap();
    }

    let orders = Orders::default();
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("dlq"));
    settings.topic_prefix = prefix.clone();
    let consumer = EventConsumer::new(
        settings,
        registry.clone(),
        ShopOrdersDispatcher(orders.clone()),
    )
    .unwrap();
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);
    common::wait_until("two dead letters", || {
        stats.dead_lettered.load(Ordering::Relaxed) == 2
    })
    .await;

    let protobus = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args(args)
            .args([
                "--topic",
                &topic,
                "--kafka",
                kafka.bootstrap(),
                "--registry",
                &url,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let listed: Vec<Value> = protobus(&["dlq", "list"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    for record in &listed {
        assert_eq!(record["reason"], "permanent");
        assert_eq!(record["event_type"], "shop.orders.v1.OrderPlaced");
        let id = record["event"]["orderId"].as_str().unwrap();
        assert_eq!(record["error"], format!("no customer for {id}"));
        assert_eq!(record["key"], id);
        assert_eq!(record["original"]["topic"], topic.as_str());
    }
    let filtered = protobus(&["dlq", "list", "--error", "bad-2"]);
    assert_eq!(filtered.lines().count(), 1);

    // The cause is fixed: replay, and the handler takes them.
    orders.fixed.store(true, Ordering::Relaxed);
    let replayed = protobus(&["dlq", "replay"]);
    assert_eq!(
        replayed
            .lines()
            .filter(|l| l.starts_with("replayed"))
            .count(),
        2,
        "{replayed}"
    );
    common::wait_until("the replayed orders", || {
        orders.handled.lock().unwrap().len() == 4
    })
    .await;
    running.stop().await;
    let mut handled = orders.handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, ["bad-1", "bad-2", "good-1", "good-2"]);
}
