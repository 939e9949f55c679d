//! Wire compatibility with Confluent's own Protobuf serializer and
//! deserializer (Python `confluent-kafka`), with Python classes generated from
//! `proto/` by `grpc_tools.protoc` as a Python team makes them: records the
//! typed producer writes are read by `ProtobufDeserializer`, and records
//! `ProtobufSerializer` writes reach the generated handler, through the real
//! broker and registry.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus::contract::shop::common::v1::Money;
use protobus::contract::shop::orders::v1::{LineItem, OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_registry::Registry;
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, EventProducer, HandlerError,
    SchemaRegistry,
};
use rdkafka::ClientConfig;

const COUNT: usize = 20;

/// An order as handled, with its record key.
type Keyed = (OrderPlaced, Option<Vec<u8>>);

#[derive(Clone, Default)]
struct Orders(Arc<Mutex<Vec<Keyed>>>);

impl ShopOrdersHandler for Orders {
    async fn order_placed(
        &self,
        event: OrderPlaced,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.0
            .lock()
            .unwrap()
            .push((event, context.key().map(<[u8]>::to_vec)));
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

/// Runs a consumer of the orders topic behind `prefix` until it has handled
/// `count` orders; returns them with the consumer's counters.
async fn read_orders(
    kafka: &common::Kafka,
    schemas: Arc<SchemaRegistry>,
    prefix: String,
    count: usize,
) -> (Vec<Keyed>, Arc<protobus_runtime::ConsumerStats>) {
    let orders = Orders::default();
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("wire"));
    settings.topic_prefix = prefix;
    let consumer =
        EventConsumer::new(settings, schemas, ShopOrdersDispatcher(orders.clone())).unwrap();
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while orders.0.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count}; poison {}",
            orders.0.lock().unwrap().len(),
            stats.poison.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    let received = orders.0.lock().unwrap().clone();
    (received, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluents_python_serializer_and_deserializer_read_and_write_our_records() {
    let python = common::confluent_python();
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("wire"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 3).await;
    let registry = Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
        .await
        .expect("registry");
    let registry_url = common::serve_registry(registry).await;
    let schemas = Arc::new(SchemaRegistry::new(&registry_url).unwrap());

    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka.bootstrap());
    let producer = EventProducer::new(&config, schemas.clone())
        .unwrap()
        .with_topic_prefix(prefix.clone());
    let money = |currency: &str, units: i64| {
        Some(Money {
            currency: currency.into(),
            minor_units: units,
        })
    };
    for i in 0..COUNT {
        let event = OrderPlaced {
            order_id: format!("order-{i}"),
            customer_id: format!("customer-{i}"),
            lines: vec![
                LineItem {
                    sku: "a".into(),
                    quantity: 1,
                    unit_price: money("EUR", 1),
                },
                LineItem {
                    sku: "b".into(),
                    quantity: 2,
                    unit_price: money("EUR", 2),
                },
            ],
            total: money("EUR", 100 * i as i64),
            placed_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + i as i64,
                nanos: 0,
            }),
            coupon_code: format!("RS-{i}"),
        };
        producer.send(&event).await.expect("send");
    }

    let classes = common::python_classes(&python);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/wire_format.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .args([kafka.bootstrap(), &registry_url, &topic])
        .arg(classes.path())
        .arg(COUNT.to_string())
        .output()
        .await
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("python read {COUNT} Protobus records")),
        "{stdout}"
    );

    let (received, stats) = read_orders(&kafka, schemas, prefix, 2 * COUNT).await;
    let from_python: Vec<_> = received
        .iter()
        .filter(|(e, _)| e.coupon_code.starts_with("PY-"))
        .collect();
    assert_eq!(from_python.len(), COUNT);
    for (event, key) in from_python {
        let i: i64 = event.coupon_code[3..].parse().unwrap();
        assert_eq!(event.order_id, format!("order-{}", 1000 + i));
        assert_eq!(key.as_deref(), Some(event.order_id.as_bytes()));
        assert_eq!(event.total, money("USD", 7 * i));
        assert_eq!(event.placed_at.as_ref().unwrap().seconds, 1_800_000_000 + i);
        assert_eq!(event.lines[0].quantity, 3);
    }
    assert_eq!(stats.poison.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_whose_schema_confluents_serializer_registered_first_are_read() {
    let python = common::confluent_python();
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("wire-first"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 1).await;
    // A registry that has seen nothing: the generated class's file, sent by
    // Python as a base64 descriptor, is the first registration.
    let registry = Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
        .await
        .expect("registry");
    let registry_url = common::serve_registry(registry).await;
    let classes = common::python_classes(&python);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/wire_format.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .args([kafka.bootstrap(), &registry_url, &topic])
        .arg(classes.path())
        .args([COUNT.to_string().as_str(), "produce-only"])
        .output()
        .await
        .expect("run the Python client");
    assert!(
        output.status.success(),
        "the Python side failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let schemas = Arc::new(SchemaRegistry::new(&registry_url).unwrap());
    let (received, stats) = read_orders(&kafka, schemas, prefix, COUNT).await;
    assert!(
        received
            .iter()
            .all(|(e, _)| e.coupon_code.starts_with("PY-"))
    );
    assert_eq!(stats.poison.load(std::sync::atomic::Ordering::Relaxed), 0);
}
