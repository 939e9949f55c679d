//! The consumer runtime: typed handlers in a consumer group, each partition in
//! order, an offset stored only after its event was handled, stored offsets
//! committed periodically, when partitions are revoked and on shutdown.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Timestamp};
use tracing::{Instrument, debug, error, info_span, warn};

use crate::error::{Error, ErrorKind, HandlerError};
use crate::schemas::SchemaRegistry;
use crate::{headers, wire};

/// What a handler knows about the event besides its content.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// Every record header, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The writer's schema id.
    pub schema_id: u32,
    /// The fully-qualified type the writer's schema names.
    pub event_type: Arc<str>,
}

impl EventContext {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The `protobus-event-id` header.
    pub fn event_id(&self) -> Option<&str> {
        self.header(headers::EVENT_ID)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The `protobus-correlation-id` header.
    pub fn correlation_id(&self) -> Option<&str> {
        self.header(headers::CORRELATION_ID)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

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
    pub context: &'a EventContext,
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
}

/// What to do with an event whose type this build has no handler for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownEventPolicy {
    /// Log a warning, count it in [`ConsumerStats::unknown`], commit past it.
    #[default]
    Skip,
    /// Stop the consumer with an error, leaving the event uncommitted.
    Stop,
}

/// Settings of an [`EventConsumer`].
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The consumer group.
    pub group: String,
    /// librdkafka settings, passed through (`bootstrap.servers` at least).
    pub kafka: ClientConfig,
    /// Events of types this build does not know.
    pub unknown_events: UnknownEventPolicy,
    /// How often stored offsets are committed while running.
    pub commit_interval: Duration,
    /// How long to wait before handling a failed event again.
    pub retry_delay: Duration,
    /// Read `prefix` + each contract topic (see `EventProducer::with_topic_prefix`).
    pub topic_prefix: String,
}

impl ConsumerSettings {
    /// Settings for `group` on the cluster `bootstrap`, with the defaults.
    pub fn new(bootstrap: &str, group: &str) -> Self {
        let mut kafka = ClientConfig::new();
        kafka.set("bootstrap.servers", bootstrap);
        ConsumerSettings {
            group: group.to_owned(),
            kafka,
            unknown_events: UnknownEventPolicy::default(),
            commit_interval: Duration::from_secs(1),
            retry_delay: Duration::from_secs(1),
            topic_prefix: String::new(),
        }
    }
}

/// Counters of a running consumer.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events a handler took.
    pub handled: AtomicU64,
    /// Events of types this build has no handler for.
    pub unknown: AtomicU64,
    /// Handler failures (each attempt).
    pub failed: AtomicU64,
    /// Records that are not readable events (not framed, unknown schema id).
    pub poison: AtomicU64,
}

/// Runs a [`Dispatch`] over the records of its topics in a consumer group.
pub struct EventConsumer<D> {
    consumer: StreamConsumer<CommitOnRevoke>,
    dispatcher: D,
    registry: Arc<SchemaRegistry>,
    settings: ConsumerSettings,
    stats: Arc<ConsumerStats>,
}

impl<D> std::fmt::Debug for EventConsumer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("group", &self.settings.group)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Done,
    Retry,
    Stop(Error),
}

impl<D: Dispatch> EventConsumer<D> {
    /// Joins the group and subscribes to the dispatcher's topics.
    pub fn new(
        settings: ConsumerSettings,
        registry: Arc<SchemaRegistry>,
        dispatcher: D,
    ) -> Result<Self, Error> {
        let mut config = settings.kafka.clone();
        config
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        if config.get("auto.offset.reset").is_none() {
            config.set("auto.offset.reset", "earliest");
        }
        let consumer: StreamConsumer<CommitOnRevoke> = config
            .create_with_context(CommitOnRevoke)
            .map_err(ErrorKind::Kafka)?;
        let topics: Vec<String> = dispatcher
            .topics()
            .iter()
            .map(|t| format!("{}{t}", settings.topic_prefix))
            .collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(ErrorKind::Kafka)?;
        Ok(EventConsumer {
            consumer,
            dispatcher,
            registry,
            settings,
            stats: Arc::default(),
        })
    }

