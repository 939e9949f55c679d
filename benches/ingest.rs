//! Acked events per second through the gRPC ingest service (`PublishStream`,
//! and `Publish` with 256 events per request) next to a raw rdkafka
//! `BaseProducer` loop writing the same framed bytes, at 100 B and 1 KiB,
//! on the same broker and topic in the same run; plus the ingest process's
//! resident memory under that load.
//!
//! `cargo bench --bench ingest` (needs Kafka at KAFKA_BOOTSTRAP_SERVERS, as
//! the tests do). PROTOBUS_BENCH_EVENTS sets events per round (default 20 000).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_runtime::{Event, SchemaRegistry};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tonic::transport::Channel;

const ROUNDS: usize = 3;
const BATCH: usize = 256;
const PARTITIONS: i32 = 6;

/// Settings of every Kafka pair: acks=all, idempotence, linger 5 ms, no compression.
fn kafka_settings(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "none");
    config
}

/// An OrderPlaced of about `size` bytes encoded.
fn event(i: usize, size: usize) -> OrderPlaced {
    let mut order = OrderPlaced {
        order_id: format!("order-{i:08}"),
        customer_id: format!("customer-{}", i % 100),
        ..OrderPlaced::default()
    };
    let base = order.encoded_len() + 3;
    order.coupon_code = "x".repeat(size.saturating_sub(base));
    order
}

struct Counter(Arc<AtomicU64>);

