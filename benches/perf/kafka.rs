//! What the Kafka pairs share: settings, topics, events, the raw producer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{Event, headers, wire};

use crate::Row;
use crate::cost::{self, Cost};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext, ThreadedProducer,
};

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
    topic_with(bootstrap, pair, PARTITIONS).await
}

/// [`topic`] with `partitions` partitions.
pub(crate) async fn topic_with(bootstrap: &str, pair: &str, partitions: i32) -> (String, String) {
    let prefix = format!("bench-{pair}-{}.", uuid::Uuid::new_v4().simple());
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    let admin: AdminClient<DefaultClientContext> = settings(bootstrap).create().unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
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
pub(crate) fn raw_headers(event_id: &str) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(2)
        .insert(Header {
            key: headers::EVENT_ID,
            value: Some(event_id),
        })
        .insert(Header {
            key: headers::EVENT_TYPE,
            value: Some(OrderPlaced::FULL_NAME),
        })
}

/// The raw producers every producing pair is measured against, each as a
/// competent librdkafka user would write it: the same frame (prost into a
/// reused buffer behind the same header), key and headers as Protobus,
/// every event handed over before any acknowledgement is awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawProducer {
    /// rdkafka's `FutureProducer` used as Protobus uses it: every send in
    /// flight, then each `DeliveryFuture` awaited.
    Future,
    /// `ThreadedProducer`: a send loop; a thread of rdkafka's serves
    /// delivery reports; then `flush`.
    Threaded,
    /// The `BaseProducer` loop: delivery reports served on the sending
    /// thread every 1 024 sends, then `flush`.
    Base,
}

impl RawProducer {
    pub(crate) const ALL: [RawProducer; 3] = [
        RawProducer::Future,
        RawProducer::Threaded,
        RawProducer::Base,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RawProducer::Future => "FutureProducer",
            RawProducer::Threaded => "ThreadedProducer",
            RawProducer::Base => "BaseProducer loop",
        }
    }

    /// This raw producer, made and warmed up (producer id, metadata, one
    /// event acknowledged) outside the clock, to send every round of a
    /// pair: long-lived, as the typed producer is.
    pub(crate) async fn client(self, bootstrap: &str, topic: &str, schema_id: u32) -> RawClient {
        let acked = Arc::new(AtomicU64::new(0));
        let client = match self {
            RawProducer::Future => {
                RawClient::Future(settings(bootstrap).create().expect("raw producer"))
            }
            RawProducer::Threaded => RawClient::Threaded(counting(bootstrap, &acked), acked),
            RawProducer::Base => RawClient::Base(counting(bootstrap, &acked), acked),
        };
        let warm = Arc::new(vec![event(0, 100)]);
        client.produce(topic, schema_id, warm).await;
        client
    }
}

/// Every raw producer, in the order of [`RawProducer::ALL`], made and
/// warmed up for `topic` ([`RawProducer::client`]).
pub(crate) async fn raw_clients(bootstrap: &str, topic: &str, schema_id: u32) -> Vec<RawClient> {
    let mut clients = Vec::with_capacity(RawProducer::ALL.len());
    for raw in RawProducer::ALL {
        clients.push(raw.client(bootstrap, topic, schema_id).await);
    }
    clients
}

/// A producer whose acknowledgements count into `acked`.
fn counting<P: FromClientConfigAndContext<Acks>>(
    bootstrap: &str,
    acked: &Arc<AtomicU64>,
) -> Arc<P> {
    Arc::new(
        settings(bootstrap)
            .create_with_context(Acks(acked.clone()))
            .expect("raw producer"),
    )
}

/// A raw producer kept for every round of a pair.
pub(crate) enum RawClient {
    Future(FutureProducer),
    Threaded(Arc<ThreadedProducer<Acks>>, Arc<AtomicU64>),
    Base(Arc<BaseProducer<Acks>>, Arc<AtomicU64>),
}

