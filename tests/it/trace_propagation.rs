//! A W3C `traceparent` and an `x-correlation-id` sent as gRPC metadata reach
//! the handler's span, so every log line of that event carries them (here in
//! the JSON log format); a follow-up event sent with `SendOptions::caused_by`
//! keeps both; an invalid trace context is dropped at the edge.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::billing::Billing;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced};
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET, ShopOrdersDispatcher};
use protobus_ingest::api;
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::{ConsumerSettings, Event, EventConsumer};
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers as _;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn the_trace_and_correlation_id_follow_the_event_into_its_handler_and_onwards() {
    let lines = common::CapturedLogs::new("info");
    lines.run(async {
        let kafka = common::kafka().await;
        let prefix = format!("{}.", common::unique_name("trace"));
        let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
        kafka.create_topic(&topic, 1).await;
        let schemas = kafka.schema_registry().await;
        let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
        let service = IngestService::new(
            &CONTRACT,
            FILE_DESCRIPTOR_SET,
            producer.clone(),
            IngestSettings::default(),
        )
        .unwrap();
        let address = common::serve_ingest(service).await;
        let mut client = IngestClient::connect(format!("http://{address}"))
            .await
            .unwrap();
        for (id, trace) in [("traced", TRACEPARENT), ("garbled", "00-not-a-trace-01")] {
            let mut request = tonic::Request::new(api::PublishRequest {
                events: vec![common::ingest_order(id)],
                request_id: 1,
            });
            let metadata = request.metadata_mut();
            metadata.insert("traceparent", trace.parse().unwrap());
            metadata.insert("x-correlation-id", format!("corr-{id}").parse().unwrap());
            client.publish(request).await.unwrap();
        }

        let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("trace"));
        settings.topic_prefix = prefix.clone();
        let consumer = EventConsumer::new(
            settings,
            schemas,
            ShopOrdersDispatcher(Billing::new(producer)),
        )
        .unwrap();
        let stats = consumer.stats();
        let running = common::start_consumer(consumer);
        // Two orders, then the two payments they caused.
        let deadline = Instant::now() + Duration::from_secs(60);
        while stats.handled.load(std::sync::atomic::Ordering::Relaxed) < 4 {
            assert!(Instant::now() < deadline, "events were not handled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running.stop().await;

        // The handler's log line carries the event's span and its fields.
        let logged = lines.json();
        let billing = |id: &str| {
            logged
                .iter()
                .find(|l| {
                    l["fields"]["message"] == "billing the order" && l["fields"]["order_id"] == id
                })
                .unwrap_or_else(|| panic!("no log line for {id}: {logged:?}"))
                .clone()
        };
        let traced = billing("traced");
        let span = &traced["span"];
        assert_eq!(span["name"], "event");
        assert_eq!(span["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span["parent_span_id"], "b7ad6b7169203331");
        assert_eq!(span["correlation_id"], "corr-traced");
        assert!(span["event_id"].as_str().is_some_and(|id| !id.is_empty()));
        let garbled = billing("garbled");
        assert_eq!(garbled["span"]["correlation_id"], "corr-garbled");
        assert_eq!(garbled["span"].get("trace_id"), None, "{garbled}");

        // In Kafka: the follow-up carries the cause's trace and correlation id;
        // the invalid trace context never got in.
        let reader: StreamConsumer = kafka
            .config()
            .set("group.id", common::unique_name("trace-reader"))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        reader.subscribe(&[&topic]).unwrap();
        let mut records = Vec::new();
        while records.len() < 4 {
            let message = tokio::time::timeout(Duration::from_secs(30), reader.recv())
                .await
                .expect("four records")
                .unwrap();
            let header = |name: &str| {
                message
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == name))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8(v.to_vec()).unwrap())
            };
            records.push((
                header("protobus-event-type").unwrap(),
                header("protobus-correlation-id"),
                header("traceparent"),
            ));
        }
        let of = |event_type: &str, correlation: &str| {
            records
                .iter()
                .find(|(t, c, _)| t == event_type && c.as_deref() == Some(correlation))
                .unwrap_or_else(|| panic!("no {event_type} for {correlation}: {records:?}"))
                .2
                .clone()
        };
        assert_eq!(
            of(OrderPlaced::FULL_NAME, "corr-traced").as_deref(),
            Some(TRACEPARENT)
        );
        assert_eq!(
            of(OrderPaid::FULL_NAME, "corr-traced").as_deref(),
            Some(TRACEPARENT)
        );
        assert_eq!(of(OrderPlaced::FULL_NAME, "corr-garbled"), None);
        assert_eq!(of(OrderPaid::FULL_NAME, "corr-garbled"), None);
    });
}