impl rdkafka::ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The baseline: a raw producer loop writing pre-framed records.
fn raw(bootstrap: &str, topic: &str, frames: &[(Vec<u8>, Vec<u8>)]) -> f64 {
    let acked = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<Counter> = kafka_settings(bootstrap)
        .create_with_context(Counter(acked.clone()))
        .expect("raw producer");
    // Warm-up outside the clock, as the ingest side is: producer id, metadata.
    let (key, frame) = &frames[0];
    producer
        .send(BaseRecord::to(topic).key(key).payload(frame))
        .map_err(|(e, _)| e)
        .expect("warm-up send");
    producer
        .flush(Duration::from_secs(30))
        .expect("warm-up flush");
    acked.store(0, Ordering::Relaxed);
    let started = Instant::now();
    for (key, frame) in frames {
        let mut record = BaseRecord::to(topic).key(key).payload(frame);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(
        acked.load(Ordering::Relaxed) as usize,
        frames.len(),
        "raw deliveries"
    );
    frames.len() as f64 / elapsed
}

fn request(events: &[api::Event], id: usize) -> api::PublishRequest {
    api::PublishRequest {
        events: events.to_vec(),
        request_id: id as u64,
    }
}

fn count_acks(response: &api::PublishResponse) -> usize {
    response
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
        .count()
}

async fn stream(client: &mut IngestClient<Channel>, events: &[api::Event]) -> f64 {
    let started = Instant::now();
    let requests: Vec<api::PublishRequest> = events
        .chunks(BATCH)
        .enumerate()
        .map(|(i, batch)| request(batch, i))
        .collect();
    let mut responses = client
        .publish_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut acked = 0;
    while let Some(response) = responses.message().await.expect("stream response") {
        acked += count_acks(&response);
    }
    assert_eq!(acked, events.len(), "stream acks");
    events.len() as f64 / started.elapsed().as_secs_f64()
}

async fn unary(client: &IngestClient<Channel>, events: &[api::Event]) -> f64 {
    let started = Instant::now();
    let acked: usize = futures_util::stream::iter(events.chunks(BATCH).enumerate())
        .map(|(i, batch)| {
            let mut client = client.clone();
            let request = request(batch, i);
            async move { count_acks(&client.publish(request).await.expect("publish").into_inner()) }
        })
        .buffer_unordered(8)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    assert_eq!(acked, events.len(), "unary acks");
    events.len() as f64 / started.elapsed().as_secs_f64()
}

fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let per_round: usize = if measuring {
        std::env::var("PROTOBUS_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000)
    } else {
        BATCH * 2 // `cargo test --all-targets`: one quick pass that checks the bench works
    };
    let rounds = if measuring { ROUNDS } else { 1 };
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let registry = protobus_registry::Registry::in_memory();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, protobus_registry::router(registry)).await });

        let prefix = format!("bench-{}.", std::process::id());
        let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
        let admin: AdminClient<DefaultClientContext> = kafka_settings(&bootstrap).create().unwrap();
        let created = admin
            .create_topics(
                &[NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .unwrap_or_else(|e| panic!("Kafka at {bootstrap} did not answer ({e}); start it with scripts/kafka.sh start"));
        created.into_iter().for_each(|r| {
            r.unwrap();
        });

        // The schema id the raw loop frames with: the one the ingest service registers too.
        let schemas = SchemaRegistry::new(&registry_url).unwrap();
        let schema_id = schemas.id_of::<OrderPlaced>().await.unwrap();

        let listen = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let mut ingest = Ingest(
            Command::new(env!("CARGO_BIN_EXE_protobus"))
                .args(["ingest", "--listen", &listen.to_string(), "--kafka", &bootstrap])
                .args(["--registry", &registry_url, "--topic-prefix", &prefix])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("start protobus ingest"),
        );
        let pid = ingest.0.id();
        let mut client = loop {
            match IngestClient::connect(format!("http://{listen}")).await {
                Ok(client) => break client,
                Err(_) if ingest.0.try_wait().unwrap().is_none() => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("protobus ingest did not start: {e}"),
            }
        };
        let client = &mut client;

        let peak = Arc::new(std::sync::Mutex::new(0.0_f64));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    let (rss, _) = rss_mib(pid);
                    {
                        let mut p = peak.lock().unwrap();
                        *p = p.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };

        println!("Acked events/s, {rounds} rounds of {per_round} events, medians (ratio = ingest / raw):");
        println!("{:>8} {:>12} {:>14} {:>8} {:>14} {:>8}", "size", "raw", "PublishStream", "ratio", "Publish(256)", "ratio");
        let mut verdicts = Vec::new();
        for (size, target) in [(100, 0.40), (1024, 0.60)] {
            let events: Vec<api::Event> = (0..per_round)
                .map(|i| api::Event {
                    r#type: OrderPlaced::FULL_NAME.into(),
                    payload: Some(Payload::Binary(event(i, size).encode_to_vec())),
                    ..api::Event::default()
                })
                .collect();
            let frames: Vec<(Vec<u8>, Vec<u8>)> = (0..per_round)
                .map(|i| {
                    let order = event(i, size);
                    let mut frame = Vec::new();
                    protobus_runtime::wire::write_header(&mut frame, schema_id, OrderPlaced::MESSAGE_INDEXES);
                    order.encode(&mut frame).unwrap();
                    (order.order_id.into_bytes(), frame)
                })
                .collect();
            // Warm-up: connections, registration, topic metadata.
            let _ = stream(client, &events[..BATCH]).await;
            let (mut raws, mut streams, mut unaries) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let (b, t, f) = (bootstrap.clone(), topic.clone(), frames.clone());
                raws.push(tokio::task::spawn_blocking(move || raw(&b, &t, &f)).await.unwrap());
                streams.push(stream(client, &events).await);
                unaries.push(unary(client, &events).await);
            }
            let (r, s, u) = (median(raws), median(streams), median(unaries));
            println!("{:>6} B {:>12.0} {:>14.0} {:>8.2} {:>14.0} {:>8.2}", size, r, s, s / r, u, u / r);
            verdicts.push(format!(
                "{size} B: PublishStream {:.2} and Publish {:.2} of raw (target ≥ {target:.2}): {}",
                s / r,
                u / r,
                if s / r >= target && u / r >= target { "met" } else { "NOT met" }
            ));
        }
        sampler.abort();
        let (_, hwm) = rss_mib(pid);
        let peak = *peak.lock().unwrap();
        for verdict in verdicts {
            println!("{verdict}");
        }
        println!(
            "ingest resident memory: peak {peak:.1} MiB sampled, {hwm:.1} MiB high-water mark (target ≤ 100 MiB): {}",
            if hwm.max(peak) <= 100.0 { "met" } else { "NOT met" }
        );
        drop(ingest);
    });
}