    /// Counters that move while the consumer runs.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Consumes until `shutdown` resolves, then commits and leaves the group.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut shutdown = pin!(shutdown);
        let mut last_commit = Instant::now();
        let result = loop {
            let message = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                message = self.consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    warn!(error = %err, "consumer error");
                    continue;
                }
            };
            match self.process(&message).await {
                Outcome::Done => {
                    if let Err(err) = self.consumer.store_offset_from_message(&message) {
                        // The partition was revoked meanwhile; its new owner reads it again.
                        debug!(error = %err, "offset not stored");
                    }
                }
                Outcome::Retry => {
                    let (topic, partition, offset) = (
                        message.topic().to_owned(),
                        message.partition(),
                        message.offset(),
                    );
                    drop(message);
                    if let Err(err) = self.consumer.seek(
                        &topic,
                        partition,
                        Offset::Offset(offset),
                        Duration::from_secs(10),
                    ) {
                        warn!(topic, partition, offset, error = %err, "could not rewind to a failed event");
                    }
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = tokio::time::sleep(self.settings.retry_delay) => {}
                    }
                }
                Outcome::Stop(err) => break Err(err),
            }
            if last_commit.elapsed() >= self.settings.commit_interval {
                commit(&self.consumer, CommitMode::Async);
                last_commit = Instant::now();
            }
        };
        commit(&self.consumer, CommitMode::Sync);
        self.consumer.unsubscribe();
        result
    }

    async fn process(&self, message: &BorrowedMessage<'_>) -> Outcome {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let Some(frame) = message.payload() else {
            return self.poison(message, "the record has no value");
        };
        let header = match wire::read_header(frame) {
            Ok(header) => header,
            Err(err) => return self.poison(message, &err.to_string()),
        };
        let event_type = match self
            .registry
            .writer_type(header.schema_id, &header.indexes)
            .await
        {
            Ok(name) => name,
            Err(err) => match err.kind() {
                ErrorKind::RegistryUnavailable(_) => {
                    warn!(topic, partition, offset, error = %err, "schema registry unavailable; will retry");
                    return Outcome::Retry;
                }
                _ => return self.poison(message, &err.to_string()),
            },
        };
        let context = EventContext {
            topic: topic.to_owned(),
            partition,
            offset,
            key: message.key().map(<[u8]>::to_vec),
            timestamp_ms: match message.timestamp() {
                Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => Some(ms),
                Timestamp::NotAvailable => None,
            },
            headers: message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            schema_id: header.schema_id,
            event_type: event_type.clone(),
        };
        let span = info_span!(
            "event",
            topic,
            partition,
            offset,
            event_type = %event_type,
            event_id = context.event_id().unwrap_or_default(),
            correlation_id = context.correlation_id().unwrap_or_default(),
        );
        let event = RawEvent {
            topic: topic
                .strip_prefix(self.settings.topic_prefix.as_str())
                .unwrap_or(topic),
            full_name: &event_type,
            payload: &frame[header.payload_offset..],
            context: &context,
        };
        match self
            .dispatcher
            .dispatch(event)
            .instrument(span.clone())
            .await
        {
            Ok(Dispatched::Handled) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                Outcome::Done
            }
            Ok(Dispatched::Unknown) => {
                self.stats.unknown.fetch_add(1, Ordering::Relaxed);
                match self.settings.unknown_events {
                    UnknownEventPolicy::Skip => {
                        span.in_scope(|| warn!("no handler for this event type in this build; skipped"));
                        Outcome::Done
                    }
                    UnknownEventPolicy::Stop => Outcome::Stop(
                        ErrorKind::Config(format!(
                            "no handler for event type {event_type} at {topic}/{partition}/{offset}; \
                             rebuild against the newer contract or set the unknown-event policy to Skip"
                        ))
                        .into(),
                    ),
                }
            }
            Err(err) if err.is_undecodable() => self.poison(message, &err.to_string()),
            Err(err) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                span.in_scope(|| warn!(error = %err, retryable = err.is_retryable(), "handler failed; the event stays uncommitted"));
                Outcome::Retry
            }
        }
    }

    fn poison(&self, message: &BorrowedMessage<'_>, reason: &str) -> Outcome {
        self.stats.poison.fetch_add(1, Ordering::Relaxed);
        error!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "not a readable event; skipped"
        );
        Outcome::Done
    }
}

fn commit<C: ConsumerContext>(consumer: &impl Consumer<C>, mode: CommitMode) {
    match consumer.commit_consumer_state(mode) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(err) => {
            warn!(error = %err, "committing offsets failed; they are committed again later")
        }
    }
}

/// Commits what was stored before partitions leave this member, so that their
/// next owner starts after the last handled event.
pub(crate) struct CommitOnRevoke;

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            commit(consumer, CommitMode::Sync);
        }
    }
}
