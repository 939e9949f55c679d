//! Typed consumer dispatch (unframe, writer-type lookup, decode, a no-op
//! handler, offset store) next to two raw loops that decode with prost and
//! store offsets, over the same records: rdkafka's `StreamConsumer`, through
//! one `stream()` for its whole run, and librdkafka's batch read. Each side
//! reads the whole topic as a new group (once to warm up, then once a
//! round); the clock runs from its first record to its last. Then the
//! typed consumer with a member per core next to the batch read on as many
//! threads, each reading its share of the partitions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, Dispatch, EventConsumer, EventContext, EventProducer, HandlerError,
    SendOptions,
};
use rdkafka::Message as _;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};

use futures_util::StreamExt as _;

use crate::cost::{self, Cost};
use crate::{Bench, Row, Target, kafka};

/// Where the clock stood at an event.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    allocations: u64,
    /// CPU seconds of this process, and of the whole machine.
    cpu: f64,
    machine: f64,
}

impl Mark {
    fn now() -> Self {
        Mark {
            at: Instant::now(),
            allocations: cost::allocations(),
            cpu: cost::process_cpu_seconds(),
            machine: cost::machine_busy_seconds(),
        }
    }
}

/// Notes when the first and the last expected event arrive.
#[derive(Clone)]
pub(crate) struct Clock {
    expected: usize,
    seen: Arc<AtomicUsize>,
    first: Arc<Mutex<Option<Mark>>>,
    last: Arc<Mutex<Option<Mark>>>,
}

impl Clock {
    pub(crate) fn new(expected: usize) -> Self {
        Clock {
            expected,
            seen: Arc::default(),
            first: Arc::default(),
            last: Arc::default(),
        }
    }

    pub(crate) fn tick(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            *self.first.lock().unwrap() = Some(Mark::now());
        }
        if n == self.expected {
            *self.last.lock().unwrap() = Some(Mark::now());
            return true;
        }
        false
    }

    /// The marks of the first and the last event.
    fn span(&self) -> (Mark, Mark) {
        let first = self.first.lock().unwrap().expect("no event");
        let last = self.last.lock().unwrap().expect("not every event");
        (first, last)
    }

    /// The events between the first and the last.
    fn between(&self) -> f64 {
        (self.expected - 1) as f64
    }

    /// Events per second between the first and the last event.
    pub(crate) fn rate(&self) -> f64 {
        let (first, last) = self.span();
        self.between() / (last.at - first.at).as_secs_f64()
    }

    /// What one read of the topic measured. The process's CPU is the
    /// reading side's and librdkafka's threads (the broker's process is not
    /// counted; the machine's is everything).
    pub(crate) fn read(&self) -> Cost {
        let (first, last) = self.span();
        let per_event = |seconds: f64| seconds * 1e6 / self.between();
        Cost {
            rate: self.between() / (last.at - first.at).as_secs_f64(),
            process_cpu_us: per_event(last.cpu - first.cpu),
            machine_cpu_us: per_event(last.machine - first.machine),
        }
    }

    fn allocations_per_event(&self) -> f64 {
        let (first, last) = self.span();
        (last.allocations - first.allocations) as f64 / self.between()
    }

    /// Whether every expected event was seen.
    fn finished(&self) -> bool {
        self.seen.load(Ordering::Relaxed) >= self.expected
    }

    pub(crate) async fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.last.lock().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "consumed {} of {}",
                self.seen.load(Ordering::Relaxed),
                self.expected
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The no-op handler: it only counts.
#[derive(Clone)]
pub(crate) struct Noop(pub(crate) Clock);

impl ShopOrdersHandler for Noop {
    async fn order_placed(
        &self,
        event: OrderPlaced,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        std::hint::black_box(event);
        self.0.tick();
        Ok(())
    }
    async fn order_paid(&self, _: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        unreachable!("only OrderPlaced is sent")
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        unreachable!("only OrderPlaced is sent")
    }
}

/// Each side reads this many times the round's events, 400 000 by default:
/// at over a million events a second, shorter reads (50 000 pass in 40 ms,
/// less than one JVM pause of the broker sharing the two cores) swung single
/// rounds by a third.
pub(crate) const READS_PER_ROUND: usize = 2;

fn group() -> String {
    format!("bench-{}", uuid::Uuid::new_v4().simple())
}

