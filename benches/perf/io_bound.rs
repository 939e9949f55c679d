//! Handlers that wait on I/O: each call awaits a 10 ms timer, as a database
//! write would. 12 000 events of 1 000 keys on 12 partitions, read whole as a
//! new group each round, next to the ideal of each mode: in partition order
//! the busiest partition's events one after another (keys spread unevenly),
//! in key order `max_in_flight` 256 calls at once, for a batch handler one
//! batch of 500 at a time.
//!
//! The latency is the one the handlers measured: tokio's timer rounds a
//! 10 ms sleep up to whole milliseconds and wakes on the next tick, so a call
//! lasts 11 to 12 ms here, and no consumer could do better than that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{
    ShopOrdersBatchDispatcher, ShopOrdersBatchHandler, ShopOrdersDispatcher, ShopOrdersEvent,
    ShopOrdersHandler,
};
use protobus_runtime::{
    Batched, ConsumerSettings, EventContext, EventProducer, HandlerError, ProcessingOrder,
    SendOptions,
};

use crate::consume::{Clock, read_whole};
use crate::{Bench, Row, Target, kafka};

const PARTITIONS: i32 = 12;
const KEYS: usize = 1000;
/// What a handler call waits.
const LATENCY: Duration = Duration::from_millis(10);
const KEY_IN_FLIGHT: usize = 256;
const BATCH_SIZE: usize = 500;

/// How long the handler calls of a round took, together.
#[derive(Clone, Default)]
struct Calls {
    micros: Arc<AtomicU64>,
    count: Arc<AtomicU64>,
}

impl Calls {
    /// Waits [`LATENCY`] and notes how long that took.
    async fn wait(&self) {
        let started = Instant::now();
        tokio::time::sleep(LATENCY).await;
        let micros = started.elapsed().as_micros() as u64;
        self.micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The mean call, in seconds.
    fn mean(&self) -> f64 {
        let count = self.count.load(Ordering::Relaxed).max(1);
        self.micros.load(Ordering::Relaxed) as f64 / count as f64 / 1e6
    }
}

/// One event per call, after waiting [`LATENCY`].
#[derive(Clone)]
struct Waits(Clock, Calls);

impl ShopOrdersHandler for Waits {
    async fn order_placed(&self, _: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.1.wait().await;
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

/// A batch per call, after waiting [`LATENCY`].
#[derive(Clone)]
struct WaitsPerBatch(Clock, Calls);

impl ShopOrdersBatchHandler for WaitsPerBatch {
    async fn handle_batch(
        &self,
        batch: Vec<Batched<'_, ShopOrdersEvent>>,
    ) -> Result<(), HandlerError> {
        self.1.wait().await;
        for item in batch {
            std::hint::black_box(item.event);
            self.0.tick();
        }
        Ok(())
    }
}

pub(crate) async fn run(bench: &Bench) -> Vec<Row> {
    // The small pass of `cargo test --all-targets` only checks the harness.
    let events = if bench.measuring { 12_000 } else { 1_200 };
    let rounds = bench.rounds.min(3);
    let (prefix, _) = kafka::topic_with(&bench.bootstrap, "io-bound", PARTITIONS).await;
    let producer = EventProducer::new(&kafka::settings(&bench.bootstrap), bench.schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    let mut pending = Vec::with_capacity(events);
    for i in 0..events {
        let mut order = kafka::event(i, 100);
        order.order_id = format!("key-{}", i % KEYS);
        let delivery = producer.enqueue(&order, SendOptions::default());
        pending.push(delivery.await.unwrap());
    }
    // Keys spread unevenly: in partition order the busiest partition, one
    // event after another, takes longest, and sets the ideal.
    let mut per_partition = vec![0_usize; PARTITIONS as usize];
    for delivery in pending {
        let delivery = delivery.await.expect("fill the topic");
        per_partition[delivery.partition as usize] += 1;
    }
    let busiest = per_partition.iter().copied().max().unwrap_or(1);
    // Per mode: events/s, the ideal at the latency measured, and that latency.
    let mut measured = Vec::new();
    let mut modes = Vec::new();
    let round = || (Clock::new(events), Calls::default());

    let (mut rates, mut ideals) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (clock, calls) = round();
        let dispatcher = ShopOrdersDispatcher(Waits(clock.clone(), calls.clone()));
        rates.push(read_whole(bench, &prefix, &clock, |_| {}, dispatcher).await);
        ideals.push(events as f64 / (busiest as f64 * calls.mean()));
        measured.push(calls.mean() * 1e3);
    }
    modes.push((
        format!("10 ms handler, partition order, {PARTITIONS} partitions vs {{raw}}"),
        format!("busiest partition ({busiest}) × latency"),
        rates,
        ideals,
        Target::RatioAtLeast(0.85),
    ));

    let (mut rates, mut ideals) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (clock, calls) = round();
        let dispatcher = ShopOrdersDispatcher(Waits(clock.clone(), calls.clone()));
        let tune = |s: &mut ConsumerSettings| {
            s.order = ProcessingOrder::Key;
            s.max_in_flight = KEY_IN_FLIGHT;
        };
        rates.push(read_whole(bench, &prefix, &clock, tune, dispatcher).await);
        ideals.push(KEY_IN_FLIGHT as f64 / calls.mean());
        measured.push(calls.mean() * 1e3);
    }
    modes.push((
        format!("10 ms handler, key order, max_in_flight {KEY_IN_FLIGHT} vs {{raw}}"),
        format!("{KEY_IN_FLIGHT} at once ÷ latency"),
        rates,
        ideals,
        Target::RatioAtLeast(0.80),
    ));

    let (mut rates, mut ideals) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (clock, calls) = round();
        let dispatcher = ShopOrdersBatchDispatcher(WaitsPerBatch(clock.clone(), calls.clone()));
        let tune = |s: &mut ConsumerSettings| s.max_batch_size = BATCH_SIZE;
        rates.push(read_whole(bench, &prefix, &clock, tune, dispatcher).await);
        ideals.push(BATCH_SIZE as f64 / calls.mean());
        measured.push(calls.mean() * 1e3);
    }
    // Judged by events/s: at least 20 000.
    modes.push((
        format!("10 ms batch handler, max_batch_size {BATCH_SIZE} vs {{raw}}"),
        format!("{BATCH_SIZE} a batch ÷ latency"),
        rates,
        ideals,
        Target::AtLeast(20_000.0),
    ));

    let mut rows: Vec<Row> = modes
        .into_iter()
        .map(|(pair, ideal, rates, ideals, target)| {
            Row::throughput(pair, rates, vec![(ideal, ideals)], None).judged_by(target)
        })
        .collect();
    rows.push(Row::single(
        "latency of a handler's 10 ms sleep, measured",
        "ms",
        measured,
        None,
    ));
    rows
}
