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
//! - `member` and `members`: one member of the group, its consumer and run
//!   loop; several members of one consumer, each on a task of its own;
//! - `group`: rebalances (a partition's records are forwarded to the fetch
//!   queue before it is assigned), fatal errors, leaving the group.

mod batching;
mod context;
mod dispatch;
mod disposal;
mod fetch_queue;
pub(crate) mod fetched;
mod group;
mod handling;
mod lanes;
mod member;
mod members;
mod offsets;
mod pausing;
mod revoking;
mod run_loop;
mod runs;
mod settings;
mod stats;
mod woken;

use std::future::Future;
use std::sync::Arc;

pub use context::EventContext;
pub use dispatch::{Batched, Dispatch, Dispatched, RawEvent, UnknownEventPolicy};
pub use settings::{ConsumerSettings, ProcessingOrder};
pub use stats::ConsumerStats;

use crate::dead_letter::{self, DeadLetters};
use crate::error::{Error, ErrorKind};
use crate::schemas::SchemaRegistry;
use member::{Member, Shared};

/// Runs a [`Dispatch`] over the records of its topics in a consumer group,
/// as one or more members ([`ConsumerSettings::members`]).
pub struct EventConsumer<D> {
    /// At least one: `members` 0 is refused when built.
    members: Vec<Member<D>>,
}

impl<D> EventConsumer<D> {
    /// What the members share.
    fn shared(&self) -> &Shared<D> {
        &self.members[0].shared
    }
}

impl<D> std::fmt::Debug for EventConsumer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("group", &self.shared().settings.group)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl<D: Dispatch> EventConsumer<D> {
    /// Joins the group, as [`ConsumerSettings::members`] members, and
    /// subscribes to the dispatcher's topics.
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
        let shared = Arc::new(Shared {
            batch_topics: contract_topics
                .iter()
                .map(|t| dispatcher.batches(t))
                .collect(),
            topics: contract_topics
                .iter()
                .map(|t| Arc::from(format!("{}{t}", settings.topic_prefix)))
                .collect(),
            dispatcher,
            registry,
            settings,
            dead_letters,
            stats: Arc::default(),
            lag_reporters: Arc::default(),
        });
        let members = (0..shared.settings.members)
            .map(|index| {
                let mut config = config.clone();
                // Static membership names each member: two with one name
                // would fence each other.
                if let Some(id) = config.get("group.instance.id")
                    && shared.settings.members > 1
                {
                    let id = format!("{id}-{index}");
                    config.set("group.instance.id", id);
                }
                Member::new(&config, shared.clone(), index)
            })
            .collect::<Result<_, _>>()?;
        Ok(EventConsumer { members })
    }

    /// Counters that move while the consumer runs, summed over its members.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.shared().stats.clone()
    }

    /// Injects faults into the consumer's dead-letter writer, for tests.
    #[cfg(feature = "fault-injection")]
    pub fn dead_letter_fault_injector(&self) -> crate::fault_injection::FaultInjector {
        self.shared().dead_letters.fault_injector()
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
    ///
    /// With several [`members`](ConsumerSettings::members), each runs on a
    /// task of its own; should one end with an error, the others stop as at
    /// `shutdown`, and `run` returns the first error.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error>
    where
        D: 'static,
    {
        let mut members = self.members;
        if members.len() == 1 {
            let member = members.pop().expect("one member");
            return member.run(shutdown).await;
        }
        members::run(members, shutdown).await
    }
}

#[cfg(test)]
mod tests;
