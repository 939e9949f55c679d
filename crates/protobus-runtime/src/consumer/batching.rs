//! Batch handlers: the events of a topic handed over many at a time, one
//! batch at a time per topic, each in read order (so in offset order per
//! partition and per key, whatever the processing order).
//!
//! A failing batch is retried as the topic's retry policy says; if it keeps
//! failing (or fails permanently, or holds a type this build does not know,
//! or a payload that does not decode), it is split in two and each half is
//! tried once, in order, the failing ones split again, until the events at
//! fault are alone: each of those then gets the per-event treatment (retries,
//! then the dead-letter topic), and the others are handled.

use std::collections::VecDeque;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::FutureExt as _;
use tracing::{Instrument, info_span, warn};

use crate::consumer::fetched::Fetched;
use crate::consumer::handling::{Job, Outcome, Readable};
use crate::consumer::member::Member;
use crate::consumer::{Dispatch, Dispatched, EventContext, RawEvent};
use crate::error::{Chain, Error, HandlerError};
use crate::instruments;

/// A batch whose handling ended.
pub(crate) struct BatchDone<'c> {
    /// Its topic, by index.
    pub(crate) topic: usize,
    /// Every record of the batch, with its job.
    pub(crate) records: Vec<(Fetched<'c>, Job)>,
    /// `Some` if the run must end; the records are then left unfinished.
    pub(crate) stop: Option<Error>,
}

/// The next batch of a batch handler's topic, filling.
#[derive(Default)]
pub(super) struct Collecting<'c> {
    pub(super) records: Vec<(Fetched<'c>, Job)>,
    /// When its first record came.
    pub(super) since: Option<Instant>,
    /// Whether a batch of this topic is being handled.
    pub(super) running: bool,
}

impl Collecting<'_> {
    /// When it must go, if it may go at all: at once when full (its first
    /// record's arrival, long past), else `max_wait` after that.
    pub(super) fn due(&self, max_size: usize, max_wait: std::time::Duration) -> Option<Instant> {
        if self.running {
            return None;
        }
        let since = self.since?;
        Some(if self.records.len() >= max_size {
            since
        } else {
            since + max_wait
        })
    }

    /// Whether it goes now; the clock is read only for a batch not yet full.
    pub(super) fn ready(&self, max_size: usize, max_wait: std::time::Duration) -> bool {
        !self.running
            && (self.records.len() >= max_size
                || self
                    .since
                    .is_some_and(|since| since + max_wait <= Instant::now()))
    }
}

