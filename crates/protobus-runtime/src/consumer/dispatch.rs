//! The seam between the consumer and generated code: a [`Dispatch`] decodes
//! a raw event as its type and calls the handler method for it.

use std::future::Future;

use crate::consumer::EventContext;
use crate::error::HandlerError;

/// An event as read, before decoding: its writer's type name and payload.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// The contract topic it came from (the Kafka topic without the consumer's prefix).
    pub topic: &'a str,
    /// Fully-qualified type name from the writer's schema.
    pub full_name: &'a str,
    /// The Protobuf payload (the frame without its header).
    pub payload: &'a [u8],
    /// Where it came from.
    pub context: &'a EventContext<'a>,
}

/// What a dispatcher did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// A handler method took it and succeeded.
    Handled,
    /// No handler method exists for its type in this build (e.g. a type a newer
    /// producer added); the consumer's [`UnknownEventPolicy`] decides.
    Unknown,
}

/// One event of a batch, decoded, with where it came from.
#[derive(Debug)]
pub struct Batched<'a, E> {
    /// The event, as the generated enum of its topic.
    pub event: E,
    /// Where it came from.
    pub context: &'a EventContext<'a>,
}

/// Routes decoded events to handler methods; generated per topic by `protobus-build`.
pub trait Dispatch: Send + Sync {
    /// The topics it handles.
    fn topics(&self) -> Vec<&'static str>;

    /// Whether it handles `topic` (asked per record: no allocation).
    fn handles(&self, topic: &str) -> bool;

    /// Decodes `event` as its type and calls the handler method for it.
    fn dispatch<'a>(
        &'a self,
        event: RawEvent<'a>,
    ) -> impl Future<Output = Result<Dispatched, HandlerError>> + Send + 'a;

    /// Whether the events of `topic` go to a batch handler (through
    /// [`dispatch_batch`](Dispatch::dispatch_batch)).
    fn batches(&self, topic: &str) -> bool {
        let _ = topic;
        false
    }

    /// Decodes `events` (of one topic, in order) and hands them to the
    /// batch handler in one call: [`Dispatched::Unknown`] if any type is
    /// unknown, an error if any does not decode or the handler fails. The
    /// consumer splits a failing batch to find the events at fault.
    fn dispatch_batch<'a>(
        &'a self,
        events: &'a [RawEvent<'a>],
    ) -> impl Future<Output = Result<Dispatched, HandlerError>> + Send + 'a {
        async move {
            for &event in events {
                if self.dispatch(event).await? == Dispatched::Unknown {
                    return Ok(Dispatched::Unknown);
                }
            }
            Ok(Dispatched::Handled)
        }
    }
}

/// Two dispatchers in one consumer, each for its own topics.
impl<A: Dispatch, B: Dispatch> Dispatch for (A, B) {
    fn topics(&self) -> Vec<&'static str> {
        let mut topics = self.0.topics();
        topics.extend(self.1.topics());
        topics
    }

    fn handles(&self, topic: &str) -> bool {
        self.0.handles(topic) || self.1.handles(topic)
    }

    async fn dispatch<'a>(&'a self, event: RawEvent<'a>) -> Result<Dispatched, HandlerError> {
        if self.0.handles(event.topic) {
            self.0.dispatch(event).await
        } else {
            self.1.dispatch(event).await
        }
    }

    fn batches(&self, topic: &str) -> bool {
        if self.0.handles(topic) {
            self.0.batches(topic)
        } else {
            self.1.batches(topic)
        }
    }

    async fn dispatch_batch<'a>(
        &'a self,
        events: &'a [RawEvent<'a>],
    ) -> Result<Dispatched, HandlerError> {
        match events.first() {
            Some(first) if self.0.handles(first.topic) => self.0.dispatch_batch(events).await,
            Some(_) => self.1.dispatch_batch(events).await,
            None => Ok(Dispatched::Handled),
        }
    }
}

/// What to do with an event whose type this build has no handler for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownEventPolicy {
    /// Write it to the dead-letter topic (reason `unknown-type`), count it in
    /// [`ConsumerStats::unknown`](crate::ConsumerStats::unknown), go on: nothing is lost, nothing blocks.
    #[default]
    DeadLetter,
    /// Log a warning, count it, commit past it.
    Skip,
    /// Stop the consumer with an error, leaving the event uncommitted.
    Stop,
}
