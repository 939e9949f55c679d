//! The consumer runtime: typed handlers in a consumer group, concurrent as
//! the [`ProcessingOrder`] allows, offsets committed only up to the lowest
//! event not yet finished.
//!
//! - [`context`]: what a handler knows of an event besides its content;
//! - [`dispatch`]: the seam with generated code;
//! - [`settings`] and [`stats`]: what a consumer is told, what it counts;
//! - `lanes` and `offsets`: which records may start, and which offset may be
//!   committed (plain data structures);
//! - `fetch_queue` and `fetched`: the assigned partitions' records read
//!   from the member's own queue, a batch at a time, and held as librdkafka
//!   hands them over (the crate's only unsafe code on the read path);
//! - `run_loop`: reads, starts, completes, retries, pauses and drains
//!   (`woken`: the consumer's own queue is polled only once it woke);
//! - `revoking`: partitions leaving the member, given up once drained;
//! - `runs` and `handling`: records of one lane handled one after another
//!   by one call, and one record, start to end, dead letters included;
//! - `batching`: batch handlers, retries and splitting of failing batches;
//! - `group`: rebalances (a partition's records are forwarded to the fetch
//!   queue before it is assigned), fatal errors, leaving the group.

mod batching;
mod context;
mod dispatch;
mod fetch_queue;
pub(crate) mod fetched;
mod group;
mod handling;
mod lanes;
mod offsets;
mod revoking;
mod run_loop;
mod runs;
mod settings;
mod stats;
mod woken;

use std::future::Future;
use std::sync::Arc;

use rdkafka::consumer::{Consumer, StreamConsumer};

pub use context::EventContext;
pub use dispatch::{Batched, Dispatch, Dispatched, RawEvent, UnknownEventPolicy};
pub use settings::{ConsumerSettings, ProcessingOrder};
pub use stats::ConsumerStats;

use crate::dead_letter::{self, DeadLetters};
use crate::error::{Error, ErrorKind};
use crate::instruments::ConsumerInstruments;
use crate::schemas::SchemaRegistry;
use group::GroupContext;

/// Runs a [`Dispatch`] over the records of its topics in a consumer group.
pub struct EventConsumer<D> {
    /// Shared with the threads that run librdkafka's blocking calls.
    consumer: Arc<StreamConsumer<GroupContext>>,
    /// The subscribed topics, shared by every event's context.
    topics: Vec<Arc<str>>,
    /// By topic index: whether a batch handler takes its events.
    batch_topics: Vec<bool>,
    dead_letters: DeadLetters,
    dispatcher: D,
    registry: Arc<SchemaRegistry>,
    settings: ConsumerSettings,
    stats: Arc<ConsumerStats>,
    instruments: ConsumerInstruments,
    /// Times handler calls: a raw TSC read each side, no thread-local or
    /// global lookup per event as `quanta::Instant::now` makes.
    clock: quanta::Clock,
}

impl<D> std::fmt::Debug for EventConsumer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("group", &self.settings.group)
            .finish_non_exhaustive()
    }
}

impl<D: Dispatch> EventConsumer<D> {
    /// Joins the group and subscribes to the dispatcher's topics.
    pub fn new(
        settings: ConsumerSettings,
        registry: Arc<SchemaRegistry>,
        dispatcher: D,
    ) -> Result<Self, Error> {
        settings.check().map_err(ErrorKind::Config)?;
        let mut config = settings.kafka.clone();
        config
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        for (key, value) in settings::CONSUMER_DEFAULTS {
            if config.get(key).is_none() {
                config.set(*key, *value);
            }
        }
        let consumer: StreamConsumer<GroupContext> = config
            .create_with_context(GroupContext::new(&settings.group))
            .map_err(ErrorKind::Kafka)?;
        let dead_letters = match &settings.dead_letter_producer {
            Some(config) => {
                DeadLetters::new(config, &settings.dead_letter_suffix, &settings.group)?
            }
            None => DeadLetters::new(
                &dead_letter::producer_config_of(&settings.kafka),
                &settings.dead_letter_suffix,
                &settings.group,
            )?,
        };
        let contract_topics = dispatcher.topics();
        let batch_topics = contract_topics
            .iter()
            .map(|t| dispatcher.batches(t))
            .collect();
        let topics: Vec<String> = contract_topics
            .iter()
            .map(|t| format!("{}{t}", settings.topic_prefix))
            .collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(ErrorKind::Kafka)?;
        Ok(EventConsumer {
            topics: topics.into_iter().map(Arc::from).collect(),
            batch_topics,
            consumer: Arc::new(consumer),
            dead_letters,
            dispatcher,
            registry,
            settings,
            stats: Arc::default(),
            instruments: ConsumerInstruments::default(),
            clock: quanta::Clock::new(),
        })
    }

    /// Counters that move while the consumer runs.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Injects faults into this member's dead-letter writer, for tests.
    #[cfg(feature = "fault-injection")]
    pub fn dead_letter_fault_injector(&self) -> crate::fault_injection::FaultInjector {
        self.dead_letters.fault_injector()
    }

    /// Consumes until `shutdown` resolves, then lets the handler calls in
    /// flight finish (for at most [`ConsumerSettings::drain_timeout`]; those
    /// still running are then cancelled), commits what finished and leaves
    /// the group (waiting at most [`ConsumerSettings::close_timeout`]).
    ///
    /// A failed event is set aside until its retry is due; only its lane
    /// waits meanwhile (its key, or its partition, by the processing order).
    /// It goes to the dead-letter topic after the last attempt, or at once
    /// for a permanent error, and counts as finished only once that write is
    /// acked.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let result = self.run_until(shutdown).await;
        let closed = group::leave(self.consumer, &self.settings).await;
        // An error of the run itself says more than one of leaving.
        result.and(closed)
    }

    /// Seconds since `started`, a reading of [`Self::clock`] (as the
    /// histogram takes them: no `Duration` on the way).
    fn seconds_since(&self, started: u64) -> f64 {
        self.clock.delta_as_nanos(started, self.clock.raw()) as f64 * 1e-9
    }

    /// The index of `topic` among the subscribed topics.
    fn topic_index(&self, topic: &str) -> Option<usize> {
        self.topics.iter().position(|t| **t == *topic)
    }
}

#[cfg(test)]
mod tests;
