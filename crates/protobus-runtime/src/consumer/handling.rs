//! One record, start to end: its writer type, the handler call, and what
//! becomes of it (done, retried later, dead-lettered, or the end of the run).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::Either;
use tracing::{Instrument, Level, Span, error, info_span, warn};

use crate::consumer::fetched::Fetched;
use crate::consumer::lanes::Ticket;
use crate::consumer::member::Member;
use crate::consumer::{Dispatch, Dispatched, EventContext, RawEvent, UnknownEventPolicy};
use crate::dead_letter::Reason;
use crate::error::{Chain, Error, ErrorKind, HandlerError};
use crate::instruments::{self, Consumed};
use crate::wire;

/// What became of a handler call.
pub(crate) enum Outcome {
    /// Handled, skipped or dead-lettered: its offset may be committed.
    Done,
    /// Try the event again after `delay`; `counted`: a handler attempt was used.
    Retry { delay: Duration, counted: bool },
    /// The run ends.
    Stop(Error),
}

/// Records started: their place in the lanes, and which attempt this is
/// for the first of them (the others' first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    pub(crate) ticket: Ticket,
    pub(crate) attempt: u32,
}

/// A topic and writer type, with what was looked up for them: consecutive
/// records mostly share these, and a hit skips the shared caches' locks and
/// hashing.
pub(crate) struct Resolved {
    /// The Kafka topic, and its index among the subscribed ones.
    pub(crate) topic: Arc<str>,
    topic_index: usize,
    schema_id: u32,
    /// The frame's header bytes (magic byte, schema id, message indexes):
    /// a record whose value starts with them has this writer type, and its
    /// payload starts right after, with no header to parse.
    header: Box<[u8]>,
    pub(crate) event_type: Arc<str>,
    pub(crate) instruments: Consumed,
}

/// A record that is a readable event: its writer type and where its payload starts.
pub(crate) struct Readable {
    pub(crate) resolved: Arc<Resolved>,
    pub(crate) schema_id: u32,
    pub(crate) payload_offset: usize,
}

impl Resolved {
    /// Whether `frame`, of the subscribed topic `topic_index`, has this
    /// writer type. The header's encoding is self-delimiting: a frame that
    /// starts with these bytes parses to this header.
    fn matches(&self, topic_index: usize, frame: &[u8]) -> bool {
        self.topic_index == topic_index && frame.starts_with(&self.header)
    }
}

impl<D: Dispatch> Member<D> {
    /// Handles `message` (of the subscribed topic with index
    /// `topic_index`); `recent` is the last writer type resolved.
    pub(crate) async fn process(
        &self,
        message: &Fetched<'_>,
        topic_index: usize,
        attempt: u32,
        recent: Option<Arc<Resolved>>,
    ) -> (Outcome, Option<Arc<Resolved>>) {
        // The last writer type, mostly: checked before any future is made.
        let event = match Self::recognise(message, topic_index, recent) {
            Some(event) => event,
            None => match self.resolve(message, topic_index, None).await {
                Ok(event) => event,
                Err(outcome) => return (outcome, None),
            },
        };
        let outcome = self
            .call_handler(
                message,
                attempt,
                &event.resolved,
                event.schema_id,
                event.payload_offset,
            )
            .await;
        (outcome, Some(event.resolved))
    }

    /// `message` (of the subscribed topic with index `topic_index`) as a
    /// record of the writer type `recent`, if it is one.
    fn recognise(
        message: &Fetched<'_>,
        topic_index: usize,
        recent: Option<Arc<Resolved>>,
    ) -> Option<Readable> {
        let recent = recent?;
        if !recent.matches(topic_index, message.payload()?) {
            return None;
        }
        Some(Readable {
            schema_id: recent.schema_id,
            payload_offset: recent.header.len(),
            resolved: recent,
        })
    }

