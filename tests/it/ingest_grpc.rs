//! The gRPC ingest service with a real tonic client, against the real broker
//! and the project's registry: results match what consumers read, JSON and
//! binary give identical records, bad input is refused and writes nothing,
//! and idempotency keys prevent duplicates. Validation runs against the
//! compiled-in contract and against the same contract compiled from
//! `proto/` while the service starts (`protobus ingest --contract`): the
//! checks must not differ.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::common::v1::Money;
use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{
    CONTRACT, FILE_DESCRIPTOR_SET, ShopCustomersDispatcher, ShopCustomersHandler,
    ShopOrdersDispatcher, ShopOrdersHandler,
};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::{ContractSource, IngestService, IngestSettings};
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, HandlerError, SchemaRegistry,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use tonic::transport::Channel;

/// An ingest service on a free port, writing behind its own topic prefix.
struct Harness {
    kafka: common::Kafka,
    prefix: String,
    schemas: Arc<SchemaRegistry>,
    client: IngestClient<Channel>,
}

/// Which contract the service validates against.
#[derive(Clone, Copy)]
enum Served {
    /// The contract compiled into the binary.
    Compiled,
    /// `proto/`, compiled when the service starts.
    FromSources,
}

/// Runs each named test (an `async fn(Served)`) once per [`Served`].
macro_rules! on_both_contracts {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn compiled_in() {
                super::$name(super::Served::Compiled).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn loaded_from_sources() {
                super::$name(super::Served::FromSources).await;
            }
        }
    )*};
}

on_both_contracts!(
    json_and_binary_of_one_event_give_identical_records,
    bad_input_is_refused_with_a_reason_and_nothing_is_written,
    a_retry_with_the_same_idempotency_key_returns_the_first_result,
);

async fn harness(settings: IngestSettings, served: Served) -> Harness {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("ingest"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 6)
        .await;
    kafka
        .create_topic(&format!("{prefix}{}", CustomerRegistered::TOPIC), 2)
        .await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let service = match served {
        Served::Compiled => {
            IngestService::new(&CONTRACT, FILE_DESCRIPTOR_SET, producer, settings).unwrap()
        }
        Served::FromSources => {
            let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
            let loaded = ContractSource::Sources(proto).load().await.unwrap();
            IngestService::with_contract(loaded, producer, settings).unwrap()
        }
    };
    let address = common::serve_ingest(service).await;
    let client = IngestClient::connect(format!("http://{address}"))
        .await
        .expect("connect");
    Harness {
        kafka,
        prefix,
        schemas,
        client,
    }
}

fn binary(event: &impl prost::Message, type_name: &str) -> api::Event {
    api::Event {
        r#type: type_name.into(),
        payload: Some(Payload::Binary(event.encode_to_vec().into())),
        ..api::Event::default()
    }
}

fn order(i: usize) -> OrderPlaced {
    OrderPlaced {
        order_id: format!("order-{i}"),
        customer_id: format!("customer-{}", i % 13),
        total: Some(Money {
            currency: "EUR".into(),
            minor_units: i as i64,
        }),
        ..OrderPlaced::default()
    }
}

fn ack(result: &api::Result) -> &api::Ack {
    match &result.outcome {
        Some(Outcome::Ack(ack)) => ack,
        other => panic!("expected an ack, got {other:?}"),
    }
}

