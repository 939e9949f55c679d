//! What the Kafka pairs share: settings, topics, events, the raw producer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{Event, headers, wire};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

pub(crate) const PARTITIONS: i32 = 6;

/// Settings of every Kafka pair: acks=all, idempotence, linger 5 ms, no compression.
pub(crate) fn settings(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "none");
    config
}

/// Creates a fresh topic (and its prefix) for one pair; panics, saying how to
/// start Kafka, when the broker does not answer.
pub(crate) async fn topic(bootstrap: &str, pair: &str) -> (String, String) {
    let prefix = format!("bench-{pair}-{}.", uuid::Uuid::new_v4().simple());
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    let admin: AdminClient<DefaultClientContext> = settings(bootstrap).create().unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Kafka at {bootstrap} did not answer ({e}); start it with scripts/kafka.sh start"
            )
        });
    for result in created {
        result.unwrap();
    }
    CREATED.lock().unwrap().push(topic.clone());
    (prefix, topic)
}

/// Topics this run created; [`delete_topics`] removes them, so repeated runs
/// do not fill the broker's disk.
static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Deletes every topic this run created.
pub(crate) async fn delete_topics(bootstrap: &str) {
    let topics = std::mem::take(&mut *CREATED.lock().unwrap());
    if topics.is_empty() {
        return;
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let admin: AdminClient<DefaultClientContext> = settings(bootstrap).create().unwrap();
    match admin
        .delete_topics(
            &names,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
    {
        Ok(results) => {
            for result in results {
                if let Err((topic, err)) = result {
                    eprintln!("could not delete bench topic {topic}: {err}");
                }
            }
        }
        Err(err) => eprintln!("could not delete the bench topics: {err}"),
    }
}

/// An OrderPlaced of about `size` bytes encoded.
pub(crate) fn event(i: usize, size: usize) -> OrderPlaced {
    let mut order = OrderPlaced {
        order_id: format!("order-{i:08}"),
        customer_id: format!("customer-{}", i % 100),
        ..OrderPlaced::default()
    };
    let base = order.encoded_len() + 3;
    order.coupon_code = "x".repeat(size.saturating_sub(base));
    order
}

/// Counts acknowledged deliveries.
pub(crate) struct Acks(pub(crate) Arc<AtomicU64>);

impl rdkafka::ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The headers Protobus writes, built the way a raw client would.
pub(crate) fn raw_headers(event_id: &str, timestamp: &str) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(3)
        .insert(Header {
            key: headers::EVENT_ID,
            value: Some(event_id),
        })
        .insert(Header {
            key: headers::EVENT_TYPE,
            value: Some(OrderPlaced::FULL_NAME),
        })
        .insert(Header {
            key: headers::TIMESTAMP,
            value: Some(timestamp),
        })
}

/// The baseline for every producing pair: a `BaseProducer` loop that encodes
/// each event with prost into a reused buffer behind the same frame header,
/// with the same key and headers, then waits for every acknowledgement.
/// Returns acknowledged events per second.
pub(crate) fn raw_produce(
    bootstrap: &str,
    topic: &str,
    schema_id: u32,
    events: &[OrderPlaced],
) -> f64 {
    let acked = Arc::new(AtomicU64::new(0));
    let producer: BaseProducer<Acks> = settings(bootstrap)
        .create_with_context(Acks(acked.clone()))
        .expect("raw producer");
    let mut buf = Vec::new();
    let mut send = |order: &OrderPlaced, i: usize| {
        buf.clear();
        wire::write_header(&mut buf, schema_id, OrderPlaced::MESSAGE_INDEXES);
        order.encode(&mut buf).unwrap();
        let id = format!("raw-{i}");
        let timestamp = now_ms().to_string();
        let mut record = BaseRecord::to(topic)
            .key(order.order_id.as_bytes())
            .payload(&buf)
            .headers(raw_headers(&id, &timestamp));
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        // Serve delivery reports now and then, not after every send.
        if i.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    };
    // Warm-up outside the clock, as on the Protobus side: producer id, metadata.
    send(&events[0], 0);
    producer.flush(Duration::from_secs(30)).expect("warm-up");
    acked.store(0, Ordering::Relaxed);
    let started = Instant::now();
    for (i, order) in events.iter().enumerate() {
        send(order, i);
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(
        acked.load(Ordering::Relaxed) as usize,
        events.len(),
        "raw acks"
    );
    events.len() as f64 / elapsed
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