    /// The writer type of `message` (of the subscribed topic with index
    /// `topic_index`), or what became of a record that is not a readable
    /// event (dead-lettered, or to retry while the registry is unavailable).
    pub(crate) async fn resolve(
        &self,
        message: &Fetched<'_>,
        topic_index: usize,
        recent: Option<Arc<Resolved>>,
    ) -> Result<Readable, Outcome> {
        if let Some(readable) = Self::recognise(message, topic_index, recent) {
            return Ok(readable);
        }
        // The subscribed name: `message.topic()` would validate it per call.
        let topic_name = &self.shared.topics[topic_index];
        let (topic, partition, offset) = (&**topic_name, message.partition(), message.offset());
        let Some(frame) = message.payload() else {
            return Err(self
                .dead_letter(message, Reason::Poison, "the record has no value", 0)
                .await);
        };
        let header = match wire::read_header(frame) {
            Ok(header) => header,
            Err(err) => {
                return Err(self
                    .dead_letter(message, Reason::Poison, &err.to_string(), 0)
                    .await);
            }
        };
        let event_type = match self
            .shared
            .registry
            .writer_type(header.schema_id, &header.indexes)
            .await
        {
            Ok(name) => name,
            Err(err) => match err.kind() {
                ErrorKind::RegistryUnavailable(_) => {
                    warn!(topic, partition, offset, error = %err, "schema registry unavailable; will retry");
                    let delay = self
                        .shared
                        .settings
                        .policy(topic)
                        .delay(1)
                        .max(Duration::from_secs(1));
                    return Err(Outcome::Retry {
                        delay,
                        counted: false,
                    });
                }
                _ => {
                    return Err(self
                        .dead_letter(message, Reason::Poison, &err.to_string(), 0)
                        .await);
                }
            },
        };
        let resolved = Arc::new(Resolved {
            schema_id: header.schema_id,
            header: frame[..header.payload_offset].into(),
            instruments: self.instruments.get(topic_name, &event_type),
            topic: topic_name.clone(),
            topic_index,
            event_type,
        });
        // The index path served the lookup; the header is not carried across
        // the dispatch's await (a Header kept alive across the decode cost
        // the unframe + decode bench a tenth).
        Ok(Readable {
            schema_id: header.schema_id,
            payload_offset: header.payload_offset,
            resolved,
        })
    }

