//! One member of the group: its own librdkafka consumer, subscribed to the
//! dispatcher's topics, and the run loop that reads and handles its
//! partitions on one task. An [`EventConsumer`](super::EventConsumer) runs
//! one or more of them.

use std::future::Future;
use std::sync::{Arc, Mutex};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};

use crate::consumer::group::{self, GroupContext};
use crate::consumer::{ConsumerSettings, ConsumerStats, Dispatch};
use crate::dead_letter::DeadLetters;
use crate::error::{Error, ErrorKind};
use crate::instruments::{ConsumerInstruments, LagReporters};
use crate::schemas::SchemaRegistry;

/// What every member of one consumer shares.
pub(super) struct Shared<D> {
    pub(super) dispatcher: D,
    pub(super) registry: Arc<SchemaRegistry>,
    pub(super) settings: ConsumerSettings,
    pub(super) dead_letters: DeadLetters,
    pub(super) stats: Arc<ConsumerStats>,
    /// The subscribed topics (the contract's, with the consumer's prefix),
    /// shared by every event's context.
    pub(super) topics: Vec<Arc<str>>,
    /// By topic index: whether a batch handler takes its events.
    pub(super) batch_topics: Vec<bool>,
    /// Which member reports each partition's lag.
    pub(super) lag_reporters: Arc<Mutex<LagReporters>>,
}

/// One member of the group, as the module says.
pub(crate) struct Member<D> {
    /// Shared with the threads that run librdkafka's blocking calls.
    pub(super) consumer: Arc<StreamConsumer<GroupContext>>,
    pub(super) shared: Arc<Shared<D>>,
    pub(super) instruments: ConsumerInstruments,
    /// Times handler calls: a raw TSC read each side, no thread-local or
    /// global lookup per event as `quanta::Instant::now` makes.
    pub(super) clock: quanta::Clock,
}

impl<D: Dispatch> Member<D> {
    /// Joins the group as the consumer's member `index`, with the librdkafka
    /// settings `kafka`, and subscribes to the shared topics.
    pub(super) fn new(
        kafka: &ClientConfig,
        shared: Arc<Shared<D>>,
        index: usize,
    ) -> Result<Self, Error> {
        let context =
            GroupContext::new(&shared.settings.group, shared.lag_reporters.clone(), index);
        let consumer: StreamConsumer<GroupContext> = kafka
            .create_with_context(context)
            .map_err(ErrorKind::Kafka)?;
        let names: Vec<&str> = shared.topics.iter().map(|t| &**t).collect();
        consumer.subscribe(&names).map_err(ErrorKind::Kafka)?;
        Ok(Member {
            consumer: Arc::new(consumer),
            shared,
            instruments: ConsumerInstruments::default(),
            clock: quanta::Clock::new(),
        })
    }

    /// Consumes until `shutdown` resolves, then drains, commits and leaves
    /// (see [`EventConsumer::run`](super::EventConsumer::run)).
    pub(super) async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let result = self.run_until(shutdown).await;
        let closed = group::leave(self.consumer, &self.shared.settings).await;
        // An error of the run itself says more than one of leaving.
        result.and(closed)
    }

    /// Seconds since `started`, a reading of [`Self::clock`] (as the
    /// histogram takes them: no `Duration` on the way).
    pub(super) fn seconds_since(&self, started: u64) -> f64 {
        self.clock.delta_as_nanos(started, self.clock.raw()) as f64 * 1e-9
    }

    /// The index of `topic` among the subscribed topics.
    pub(super) fn topic_index(&self, topic: &str) -> Option<usize> {
        self.shared.topics.iter().position(|t| **t == *topic)
    }
}
