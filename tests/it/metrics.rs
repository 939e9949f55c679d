//! Each process's Prometheus endpoint: the registry and the ingest service
//! as `protobus` processes, the consumer runtime in this one. Every check
//! scrapes before and after real work and compares what moved.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_ingest::api;
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_runtime::{ConsumerSettings, Event, EventConsumer, EventContext, HandlerError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_and_ingest_metrics_move_with_their_requests() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("metrics"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 1).await;
    let (registry_at, registry_metrics) = (common::free_address(), common::free_address());
    let _registry = common::protobus(&[
        "registry",
        "--listen",
        &registry_at.to_string(),
        "--topic",
        &common::unique_name("_schemas"),
        "--metrics-listen",
        &registry_metrics.to_string(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("http://{registry_at}/health"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the registry did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ingest_at, ingest_metrics) = (common::free_address(), common::free_address());
    let _ingest = common::protobus(&[
        "ingest",
        "--listen",
        &ingest_at.to_string(),
        "--registry",
        &format!("http://{registry_at}"),
        "--topic-prefix",
        &prefix,
        "--metrics-listen",
        &ingest_metrics.to_string(),
    ]);
    let registry_before = common::scrape(registry_metrics).await;
    let ingest_before = common::scrape(ingest_metrics).await;

    let mut client = loop {
        match IngestClient::connect(format!("http://{ingest_at}")).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let mut events: Vec<api::Event> = (0..10)
        .map(|i| common::ingest_order(&format!("o-{i}")))
        .collect();
    events.push(common::ingest_order("")); // no key: INVALID_ARGUMENT
    client
        .publish(api::PublishRequest {
            events,
            request_id: 1,
        })
        .await
        .unwrap();

    let ingest = common::scrape(ingest_metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        common::value(&ingest, name, labels) - common::value(&ingest_before, name, labels)
    };
    let publish_ok = [("method", "Publish"), ("code", "OK")];
    assert_eq!(
        moved("protobus_ingest_requests_total", &publish_ok),
        1.0,
        "{ingest}"
    );
    assert_eq!(
        moved(
            "protobus_ingest_request_duration_seconds_count",
            &[("method", "Publish")]
        ),
        1.0
    );
    assert_eq!(
        moved("protobus_ingest_events_total", &[("outcome", "ack")]),
        10.0
    );
    assert_eq!(
        moved(
            "protobus_ingest_events_total",
            &[("outcome", "INVALID_ARGUMENT")]
        ),
        1.0
    );
    let produced = [
        ("topic", topic.as_str()),
        ("event_type", OrderPlaced::FULL_NAME),
    ];
    assert_eq!(
        moved("protobus_events_produced_total", &produced),
        10.0,
        "{ingest}"
    );
    assert_eq!(
        common::value(&ingest, "protobus_producer_queue_depth", &[]),
        0.0
    );

    // The ingest service registered OrderPlaced's schema on first use.
    let registry = common::scrape(registry_metrics).await;
    let register = [
        ("method", "POST"),
        ("endpoint", "/subjects/{subject}/versions"),
        ("status", "200"),
    ];
    assert!(
        common::value(&registry, "protobus_registry_requests_total", &register)
            > common::value(
                &registry_before,
                "protobus_registry_requests_total",
                &register
            ),
        "{registry}"
    );
    assert!(
        common::value(
            &registry,
            "protobus_registry_request_duration_seconds_count",
            &[("endpoint", "/subjects/{subject}/versions")]
        ) >= 1.0
    );
}

/// Refuses orders whose id starts with "bad", for good; takes 400 ms over
/// each, so that lag can be seen while events wait.
#[derive(Clone, Default)]
struct Orders(Arc<AtomicUsize>);

impl ShopOrdersHandler for Orders {
    async fn order_placed(&self, e: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.0.fetch_add(1, Ordering::Relaxed);
        if e.order_id.starts_with("bad") {
            return Err(HandlerError::permanent("no such customer"));
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_runtime_reports_handled_failed_dead_lettered_and_lag() {
    let metrics = common::free_address();
    protobus::prometheus::install(metrics).unwrap();
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("metrics"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 2).await;
    kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    for id in ["good-1", "good-2", "bad-1", "good-3", "good-4", "good-5"] {
        let order = OrderPlaced {
            order_id: id.into(),
            ..OrderPlaced::default()
        };
        producer.send(&order).await.unwrap();
    }

    let orders = Orders::default();
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("metrics"));
    settings.topic_prefix = prefix.clone();
    settings.kafka.set("statistics.interval.ms", "500");
    let consumer =
        EventConsumer::new(settings, schemas, ShopOrdersDispatcher(orders.clone())).unwrap();
    let running = common::start_consumer(consumer);

    let by_type = [
        ("topic", topic.as_str()),
        ("event_type", OrderPlaced::FULL_NAME),
    ];
    // Each partition's lag series, `None` while it is not reported.
    let lag = |text: &str| -> Vec<Option<f64>> {
        (0..2)
            .map(|p| {
                let partition = p.to_string();
                common::series(
                    text,
                    "protobus_consumer_lag",
                    &[("topic", topic.as_str()), ("partition", partition.as_str())],
                )
            })
            .collect()
    };
    // While events wait for the slow handler, they are lag; then none is.
    // (librdkafka reports statistics when the consumer polls, which it does
    // between events, not while a handler runs.)
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most_lag = 0.0_f64;
    let text = loop {
        let text = common::scrape(metrics).await;
        let lags = lag(&text);
        most_lag = most_lag.max(lags.iter().flatten().sum());
        if common::value(&text, "protobus_events_consumed_total", &by_type) == 5.0
            && common::value(
                &text,
                "protobus_events_dead_lettered_total",
                &[("topic", topic.as_str())],
            ) == 1.0
            && lags.iter().all(|l| *l == Some(0.0))
            && most_lag > 0.0
        {
            break text;
        }
        assert!(
            !(common::value(&text, "protobus_events_consumed_total", &by_type) >= 5.0
                && most_lag == 0.0),
            "every event was handled and no lag was ever reported: {lags:?}"
        );
        assert!(Instant::now() < deadline, "metrics did not move:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    running.stop().await;
    assert!(most_lag >= 1.0, "no lag reported while events waited");

    assert_eq!(
        common::value(&text, "protobus_handler_duration_seconds_count", &by_type),
        5.0
    );
    assert_eq!(
        common::value(
            &text,
            "protobus_events_failed_total",
            &[("topic", topic.as_str()), ("retryable", "false")]
        ),
        1.0
    );
    assert_eq!(
        common::value(
            &text,
            "protobus_events_dead_lettered_total",
            &[("topic", topic.as_str()), ("reason", "permanent")]
        ),
        1.0
    );
    // The test's producer counted its six sends.
    assert_eq!(
        common::value(&text, "protobus_events_produced_total", &by_type),
        6.0
    );
}