fn failure(result: &api::Result) -> &api::Failure {
    match &result.outcome {
        Some(Outcome::Failure(failure)) => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Where each event was consumed: topic, partition, offset, by event id.
type Positions = HashMap<String, (String, i32, i64)>;

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Positions>>);

impl Seen {
    fn record(&self, context: &EventContext<'_>) {
        let id = context.event_id().unwrap().to_owned();
        let previous = self.0.lock().unwrap().insert(
            id.clone(),
            (
                context.topic().to_owned(),
                context.partition(),
                context.offset(),
            ),
        );
        assert!(previous.is_none(), "{id} consumed twice");
    }
}

impl ShopOrdersHandler for Seen {
    async fn order_placed(&self, _: OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.record(c);
        Ok(())
    }
    async fn order_paid(&self, _: OrderPaid, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.record(c);
        Ok(())
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(c);
        Ok(())
    }
}

impl ShopCustomersHandler for Seen {
    async fn customer_registered(
        &self,
        _: CustomerRegistered,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(c);
        Ok(())
    }
}

/// The i-th test event: mostly binary orders, every fifth a customer in JSON.
fn test_event(i: usize) -> api::Event {
    if i % 5 == 4 {
        api::Event {
            r#type: CustomerRegistered::FULL_NAME.into(),
            payload: Some(Payload::Json(format!(
                r#"{{"customerId":"customer-{i}","email":"c{i}@example.com","registeredAt":"2026-11-27T10:00:00Z"}}"#
            ))),
            ..api::Event::default()
        }
    } else {
        binary(&order(i), OrderPlaced::FULL_NAME)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_events_through_publish_and_publish_stream_are_consumed_where_acked() {
    let mut h = harness(IngestSettings::default(), Served::Compiled).await;
    let mut acks: Vec<api::Ack> = Vec::new();

    // 10 000 through Publish, in batches of 100.
    for batch in 0..100 {
        let events = (0..100).map(|i| test_event(batch * 100 + i)).collect();
        let response = h
            .client
            .publish(api::PublishRequest {
                events,
                request_id: batch as u64,
            })
            .await
            .expect("publish")
            .into_inner();
        assert_eq!(response.results.len(), 100);
        acks.extend(response.results.iter().map(|r| ack(r).clone()));
    }

    // 10 000 through PublishStream, in batches of 100 on one stream.
    let requests = tokio_stream::iter((0..100).map(|batch| {
        api::PublishRequest {
            events: (0..100)
                .map(|i| test_event(10_000 + batch * 100 + i))
                .collect(),
            request_id: 1_000 + batch as u64,
        }
    }));
    let mut responses = h
        .client
        .publish_stream(requests)
        .await
        .expect("stream")
        .into_inner();
    let mut streamed = 0;
    while let Some(response) = responses.message().await.expect("stream response") {
        streamed += response.results.len();
        acks.extend(response.results.iter().map(|r| ack(r).clone()));
    }
    assert_eq!(streamed, 10_000);
    assert_eq!(acks.len(), 20_000);

    let seen = Seen::default();
    let mut settings = ConsumerSettings::new(h.kafka.bootstrap(), &common::unique_name("ingest"));
    settings.topic_prefix = h.prefix.clone();
    let consumer = EventConsumer::new(
        settings,
        h.schemas.clone(),
        (
            ShopOrdersDispatcher(seen.clone()),
            ShopCustomersDispatcher(seen.clone()),
        ),
    )
    .unwrap();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.0.lock().unwrap().len() < 20_000 {
        assert!(
            Instant::now() < deadline,
            "consumed {} of 20000",
            seen.0.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;

    let seen = seen.0.lock().unwrap();
    assert_eq!(seen.len(), 20_000);
    for ack in &acks {
        assert_eq!(
            seen.get(&ack.event_id),
            Some(&(ack.topic.clone(), ack.partition, ack.offset)),
            "event {} was acked at {}/{}/{}",
            ack.event_id,
            ack.topic,
            ack.partition,
            ack.offset
        );
    }
}

async fn json_and_binary_of_one_event_give_identical_records(served: Served) {
    let mut h = harness(IngestSettings::default(), served).await;
    let event = OrderPlaced {
        order_id: "order-json-1".into(),
        customer_id: "customer-7".into(),
        total: Some(Money {
            currency: "EUR".into(),
            minor_units: 4_200,
        }),
        placed_at: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        }),
        coupon_code: "HELLO".into(),
        ..OrderPlaced::default()
    };
    let json = r#"{"orderId":"order-json-1","customerId":"customer-7","total":{"currency":"EUR","minorUnits":"4200"},"placedAt":"2026-09-21T14:13:20Z","couponCode":"HELLO"}"#;
    let events = vec![
        binary(&event, OrderPlaced::FULL_NAME),
        api::Event {
            r#type: OrderPlaced::FULL_NAME.into(),
            payload: Some(Payload::Json(json.into())),
            ..api::Event::default()
        },
    ];
    let response = h
        .client
        .publish(api::PublishRequest {
            events,
            request_id: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let (a, b) = (ack(&response.results[0]), ack(&response.results[1]));
    assert_eq!(a.partition, b.partition, "same key, same partition");

    let consumer: BaseConsumer = h
        .kafka
        .config()
        .set("group.id", common::unique_name("raw"))
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(
            &a.topic,
            a.partition,
            rdkafka::Offset::Offset(a.offset.min(b.offset)),
        )
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while records.len() < 2 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            use rdkafka::Message as _;
            if message.offset() == a.offset || message.offset() == b.offset {
                records.push((
                    message.key().map(<[u8]>::to_vec),
                    message.payload().map(<[u8]>::to_vec),
                ));
            }
        }
    }
    assert_eq!(records.len(), 2, "both records read");
    assert_eq!(
        records[0], records[1],
        "JSON and binary produced different records"
    );
}

/// Sum of the high watermarks of the test's topics: grows with every record written.
fn written(h: &Harness) -> i64 {
    let consumer: BaseConsumer = h.kafka.config().create().unwrap();
    [OrderPlaced::TOPIC, CustomerRegistered::TOPIC]
        .iter()
        .map(|topic| {
            let topic = format!("{}{topic}", h.prefix);
            let metadata = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .unwrap();
            metadata.topics()[0]
                .partitions()
                .iter()
                .map(|p| {
                    consumer
                        .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                        .unwrap()
                        .1
                })
                .sum::<i64>()
        })
        .sum()
}

async fn bad_input_is_refused_with_a_reason_and_nothing_is_written(served: Served) {
    let settings = IngestSettings {
        max_event_bytes: 1_000,
        ..IngestSettings::default()
    };
    let mut h = harness(settings, served).await;
    let before = written(&h);
    let good = order(1).encode_to_vec();
    let cases: Vec<(&str, api::Event, &str)> = vec![
        (
            "unknown type",
            api::Event {
                r#type: "shop.orders.v1.OrderLost".into(),
                payload: Some(Payload::Binary(good.clone().into())),
                ..Default::default()
            },
            "type",
        ),
        (
            "not an event type",
            api::Event {
                r#type: "shop.common.v1.Money".into(),
                payload: Some(Payload::Binary(Default::default())),
                ..Default::default()
            },
            "type",
        ),
        (
            "payload of another type",
            binary(
                &OrderShipped {
                    order_id: "o".into(),
                    carrier: "c".into(),
                    tracking_number: "t".into(),
                    shipped_at: Some(prost_types::Timestamp::default()),
                },
                OrderPaid::FULL_NAME,
            ),
            "binary",
        ),
        (
            "truncated bytes",
            api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                payload: Some(Payload::Binary(good[..good.len() - 3].to_vec().into())),
                ..Default::default()
            },
            "binary",
        ),
        (
            "JSON with an unknown field",
            api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                payload: Some(Payload::Json(r#"{"orderId":"o-1","discount":3}"#.into())),
                ..Default::default()
            },
            "json",
        ),
        (
            "JSON with a wrong type",
            api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                payload: Some(Payload::Json(r#"{"orderId":17}"#.into())),
                ..Default::default()
            },
            "json",
        ),
        (
            "JSON that is not JSON",
            api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                payload: Some(Payload::Json("{orderId".into())),
                ..Default::default()
            },
            "json",
        ),
        (
            "oversize event",
            binary(
                &OrderPlaced {
                    coupon_code: "x".repeat(2_000),
                    ..order(2)
                },
                OrderPlaced::FULL_NAME,
            ),
            "binary",
        ),
        (
            "missing key field",
            binary(
                &OrderPlaced {
                    order_id: String::new(),
                    ..order(3)
                },
                OrderPlaced::FULL_NAME,
            ),
            "key",
        ),
        (
            "no payload",
            api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                ..Default::default()
            },
            "payload",
        ),
        (
            "reserved header",
            api::Event {
                headers: vec![api::Header {
                    key: "protobus-event-id".into(),
                    value: b"x".to_vec(),
                }],
                ..binary(&order(4), OrderPlaced::FULL_NAME)
            },
            "headers",
        ),
    ];
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let events = cases.iter().map(|c| c.1.clone()).collect();
    let response = h
        .client
        .publish(api::PublishRequest {
            events,
            request_id: 9,
        })
        .await
        .expect("a batch answers per event")
        .into_inner();
    for ((name, _, field), result) in cases.iter().zip(&response.results) {
        let failure = failure(result);
        assert_eq!(
            failure.code,
            tonic::Code::InvalidArgument as i32,
            "{name}: {failure:?}"
        );
        assert_eq!(failure.field, *field, "{name}: {failure:?}");
        assert!(
            !failure.reason.is_empty() && !failure.outcome_unknown,
            "{name}"
        );
    }
    assert_eq!(response.results.len(), names.len());

    let empty = h
        .client
        .publish(api::PublishRequest {
            events: vec![],
            request_id: 10,
        })
        .await
        .expect_err("an empty batch is refused");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert!(empty.message().contains("no events"), "{}", empty.message());

    assert_eq!(written(&h), before, "a refused event reached Kafka");
}

async fn a_retry_with_the_same_idempotency_key_returns_the_first_result(served: Served) {
    let mut h = harness(IngestSettings::default(), served).await;
    let event = api::Event {
        idempotency_key: "order-77-placed".into(),
        correlation_id: "checkout-77".into(),
        ..binary(&order(77), OrderPlaced::FULL_NAME)
    };
    let mut results = Vec::new();
    for request_id in 0..3 {
        let response = h
            .client
            .publish(api::PublishRequest {
                events: vec![event.clone()],
                request_id,
            })
            .await
            .unwrap()
            .into_inner();
        results.push(ack(&response.results[0]).clone());
    }
    assert!(!results[0].duplicate);
    assert_eq!(
        results[0].event_id, "order-77-placed",
        "the key is the event id"
    );
    for again in &results[1..] {
        assert!(again.duplicate);
        assert_eq!(
            (again.partition, again.offset),
            (results[0].partition, results[0].offset)
        );
    }
    let before = written(&h);
    let response = h
        .client
        .publish(api::PublishRequest {
            events: vec![event],
            request_id: 4,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ack(&response.results[0]).duplicate);
    assert_eq!(written(&h), before, "a duplicate was written");
}
