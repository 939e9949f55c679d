//! End-to-end latency, from the moment a client meant to send an event to the
//! moment its handler starts, at 5 000 events/s of 1 KiB from an open-loop
//! generator: Protobus (typed producer → typed consumer) next to raw
//! librdkafka (producer → `StreamConsumer`). Latency counts from the
//! *scheduled* send time, so a stalled sender shows as latency rather than
//! as fewer samples (no coordinated omission). The side that goes first
//! alternates; each row gives every round's quantile and their median.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use prost::Message as _;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, EventConsumer, EventContext, EventProducer, HandlerError, SendOptions, wire,
};
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers as _};
use rdkafka::producer::{BaseRecord, ThreadedProducer};

use crate::{Bench, Row, Target, kafka};

const RATE: u64 = 5_000;
const SIZE: usize = 1024;
/// The header carrying the scheduled send time, in µs since [`epoch`].
const SCHEDULED: &str = "bench-scheduled-us";

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Records the latency of one event given its scheduled-time header.
#[derive(Clone)]
struct Recorder {
    histogram: Arc<Mutex<Histogram<u64>>>,
    recorded: Arc<AtomicU64>,
    /// A bit per partition a warm-up event arrived from.
    warm: Arc<AtomicU64>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            histogram: Arc::new(Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
            )),
            recorded: Arc::default(),
            warm: Arc::default(),
        }
    }

    fn record(&self, scheduled: Option<&[u8]>, partition: i32) {
        let now = epoch().elapsed().as_micros() as u64;
        match scheduled.and_then(|v| <[u8; 8]>::try_from(v).ok()) {
            Some(bytes) => {
                let latency = now.saturating_sub(u64::from_be_bytes(bytes)).max(1);
                self.histogram.lock().unwrap().saturating_record(latency);
                self.recorded.fetch_add(1, Ordering::Relaxed);
            }
            // A warm-up event: the consumer reads this partition from
            // where it stood when it was assigned.
            None => {
                self.warm.fetch_or(1 << partition, Ordering::Relaxed);
            }
        }
    }

    async fn wait(&self, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.recorded.load(Ordering::Relaxed) < expected {
            assert!(
                Instant::now() < deadline,
                "received {} of {expected}",
                self.recorded.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Handler(Recorder);

impl ShopOrdersHandler for Handler {
    async fn order_placed(
        &self,
        _: OrderPlaced,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.0
            .record(context.header(SCHEDULED), context.partition());
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

/// Calls `send(i, scheduled_us)` for event `i` at its scheduled time,
/// catching up at once when late (open loop); returns how many were sent.
async fn open_loop(duration: Duration, mut send: impl FnMut(usize, u64)) -> u64 {
    let interval = Duration::from_nanos(1_000_000_000 / RATE);
    let total = (duration.as_secs_f64() * RATE as f64) as usize;
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
            continue;
        }
        send(i, due.duration_since(epoch()).as_micros() as u64);
        i += 1;
    }
    total as u64
}

/// Sends warm-up events (`send_warm_up(i)`, keys spread over the
/// partitions) until one arrived from every partition. With
/// `auto.offset.reset=latest`, a partition whose start the consumer has not
/// looked up yet would otherwise skip the first timed events sent to it.
async fn until_warm(recorder: &Recorder, mut send_warm_up: impl FnMut(usize)) {
    let every = (1 << kafka::PARTITIONS) - 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while recorder.warm.load(Ordering::Relaxed) != every {
        assert!(
            Instant::now() < deadline,
            "the consumer never received a warm-up event from every partition"
        );
        for _ in 0..4 * kafka::PARTITIONS {
            send_warm_up(i);
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn group() -> String {
    format!("bench-latency-{}", uuid::Uuid::new_v4().simple())
}

async fn raw_round(
    bench: &Bench,
    topic: &str,
    schema_id: u32,
    duration: Duration,
    recorder: &Recorder,
) {
    let consumer: StreamConsumer = kafka::settings(&bench.bootstrap)
        .set("group.id", group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        // As the typed consumer sets it.
        .set("fetch.queue.backoff.ms", "20")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let reading = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            loop {
                let message = consumer.recv().await.expect("recv");
                let scheduled = message
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == SCHEDULED).and_then(|h| h.value));
                let frame = message.payload().unwrap_or_default();
                let order =
                    OrderPlaced::decode(frame.get(6..).unwrap_or_default()).expect("decode");
                std::hint::black_box(order);
                recorder.record(scheduled, message.partition());
                consumer.store_offset_from_message(&message).unwrap();
            }
        })
    };
    let producer: ThreadedProducer<kafka::Acks> = kafka::settings(&bench.bootstrap)
        .create_with_context(kafka::Acks(Arc::default()))
        .unwrap();
    let mut buf = Vec::new();
    let mut send = |i: usize, scheduled: Option<u64>| {
        let order = kafka::event(i, SIZE);
        buf.clear();
        wire::write_header(&mut buf, schema_id, &[0]);
        order.encode(&mut buf).unwrap();
        let id = format!("raw-{i}");
        let mut headers = kafka::raw_headers(&id);
        if let Some(scheduled) = scheduled {
            headers = headers.insert(Header {
                key: SCHEDULED,
                value: Some(&scheduled.to_be_bytes()),
            });
        }
        let record = BaseRecord::to(topic)
            .key(order.order_id.as_bytes())
            .payload(&buf)
            .headers(headers);
        producer.send(record).map_err(|(e, _)| e).expect("raw send");
    };
    until_warm(recorder, |i| send(i, None)).await;
    let sent = open_loop(duration, |i, scheduled| send(i, Some(scheduled))).await;
    recorder.wait(sent).await;
    reading.abort();
}

async fn protobus_round(bench: &Bench, prefix: &str, duration: Duration, recorder: &Recorder) {
    let mut settings = ConsumerSettings::new(&bench.bootstrap, &group());
    settings.topic_prefix = prefix.to_owned();
    settings.kafka.set("auto.offset.reset", "latest");
    let consumer = EventConsumer::new(
        settings,
        bench.schemas.clone(),
        ShopOrdersDispatcher(Handler(recorder.clone())),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    let producer = EventProducer::new(&kafka::settings(&bench.bootstrap), bench.schemas.clone())
        .unwrap()
        .with_topic_prefix(prefix);
    let send = |i: usize, scheduled: Option<u64>| {
        let producer = producer.clone();
        let options = SendOptions {
            headers: scheduled
                .map(|s| vec![(SCHEDULED.to_owned(), s.to_be_bytes().to_vec())])
                .unwrap_or_default(),
            ..SendOptions::default()
        };
        let order = kafka::event(i, SIZE);
        tokio::spawn(async move {
            producer
                .enqueue(&order, options)
                .await
                .expect("enqueue")
                .await
                .expect("delivery");
        });
    };
    until_warm(recorder, |i| send(i, None)).await;
    let sent = open_loop(duration, |i, scheduled| send(i, Some(scheduled))).await;
    recorder.wait(sent).await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

pub(crate) async fn run(bench: &Bench) -> Vec<Row> {
    epoch();
    let duration = if bench.measuring {
        Duration::from_secs(4)
    } else {
        Duration::from_millis(200)
    };
    let (prefix, topic) = kafka::topic(&bench.bootstrap, "latency").await;
    let schema_id = bench.schemas.id_of::<OrderPlaced>().await.unwrap();
    let quantiles = [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999)];
    let (mut raw, mut ours) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    for round in 0..bench.rounds {
        // Each side goes first in turn.
        for k in 0..2 {
            let recorder = Recorder::new();
            let into = if (round + k) % 2 == 0 {
                raw_round(bench, &topic, schema_id, duration, &recorder).await;
                &mut raw
            } else {
                protobus_round(bench, &prefix, duration, &recorder).await;
                &mut ours
            };
            let histogram = recorder.histogram.lock().unwrap();
            for (values, (_, q)) in into.iter_mut().zip(quantiles) {
                values.push(ms(&histogram, q));
            }
        }
    }
    quantiles
        .iter()
        .zip(ours.into_iter().zip(raw))
        .map(|((name, _), (ours, raw))| {
            Row::time(
                format!("latency send→handler {name}, {RATE}/s of 1 KiB"),
                "ms",
                ours,
                raw,
                (*name == "p99").then_some(Target::AtMostRawPlus(5.0)),
            )
        })
        .collect()
}
