//! An idempotent producer in a fatal state, on the real broker: the typed
//! producer replaces it and the send caught in it fails as outcome unknown;
//! the ingest service answers such an event UNAVAILABLE with
//! `outcome_unknown`, never as success, and the retry with the same
//! idempotency key lands once. (A consumer's dead-letter writer recovering
//! the same way is in `consumer_reliability.rs`.) The fatal state is raised
//! with librdkafka's `rd_kafka_test_fatal_error`, as a broker's sequence-gap
//! answer would raise it (`protobus_runtime::fault_injection`).

use crate::common;

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::{ErrorKind, Event};

fn order(id: &str) -> OrderPlaced {
    OrderPlaced {
        order_id: id.into(),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    }
}

/// The order ids stored in `topic`, in offset order (one partition).
fn stored(kafka: &common::Kafka, topic: &str) -> Vec<String> {
    kafka
        .records(topic)
        .into_iter()
        .map(|(_, value, _)| {
            OrderPlaced::decode(&value.expect("a value")[6..])
                .expect("an OrderPlaced")
                .order_id
        })
        .collect()
}

/// The broker, an orders topic of one partition of this test's own, and a
/// typed producer writing to it.
async fn setup() -> (common::Kafka, String, protobus_runtime::EventProducer) {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("fatal"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 1).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas, &prefix, &[]);
    (kafka, topic, producer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_in_a_fatal_state_is_replaced_and_the_send_caught_in_it_is_not_written() {
    let (kafka, topic, producer) = setup().await;
    let faults = producer.fault_injector();

    let first = producer.send(&order("before")).await.expect("send");
    assert!(faults.fail_fatally("sequence gap, injected"));
    let err = producer.send(&order("caught")).await.unwrap_err();
    let ErrorKind::ProducerFatal(reason) = err.kind() else {
        panic!("expected ProducerFatal, got {err}");
    };
    assert!(reason.contains("sequence gap, injected"), "{reason}");
    assert_eq!(faults.replacements(), 1, "replaced once");

    // The replacement writes; the send caught in the fatal state was refused
    // before it reached Kafka, so resending it makes one copy.
    let resent = producer.send(&order("caught")).await.expect("resend");
    let after = producer.send(&order("after")).await.expect("send");
    assert_eq!(faults.replacements(), 1, "no further replacement");
    assert_eq!(
        (resent.offset, after.offset),
        (first.offset + 1, first.offset + 2)
    );
    assert_eq!(stored(&kafka, &topic), ["before", "caught", "after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_an_event_caught_in_a_fatal_producer_as_outcome_unknown() {
    let (kafka, topic, producer) = setup().await;
    let faults = producer.fault_injector();
    let service = IngestService::new(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        producer,
        IngestSettings::default(),
    )
    .unwrap();
    let mut client =
        IngestClient::connect(format!("http://{}", common::serve_ingest(service).await))
            .await
            .unwrap();
    let event = |id: &str| api::Event {
        r#type: OrderPlaced::FULL_NAME.into(),
        payload: Some(Payload::Binary(order(id).encode_to_vec().into())),
        idempotency_key: format!("key-{id}"),
        ..api::Event::default()
    };
    let publish = |ids: &[&str], request_id: u64| api::PublishRequest {
        events: ids.iter().map(|id| event(id)).collect(),
        request_id,
    };

    // Warm up (registration, metadata), then the fault.
    let warm = client
        .publish(publish(&["warm"], 1))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(warm.results[0].outcome, Some(Outcome::Ack(_))));
    assert!(faults.fail_fatally("sequence gap, injected"));
    let response = client
        .publish(publish(&["a", "b", "c"], 2))
        .await
        .unwrap()
        .into_inner();
    let mut unknown = Vec::new();
    for (id, result) in ["a", "b", "c"].iter().zip(&response.results) {
        match &result.outcome {
            Some(Outcome::Ack(_)) => {}
            Some(Outcome::Failure(f)) => {
                assert_eq!(f.code, tonic::Code::Unavailable as i32, "{f:?}");
                assert!(f.outcome_unknown, "{f:?}");
                assert!(f.reason.contains("outcome unknown"), "{f:?}");
                unknown.push(*id);
            }
            None => panic!("no outcome for {id}"),
        }
    }
    assert_eq!(
        unknown,
        ["a"],
        "the first send meets the fatal state; the rest the replacement"
    );
    assert_eq!(faults.replacements(), 1);

    // The client retries with the same idempotency key: one copy of each.
    let retried = client
        .publish(publish(&unknown, 3))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(retried.results[0].outcome, Some(Outcome::Ack(_))));
    let mut ids = stored(&kafka, &topic);
    ids.sort();
    assert_eq!(ids, ["a", "b", "c", "warm"]);
}