pub(crate) async fn raw(bootstrap: String, topic: String, expected: usize) -> Cost {
    let consumer: StreamConsumer = kafka::settings(&bootstrap)
        .set("group.id", group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // As the typed consumer sets it: librdkafka's 1 s default stalls a
        // reader that drains its prefetch queue faster than the next fetch.
        .set("fetch.queue.backoff.ms", "20")
        .create()
        .expect("raw consumer");
    consumer.subscribe(&[&topic]).unwrap();
    let clock = Clock::new(expected);
    let mut messages = consumer.stream();
    loop {
        let message = messages
            .next()
            .await
            .expect("the stream ends only with its consumer")
            .expect("raw recv");
        let frame = message.payload().expect("a value");
        // The frame header of a first top-level message is 6 bytes.
        let order = OrderPlaced::decode(&frame[6..]).expect("decode");
        std::hint::black_box(order);
        consumer.store_offset_from_message(&message).unwrap();
        if clock.tick() {
            break;
        }
    }
    clock.read()
}

/// The fastest read librdkafka offers: `rd_kafka_consume_batch_queue` on the
/// consumer's queue, up to 256 records a call without waiting (waiting only
/// for one when none is there), on a thread of its own. The partitions are
/// assigned by hand: in a group, the batch read would serve rebalances
/// itself (the typed consumer forwards its partitions to a queue of its own
/// instead). Decodes with prost and stores offsets, as the stream loop does.
/// With several `threads`, each is a consumer of its own, reading its share
/// of the partitions, as the typed consumer's members do.
pub(crate) async fn raw_batched(
    bootstrap: String,
    topic: String,
    expected: usize,
    threads: i32,
) -> Cost {
    let clock = Clock::new(expected);
    let reading = {
        let clock = clock.clone();
        move || {
            std::thread::scope(|s| {
                for first in 0..threads {
                    let (bootstrap, topic, clock) = (&bootstrap, &topic, &clock);
                    let share = (first..kafka::PARTITIONS).step_by(threads as usize);
                    s.spawn(move || read_batches(bootstrap, topic, share, clock));
                }
            });
        }
    };
    tokio::task::spawn_blocking(reading).await.unwrap();
    clock.read()
}

/// One thread of [`raw_batched`]: reads `partitions` of `topic` until
/// `clock` saw every event.
fn read_batches(
    bootstrap: &str,
    topic: &str,
    partitions: impl Iterator<Item = i32>,
    clock: &Clock,
) {
    use rdkafka::bindings as rd;
    let consumer: BaseConsumer = kafka::settings(bootstrap)
        .set("group.id", group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.queue.backoff.ms", "20")
        .create()
        .expect("raw batched consumer");
    let mut assigned = TopicPartitionList::new();
    for p in partitions {
        assigned
            .add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assigned).unwrap();
    let mut batch = vec![std::ptr::null_mut(); 256];
    #[allow(unsafe_code)]
    // SAFETY: the consumer outlives its queue handle and every message;
    // each message is read, stored and destroyed once.
    unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr());
        while !clock.finished() {
            // Without waiting: a read that waits fills its batch record
            // by record, waking once per record the broker thread adds.
            let mut n = rd::rd_kafka_consume_batch_queue(queue, 0, batch.as_mut_ptr(), 256);
            if n == 0 {
                // Nothing there: wait for one.
                n = rd::rd_kafka_consume_batch_queue(queue, 100, batch.as_mut_ptr(), 1);
            }
            for &message in &batch[..usize::try_from(n).expect("raw batch read")] {
                let m = &*message;
                assert_eq!(m.err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
                let frame = std::slice::from_raw_parts(m.payload.cast::<u8>(), m.len);
                let order = OrderPlaced::decode(&frame[6..]).expect("decode");
                std::hint::black_box(order);
                let stored = rd::rd_kafka_offset_store_message(message);
                assert!(stored.is_null(), "offset store");
                rd::rd_kafka_message_destroy(message);
                clock.tick();
            }
        }
        rd::rd_kafka_queue_destroy(queue);
    }
}

async fn typed(bench: &Bench, prefix: &str, expected: usize, members: usize) -> (Cost, f64) {
    let clock = Clock::new(expected);
    let dispatcher = ShopOrdersDispatcher(Noop(clock.clone()));
    read_whole(bench, prefix, &clock, |s| s.members = members, dispatcher).await;
    (clock.read(), clock.allocations_per_event())
}

/// Reads the topic behind `prefix` whole as a new group, its settings
/// `tune`d; events/s from the first event `clock` saw to the last.
pub(crate) async fn read_whole<D: Dispatch + 'static>(
    bench: &Bench,
    prefix: &str,
    clock: &Clock,
    tune: impl FnOnce(&mut ConsumerSettings),
    dispatcher: D,
) -> f64 {
    let mut settings = ConsumerSettings::new(&bench.bootstrap, &group());
    settings.topic_prefix = prefix.to_owned();
    tune(&mut settings);
    let consumer =
        EventConsumer::new(settings, bench.schemas.clone(), dispatcher).expect("typed consumer");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    clock.wait().await;
    let _ = stop.send(());
    running.await.unwrap().expect("consumer run");
    clock.rate()
}