impl<D: Dispatch> Member<D> {
    /// Handles `records` (of the topic with index `topic`, in read order) as
    /// batches; returns once each is handled or dead-lettered.
    pub(crate) async fn handle_batch<'c>(
        &'c self,
        topic: usize,
        records: Vec<(Fetched<'c>, Job)>,
    ) -> BatchDone<'c> {
        let stop = self.settle_batch(&records).await.err();
        BatchDone {
            topic,
            records,
            stop,
        }
    }

    async fn settle_batch(&self, records: &[(Fetched<'_>, Job)]) -> Result<(), Error> {
        // Records that are not readable events are settled alone first: a
        // batch holds only events its handler can be given.
        let mut readable = Vec::with_capacity(records.len());
        let mut recent = None;
        for (message, job) in records {
            loop {
                let topic = job.ticket.partition.topic;
                match self.resolve(message, topic, recent.clone()).await {
                    Ok(event) => {
                        recent = Some(event.resolved.clone());
                        readable.push((message, event));
                        break;
                    }
                    Err(Outcome::Done) => break,
                    Err(Outcome::Retry { delay, .. }) => tokio::time::sleep(delay).await,
                    Err(Outcome::Stop(err)) => return Err(err),
                }
            }
        }
        let contexts: Vec<EventContext<'_>> = readable
            .iter()
            .map(|(message, e)| {
                EventContext::of(
                    message,
                    &e.resolved.topic,
                    e.schema_id,
                    &e.resolved.event_type,
                )
            })
            .collect();
        let events: Vec<RawEvent<'_>> = readable
            .iter()
            .zip(&contexts)
            .map(|((message, e), context)| RawEvent {
                topic: e
                    .resolved
                    .topic
                    .strip_prefix(self.shared.settings.topic_prefix.as_str())
                    .unwrap_or(&e.resolved.topic),
                full_name: &e.resolved.event_type,
                payload: &message.payload().unwrap_or_default()[e.payload_offset..],
                context,
            })
            .collect();
        // Ranges still to settle, in order; only the whole batch is retried.
        let mut todo = VecDeque::from([(0..events.len(), true)]);
        while let Some((range, whole)) = todo.pop_front() {
            if range.len() == 1 {
                let (message, event) = &readable[range.start];
                self.settle_alone(message, event).await?;
                continue;
            }
            if range.is_empty()
                || self
                    .try_batch(&events, &readable, range.clone(), whole)
                    .await
            {
                continue;
            }
            self.shared
                .stats
                .batch_splits
                .fetch_add(1, Ordering::Relaxed);
            let middle = range.start + range.len() / 2;
            todo.push_front((middle..range.end, false));
            todo.push_front((range.start..middle, false));
        }
        Ok(())
    }

    /// Hands `events[range]` to the batch handler, with retries if `whole`;
    /// whether it was handled (else it is to be split).
    async fn try_batch(
        &self,
        events: &[RawEvent<'_>],
        readable: &[(&Fetched<'_>, Readable)],
        range: Range<usize>,
        whole: bool,
    ) -> bool {
        let topic = &*readable[range.start].1.resolved.topic;
        let policy = self.shared.settings.policy(topic);
        let mut attempt = 1;
        loop {
            let span = info_span!("batch", topic, size = range.len(), attempt);
            let started = self.clock.raw();
            let dispatching = AssertUnwindSafe(
                self.shared
                    .dispatcher
                    .dispatch_batch(&events[range.clone()]),
            )
            .catch_unwind()
            .instrument(span.clone());
            let dispatched = dispatching
                .await
                .unwrap_or_else(|panic| Err(HandlerError::panicked(panic.as_ref())));
            let err = match dispatched {
                Ok(Dispatched::Handled) => {
                    let handled = &readable[range];
                    self.shared.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .stats
                        .handled
                        .fetch_add(handled.len() as u64, Ordering::Relaxed);
                    for (_, event) in handled {
                        event.resolved.instruments.consumed.increment(1);
                    }
                    // One handler call: its duration, once.
                    let (_, first) = &handled[0];
                    first
                        .resolved
                        .instruments
                        .handler_seconds
                        .record(self.seconds_since(started));
                    return true;
                }
                // Its events go alone: the unknown ones meet their policy.
                Ok(Dispatched::Unknown) => return false,
                Err(err) => err,
            };
            self.shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            let event_type = &readable[range.start].1.resolved.event_type;
            instruments::handler_failed(topic, event_type, err.is_retryable());
            if whole && err.is_retryable() && policy.allows_another(attempt) {
                let delay = policy.delay(attempt);
                span.in_scope(|| warn!(error = %Chain(&err), retry_in = ?delay, "batch handler failed; the batch will be retried"));
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            span.in_scope(|| warn!(error = %Chain(&err), "batch handler failed; the batch is split to find the events at fault"));
            return false;
        }
    }

    /// One event left alone by splitting: the per-event path, retries and
    /// dead letter included, waiting out its retries here (the batch's topic
    /// waits meanwhile, as its order requires).
    async fn settle_alone(&self, message: &Fetched<'_>, event: &Readable) -> Result<(), Error> {
        let mut attempt = 1;
        loop {
            let outcome = self
                .call_handler(
                    message,
                    attempt,
                    &event.resolved,
                    event.schema_id,
                    event.payload_offset,
                )
                .await;
            match outcome {
                Outcome::Done => return Ok(()),
                Outcome::Retry { delay, counted } => {
                    self.shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    if counted {
                        attempt += 1;
                    }
                }
                Outcome::Stop(err) => return Err(err),
            }
        }
    }
}