impl RawClient {
    /// Sends `events` to `topic`, each one acknowledged.
    pub(crate) async fn produce(
        &self,
        topic: &str,
        schema_id: u32,
        events: Arc<Vec<OrderPlaced>>,
    ) -> Produced {
        let topic = topic.to_owned();
        match self {
            RawClient::Future(producer) => {
                future_produce(producer, &topic, schema_id, &events).await
            }
            RawClient::Threaded(producer, acked) => {
                let (producer, acked) = (producer.clone(), acked.clone());
                tokio::task::spawn_blocking(move || {
                    sync_produce(&*producer, &acked, &topic, schema_id, &events, |_| {})
                })
                .await
                .unwrap()
            }
            RawClient::Base(producer, acked) => {
                let (producer, acked) = (producer.clone(), acked.clone());
                tokio::task::spawn_blocking(move || {
                    sync_produce(&*producer, &acked, &topic, schema_id, &events, |i| {
                        // Serve delivery reports now and then, not after every send.
                        if i.is_multiple_of(1024) {
                            producer.poll(Duration::ZERO);
                        }
                    })
                })
                .await
                .unwrap()
            }
        }
    }
}

/// Each raw producer's runs of a pair, round by round.
pub(crate) struct RawRuns(Vec<Vec<Produced>>);

impl RawRuns {
    pub(crate) fn new() -> Self {
        RawRuns(RawProducer::ALL.iter().map(|_| Vec::new()).collect())
    }

    fn index(raw: RawProducer) -> usize {
        RawProducer::ALL
            .iter()
            .position(|r| *r == raw)
            .expect("every raw producer is in ALL")
    }

    pub(crate) fn push(&mut self, raw: RawProducer, run: Produced) {
        self.0[Self::index(raw)].push(run);
    }

    /// Every raw producer's rates, by name: the baselines of a throughput row.
    pub(crate) fn rates(&self) -> Vec<(String, Vec<f64>)> {
        RawProducer::ALL
            .iter()
            .zip(&self.0)
            .map(|(raw, runs)| (raw.name().to_owned(), figures(runs, |p| p.rate)))
            .collect()
    }

    /// A row of CPU time per event (`figure`, in µs) of Protobus's side
    /// against `raw`'s.
    pub(crate) fn cpu_row(
        &self,
        pair: String,
        protobus: Vec<f64>,
        raw: RawProducer,
        figure: fn(&Produced) -> f64,
    ) -> Row {
        let runs = figures(&self.0[Self::index(raw)], figure);
        Row::time(pair, "µs", protobus, runs, None).named(raw.name())
    }
}

/// `figure` of each run.
pub(crate) fn figures(runs: &[Produced], figure: fn(&Produced) -> f64) -> Vec<f64> {
    runs.iter().map(figure).collect()
}

/// Writes `order`'s frame into `buf`, as Protobus frames it.
fn frame(buf: &mut Vec<u8>, schema_id: u32, order: &OrderPlaced) {
    buf.clear();
    wire::write_header(buf, schema_id, OrderPlaced::MESSAGE_INDEXES);
    order.encode(buf).unwrap();
}

/// The send loop of the `ThreadedProducer` and `BaseProducer` baselines;
/// `after_send(i)` is called after the `i`-th send.
fn sync_produce<P: SyncSend>(
    producer: &P,
    acked: &AtomicU64,
    topic: &str,
    schema_id: u32,
    events: &[OrderPlaced],
    mut after_send: impl FnMut(usize),
) -> Produced {
    let mut buf = Vec::new();
    let mut send = |order: &OrderPlaced, i: usize| {
        frame(&mut buf, schema_id, order);
        let id = format!("raw-{i}");
        let mut record = BaseRecord::to(topic)
            .key(order.order_id.as_bytes())
            .payload(&buf)
            .headers(raw_headers(&id));
        while let Some(back) = producer.send_or_back(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(1));
            producer.serve();
        }
        after_send(i);
    };
    acked.store(0, Ordering::Relaxed);
    let measure = Measure::start();
    for (i, order) in events.iter().enumerate() {
        send(order, i);
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    assert_eq!(
        acked.load(Ordering::Relaxed) as usize,
        events.len(),
        "raw acks"
    );
    measure.end(events.len())
}

type Record<'a> = BaseRecord<'a, [u8], Vec<u8>>;