pub(crate) async fn run(bench: &Bench) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut allocations = Vec::new();
    let mut extra = 0;
    let wide = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, kafka::PARTITIONS as usize);
    for (size, label) in [(100, "100 B"), (1024, "1 KiB")] {
        let (prefix, topic) = kafka::topic(&bench.bootstrap, &format!("consume-{size}")).await;
        let producer =
            EventProducer::new(&kafka::settings(&bench.bootstrap), bench.schemas.clone())
                .expect("producer")
                .with_topic_prefix(&prefix);
        let events = bench.per_round * READS_PER_ROUND;
        let mut pending = Vec::with_capacity(events);
        for i in 0..events {
            pending.push(
                producer
                    .enqueue(&kafka::event(i, size), SendOptions::default())
                    .await
                    .unwrap(),
            );
        }
        for delivery in pending {
            delivery.await.expect("fill the topic");
        }
        // Warm-up, the same on both sides: one whole read (the typed side
        // looks the writer type up once, on its first record).
        let warm = typed(bench, &prefix, events, 1).await;
        allocations.push(warm.1);
        tokio::spawn(raw(bench.bootstrap.clone(), topic.clone(), events))
            .await
            .unwrap();
        raw_batched(bench.bootstrap.clone(), topic.clone(), events, 1).await;
        let requests = bench.schemas.requests();
        let (mut raws, mut batched, mut typeds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut wide_batched, mut wide_typeds) = (Vec::new(), Vec::new());
        for round in 0..bench.rounds {
            // Sides take turns going first, as in the producer pair.
            let typed_first = round % 2 == 1;
            if typed_first {
                let (read, per_event) = typed(bench, &prefix, events, 1).await;
                typeds.push(read);
                allocations.push(per_event);
            }
            // A task of its own, as the typed consumer runs.
            let reading = raw(bench.bootstrap.clone(), topic.clone(), events);
            raws.push(tokio::spawn(reading).await.unwrap());
            batched.push(raw_batched(bench.bootstrap.clone(), topic.clone(), events, 1).await);
            if !typed_first {
                let (read, per_event) = typed(bench, &prefix, events, 1).await;
                typeds.push(read);
                allocations.push(per_event);
            }
            // A member, or a reading thread, per core.
            if typed_first {
                wide_typeds.push(typed(bench, &prefix, events, wide).await.0);
            }
            let threads = i32::try_from(wide).expect("a few threads");
            wide_batched
                .push(raw_batched(bench.bootstrap.clone(), topic.clone(), events, threads).await);
            if !typed_first {
                wide_typeds.push(typed(bench, &prefix, events, wide).await.0);
            }
        }
        extra += bench.schemas.requests() - requests;
        let rates = |reads: &[Cost]| reads.iter().map(|r| r.rate).collect::<Vec<_>>();
        let cpu = |reads: &[Cost]| reads.iter().map(|r| r.process_cpu_us).collect::<Vec<_>>();
        rows.push(Row::throughput(
            format!("typed consumer dispatch vs {{raw}}, {label}"),
            rates(&typeds),
            vec![
                ("StreamConsumer + prost".into(), rates(&raws)),
                ("batch read + prost".into(), rates(&batched)),
            ],
            Some(0.95),
        ));
        // Steadier than the rates on shared cores: what the reading costs,
        // not what else ran meanwhile.
        rows.push(
            Row::time(
                format!("bench process CPU per event, typed consumer dispatch vs {{raw}}, {label}"),
                "µs",
                cpu(&typeds),
                cpu(&batched),
                None,
            )
            .named("batch read + prost"),
        );
        let wide_pair = format!("typed consumer, {wide} members vs {{raw}}, {label}");
        let wide_raw = format!("batch read + prost, {wide} threads");
        rows.push(Row::throughput(
            wide_pair.clone(),
            rates(&wide_typeds),
            vec![(wide_raw.clone(), rates(&wide_batched))],
            None,
        ));
        rows.push(
            Row::time(
                format!("bench process CPU per event, {wide_pair}"),
                "µs",
                cpu(&wide_typeds),
                cpu(&wide_batched),
                None,
            )
            .named(&wide_raw),
        );
    }
    rows.push(Row::single(
        "heap allocations per consumed event (dispatch)",
        "allocs",
        allocations,
        None,
    ));
    rows.push(Row::single(
        "registry requests while consuming, after warm-up",
        "requests",
        vec![extra as f64],
        Some(Target::Equals(0.0)),
    ));
    rows
}