    pub(crate) async fn call_handler(
        &self,
        message: &Fetched<'_>,
        attempt: u32,
        resolved: &Resolved,
        schema_id: u32,
        payload_offset: usize,
    ) -> Outcome {
        let Resolved {
            topic: topic_name,
            event_type,
            instruments,
            ..
        } = resolved;
        let (topic, partition, offset) = (&**topic_name, message.partition(), message.offset());
        let frame = message.payload().unwrap_or_default();
        let context = EventContext::of(message, topic_name, schema_id, event_type);
        // Without a subscriber at INFO, no span at all: building a disabled
        // span still costs per event (and with tracing's `log` feature, which
        // axum turns on, a trip through `log`), and so does dropping one.
        let span = tracing::level_enabled!(Level::INFO).then(|| {
            info_span!(
                "event",
                topic,
                partition,
                offset,
                attempt,
                event_type = %event_type,
                event_id = tracing::field::Empty,
                correlation_id = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                parent_span_id = tracing::field::Empty,
            )
        });
        let span = span.filter(|span| !span.is_disabled());
        // Reading headers costs; only a span someone listens to gets them.
        if let Some(span) = &span {
            span.record("event_id", context.event_id().unwrap_or_default());
            span.record(
                "correlation_id",
                context.correlation_id().unwrap_or_default(),
            );
            if let Some(trace) = context.traceparent() {
                span.record("trace_id", trace.trace_id);
                span.record("parent_span_id", trace.parent_id);
                #[cfg(feature = "opentelemetry")]
                crate::traceparent::set_parent(span, &trace);
            }
        }
        let event = RawEvent {
            topic: topic
                .strip_prefix(self.shared.settings.topic_prefix.as_str())
                .unwrap_or(topic),
            full_name: event_type,
            payload: &frame[payload_offset..],
            context: &context,
        };
        let started = self.clock.raw();
        let dispatched = {
            // A panicking handler fails its event (retried, then
            // dead-lettered) instead of taking the member and every other
            // call in flight down.
            let dispatching =
                AssertUnwindSafe(self.shared.dispatcher.dispatch(event)).catch_unwind();
            // Entering and leaving a span no one listens to still costs, per
            // poll. One future, awaited once: an await in each branch gave
            // the dispatch two places in this future (808 bytes, now 560),
            // moved per record.
            match &span {
                None => Either::Left(dispatching),
                Some(span) => Either::Right(dispatching.instrument(span.clone())),
            }
        }
        .await;
        match dispatched.unwrap_or_else(|panic| Err(HandlerError::panicked(panic.as_ref()))) {
            Ok(Dispatched::Handled) => {
                self.shared.stats.handled.fetch_add(1, Ordering::Relaxed);
                instruments.consumed.increment(1);
                instruments
                    .handler_seconds
                    .record(self.seconds_since(started));
                Outcome::Done
            }
            Ok(Dispatched::Unknown) => {
                self.shared.stats.unknown.fetch_add(1, Ordering::Relaxed);
                match self.shared.settings.unknown_events {
                    UnknownEventPolicy::DeadLetter => {
                        let reason = format!("no handler for event type {event_type} in this build");
                        self.dead_letter(message, Reason::UnknownType, &reason, 0).await
                    }
                    UnknownEventPolicy::Skip => {
                        in_span(&span, || warn!("no handler for this event type in this build; skipped"));
                        Outcome::Done
                    }
                    UnknownEventPolicy::Stop => Outcome::Stop(
                        ErrorKind::Config(format!(
                            "no handler for event type {event_type} at {topic}/{partition}/{offset}; \
                             rebuild against the newer contract or change the unknown-event policy"
                        ))
                        .into(),
                    ),
                }
            }
            Err(err) if err.is_undecodable() => {
                let error = Chain(&err).to_string();
                self.dead_letter(message, Reason::Poison, &error, 0).await
            }
            Err(err) => {
                self.shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                instruments::handler_failed(topic, event_type, err.is_retryable());
                let policy = self.shared.settings.policy(topic);
                if err.is_retryable() && policy.allows_another(attempt) {
                    let delay = policy.delay(attempt);
                    in_span(
                        &span,
                        || warn!(error = %Chain(&err), retry_in = ?delay, "handler failed; the partition waits, the event will be retried"),
                    );
                    Outcome::Retry {
                        delay,
                        counted: true,
                    }
                } else {
                    let reason = if err.is_retryable() {
                        Reason::RetriesExhausted
                    } else {
                        Reason::Permanent
                    };
                    let error = Chain(&err).to_string();
                    self.dead_letter(message, reason, &error, attempt).await
                }
            }
        }
    }

    /// Writes the record to its dead-letter topic; only once that is acked is
    /// the original offset stored. A failed write is retried, never skipped.
    async fn dead_letter(
        &self,
        message: &Fetched<'_>,
        reason: Reason,
        error: &str,
        attempts: u32,
    ) -> Outcome {
        if reason == Reason::Poison {
            self.shared.stats.poison.fetch_add(1, Ordering::Relaxed);
        }
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        // Boxed: rare, and its producer send would otherwise be part of
        // every record's `process` future, copied per record.
        let written = Box::pin(
            self.shared
                .dead_letters
                .write(message, reason, error, attempts),
        )
        .await;
        match written {
            Ok(dead_letter_topic) => {
                self.shared
                    .stats
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
                instruments::dead_lettered(topic, reason.as_str());
                warn!(
                    topic,
                    partition,
                    offset,
                    reason = reason.as_str(),
                    error,
                    dead_letter_topic,
                    "event dead-lettered"
                );
                Outcome::Done
            }
            Err(err) => {
                error!(topic, partition, offset, error = %err, "could not write to the dead-letter topic; will retry");
                Outcome::Retry {
                    delay: Duration::from_secs(1),
                    counted: false,
                }
            }
        }
    }
}

/// Runs `f` in `span`, if there is one.
fn in_span<R>(span: &Option<Span>, f: impl FnOnce() -> R) -> R {
    match span {
        Some(span) => span.in_scope(f),
        None => f(),
    }
}