/// What the two synchronous producers share, which rdkafka gives no trait.
trait SyncSend: Producer<Acks> {
    /// Sends `record`, or gives it back when librdkafka's queue is full.
    fn send_or_back<'a>(&self, record: Record<'a>) -> Option<Record<'a>>;
    /// Serves delivery reports where no thread does it.
    fn serve(&self);
}

fn back_when_full<'a>(sent: Result<(), (KafkaError, Record<'a>)>) -> Option<Record<'a>> {
    match sent {
        Ok(()) => None,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => Some(back),
        Err((err, _)) => panic!("raw send: {err}"),
    }
}

impl SyncSend for BaseProducer<Acks> {
    fn send_or_back<'a>(&self, record: Record<'a>) -> Option<Record<'a>> {
        back_when_full(self.send(record))
    }
    fn serve(&self) {
        self.poll(Duration::ZERO);
    }
}

impl SyncSend for ThreadedProducer<Acks> {
    fn send_or_back<'a>(&self, record: Record<'a>) -> Option<Record<'a>> {
        back_when_full(self.send(record))
    }
    fn serve(&self) {}
}

/// The `FutureProducer` baseline: every event handed over with
/// `send_result` (waiting briefly when librdkafka's queue is full), then
/// every delivery awaited.
async fn future_produce(
    producer: &FutureProducer,
    topic: &str,
    schema_id: u32,
    events: &[OrderPlaced],
) -> Produced {
    let mut buf = Vec::new();
    // Yields the delivery, to be awaited once every event is handed over.
    #[allow(clippy::async_yields_async)]
    let mut send = async |order: &OrderPlaced, i: usize| {
        frame(&mut buf, schema_id, order);
        let id = format!("raw-{i}");
        let mut record = FutureRecord::to(topic)
            .key(order.order_id.as_bytes())
            .payload(&buf)
            .headers(raw_headers(&id));
        loop {
            match producer.send_result(record) {
                Ok(delivery) => return delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((err, _)) => panic!("raw send: {err}"),
            }
        }
    };
    let measure = Measure::start();
    let mut pending = Vec::with_capacity(events.len());
    for (i, order) in events.iter().enumerate() {
        pending.push(send(order, i).await);
    }
    for delivery in pending {
        delivery.await.unwrap().expect("raw delivery");
    }
    measure.end(events.len())
}

/// One side's run of a producing pair.
#[derive(Clone, Copy)]
pub(crate) struct Produced {
    /// Acknowledged events per second.
    pub(crate) rate: f64,
    /// CPU time of the sending thread per event, in µs.
    pub(crate) cpu_us: f64,
    /// CPU time of this process (every thread) per event, in µs.
    pub(crate) process_cpu_us: f64,
    /// CPU time of the whole machine (the broker included) per event, in µs.
    pub(crate) machine_cpu_us: f64,
}

impl From<Produced> for Cost {
    fn from(produced: Produced) -> Self {
        Cost {
            rate: produced.rate,
            process_cpu_us: produced.process_cpu_us,
            machine_cpu_us: produced.machine_cpu_us,
        }
    }
}

/// Wall clock, and the CPU time of the calling thread, of this process and
/// of the machine, from `start` to `end`.
pub(crate) struct Measure {
    started: Instant,
    cpu: f64,
    process: f64,
    machine: f64,
}

impl Measure {
    pub(crate) fn start() -> Self {
        Measure {
            started: Instant::now(),
            cpu: cost::thread_cpu_seconds(),
            process: cost::process_cpu_seconds(),
            machine: cost::machine_busy_seconds(),
        }
    }

    pub(crate) fn end(self, events: usize) -> Produced {
        let per_event = |seconds: f64| seconds * 1e6 / events as f64;
        Produced {
            rate: events as f64 / self.started.elapsed().as_secs_f64(),
            cpu_us: per_event(cost::thread_cpu_seconds() - self.cpu),
            process_cpu_us: per_event(cost::process_cpu_seconds() - self.process),
            machine_cpu_us: per_event(cost::machine_busy_seconds() - self.machine),
        }
    }
}
