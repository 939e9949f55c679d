//! The consumer runtime: typed handlers in a consumer group, each partition in
//! order, an offset stored only after its event was handled, stored offsets
//! committed periodically, when partitions are revoked and on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use tracing::{Instrument, debug, error, info_span, warn};

use crate::dead_letter::{self, DeadLetters, Reason};
use crate::error::{Error, ErrorKind, HandlerError};
use crate::instruments::{self, Consumed, ConsumerInstruments};
use crate::retry::RetryPolicy;
use crate::schemas::SchemaRegistry;
use crate::traceparent::{self, TraceParent};
use crate::{headers, wire};

/// What a handler knows about the event besides its content.
///
/// It borrows the record it describes: the key and headers are read from
/// librdkafka's copy only when asked for (copying them for every event cost
/// the consumer a third of its throughput). [`detached`](Self::detached)
/// makes a copy that outlives the handler call.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    topic: Name<'a>,
    partition: i32,
    offset: i64,
    schema_id: u32,
    event_type: Name<'a>,
    record: Record<'a>,
}

/// A topic or type name: borrowed from the consumer while it handles a
/// record (no reference count touched per event), shared by a context that
/// outlives that.
#[derive(Debug, Clone)]
enum Name<'a> {
    Borrowed(&'a Arc<str>),
    Shared(Arc<str>),
}

impl Name<'_> {
    fn arc(&self) -> &Arc<str> {
        match self {
            Name::Borrowed(name) => name,
            Name::Shared(name) => name,
        }
    }

    fn as_str(&self) -> &str {
        self.arc()
    }

    fn shared(&self) -> Name<'static> {
        Name::Shared(Arc::clone(self.arc()))
    }
}

#[derive(Debug, Clone)]
enum Record<'a> {
    /// The record as librdkafka holds it.
    Kafka(&'a BorrowedMessage<'a>),
    /// Built by hand or detached; boxed so that the context the consumer
    /// builds per record stays small.
    Copied(Box<Copied>),
}

/// A key, headers (in one buffer) and timestamp.
#[derive(Debug, Clone, Default)]
struct Copied {
    timestamp_ms: Option<i64>,
    /// The key's bytes, then each header's name and value.
    bytes: Vec<u8>,
    key: Option<Slice>,
    headers: smallvec::SmallVec<[HeaderSpans; 6]>,
}

/// A range of [`Copied::bytes`].
#[derive(Debug, Clone, Copy)]
struct Slice(u32, u32);

#[derive(Debug, Clone, Copy)]
struct HeaderSpans {
    name: Slice,
    value: Option<Slice>,
}

impl Copied {
    fn push(&mut self, data: &[u8]) -> Slice {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(data);
        Slice(start, self.bytes.len() as u32)
    }

    fn slice(&self, Slice(start, end): Slice) -> &[u8] {
        &self.bytes[start as usize..end as usize]
    }

    fn header(&self, h: &HeaderSpans) -> (&str, Option<&[u8]>) {
        let name = std::str::from_utf8(self.slice(h.name)).unwrap_or_default();
        (name, h.value.map(|v| self.slice(v)))
    }
}

impl EventContext<'static> {
    /// A context without key or headers; the consumer builds the real ones.
    pub fn new(
        topic: impl Into<Arc<str>>,
        partition: i32,
        offset: i64,
        schema_id: u32,
        event_type: impl Into<Arc<str>>,
    ) -> Self {
        EventContext {
            topic: Name::Shared(topic.into()),
            partition,
            offset,
            schema_id,
            event_type: Name::Shared(event_type.into()),
            record: Record::Copied(Box::default()),
        }
    }

    /// Sets the record key.
    pub fn with_key(mut self, key: &[u8]) -> Self {
        let copied = self.copied();
        copied.key = Some(copied.push(key));
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: Option<&[u8]>) -> Self {
        let copied = self.copied();
        let name = copied.push(name.as_bytes());
        let value = value.map(|v| copied.push(v));
        copied.headers.push(HeaderSpans { name, value });
        self
    }

    /// Sets the record timestamp.
    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.copied().timestamp_ms = Some(timestamp_ms);
        self
    }

    fn copied(&mut self) -> &mut Copied {
        match &mut self.record {
            Record::Copied(copied) => copied,
            // Records borrowed from librdkafka never live for 'static.
            Record::Kafka(_) => unreachable!("a 'static context holds a copy"),
        }
    }
}

impl<'a> EventContext<'a> {
    /// The context of `message`, whose topic is `topic`: no copy.
    fn of(
        message: &'a BorrowedMessage<'a>,
        topic: &'a Arc<str>,
        schema_id: u32,
        event_type: &'a Arc<str>,
    ) -> Self {
        EventContext {
            topic: Name::Borrowed(topic),
            partition: message.partition(),
            offset: message.offset(),
            schema_id,
            event_type: Name::Borrowed(event_type),
            record: Record::Kafka(message),
        }
    }

    /// A copy that owns its key and headers (two allocations), to keep after
    /// the handler returns.
    pub fn detached(&self) -> EventContext<'static> {
        let mut copied = Box::new(Copied {
            timestamp_ms: self.timestamp_ms(),
            ..Copied::default()
        });
        if let Some(key) = self.key() {
            copied.key = Some(copied.push(key));
        }
        for (name, value) in self.headers() {
            let name = copied.push(name.as_bytes());
            let value = value.map(|v| copied.push(v));
            copied.headers.push(HeaderSpans { name, value });
        }
        EventContext {
            topic: self.topic.shared(),
            partition: self.partition,
            offset: self.offset,
            schema_id: self.schema_id,
            event_type: self.event_type.shared(),
            record: Record::Copied(copied),
        }
    }

    /// The topic it was read from (with the consumer's topic prefix).
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The record key.
    pub fn key(&self) -> Option<&[u8]> {
        match &self.record {
            Record::Kafka(message) => message.key(),
            Record::Copied(copied) => copied.key.map(|span| copied.slice(span)),
        }
    }

    /// The record timestamp, in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> Option<i64> {
        match &self.record {
            Record::Kafka(message) => match message.timestamp() {
                Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => Some(ms),
                Timestamp::NotAvailable => None,
            },
            Record::Copied(copied) => copied.timestamp_ms,
        }
    }

    /// The writer's schema id.
    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    /// The fully-qualified type the writer's schema names.
    pub fn event_type(&self) -> &str {
        self.event_type.as_str()
    }

    /// Every record header, in order: name and value (`None` for a null value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        let (from_kafka, copied) = match &self.record {
            Record::Kafka(message) => (message.headers(), None),
            Record::Copied(copied) => (None, Some(copied)),
        };
        let from_kafka = from_kafka
            .into_iter()
            .flat_map(|hs| hs.iter().map(|h| (h.key, h.value)));
        let copied = copied
            .into_iter()
            .flat_map(|c| c.headers.iter().map(move |h| c.header(h)));
        from_kafka.chain(copied)
    }

    /// The value of the first header called `name` (empty for a null value).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.unwrap_or_default())
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

    /// The W3C trace context the event was sent in (`traceparent` header),
    /// when present and valid.
    pub fn traceparent(&self) -> Option<TraceParent<'_>> {
        self.header(traceparent::HEADER)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(TraceParent::parse)
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
    /// Write it to the dead-letter topic (reason `unknown-type`), count it in
    /// [`ConsumerStats::unknown`], go on: nothing is lost, nothing blocks.
    #[default]
    DeadLetter,
    /// Log a warning, count it, commit past it.
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
    /// How failed events are retried.
    pub retry: RetryPolicy,
    /// Per contract topic, a policy that replaces [`retry`](Self::retry).
    pub retry_by_topic: HashMap<String, RetryPolicy>,
    /// The dead-letter topic of a topic is its name with this suffix.
    pub dead_letter_suffix: String,
    /// Settings of the dead-letter producer (default: those of
    /// [`kafka`](Self::kafka), brokers and security included, less the
    /// settings only a consumer reads).
    pub dead_letter_producer: Option<ClientConfig>,
    /// Read `prefix` + each contract topic (see `EventProducer::with_topic_prefix`).
    pub topic_prefix: String,
    /// How long [`EventConsumer::run`] waits, once told to stop, for the
    /// final commit and for the group to let the member go.
    pub close_timeout: Duration,
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
            retry: RetryPolicy::default(),
            retry_by_topic: HashMap::new(),
            dead_letter_suffix: ".dlq".into(),
            dead_letter_producer: None,
            topic_prefix: String::new(),
            close_timeout: Duration::from_secs(30),
        }
    }
}

/// Consumer settings Protobus chooses unless the caller set them.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("auto.offset.reset", "earliest"),
    // When the prefetch queue is over its thresholds, librdkafka postpones the
    // next fetch by this much (1 s by default): a handler that drains the
    // queue sooner would then idle for the rest of that second.
    ("fetch.queue.backoff.ms", "20"),
    // Per-partition lag for the `protobus_consumer_lag` gauge.
    ("statistics.interval.ms", "5000"),
];

/// Counters of a running consumer.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events a handler took.
    pub handled: AtomicU64,
    /// Events of types this build has no handler for.
    pub unknown: AtomicU64,
    /// Handler failures (each attempt).
    pub failed: AtomicU64,
    /// Records that are not readable events (not framed, unknown schema id, undecodable).
    pub poison: AtomicU64,
    /// Records written to a dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Times a partition was paused to retry an event later.
    pub retried: AtomicU64,
    /// Partitions paused now, waiting to retry an event (a partition revoked
    /// meanwhile no longer counts: its new owner reads the event again).
    pub waiting_to_retry: AtomicU64,
}

/// Runs a [`Dispatch`] over the records of its topics in a consumer group.
pub struct EventConsumer<D> {
    consumer: StreamConsumer<CommitOnRevoke>,
    /// The subscribed topics, shared by every event's context.
    topics: Vec<Arc<str>>,
    dead_letters: DeadLetters,
    dispatcher: D,
    registry: Arc<SchemaRegistry>,
    settings: ConsumerSettings,
    stats: Arc<ConsumerStats>,
    instruments: ConsumerInstruments,
}

impl<D> std::fmt::Debug for EventConsumer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("group", &self.settings.group)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    /// Handled, skipped or dead-lettered: store the offset.
    Done,
    /// Try the event again after `delay`; `counted`: a handler attempt was used.
    Retry {
        delay: Duration,
        counted: bool,
    },
    Stop(Error),
}

/// The last record's topic and writer type, with what was looked up for
/// them: consecutive records mostly share these, and a hit skips the shared
/// caches' locks and hashing.
struct Recent {
    topic: Arc<str>,
    schema_id: u32,
    indexes: wire::Indexes,
    event_type: Arc<str>,
    instruments: Consumed,
}

impl Recent {
    fn matches(&self, topic: &str, header: &wire::Header) -> bool {
        self.schema_id == header.schema_id
            && self.indexes == header.indexes
            && *self.topic == *topic
    }
}

/// A partition paused until its failed event is due again.
struct Pending {
    offset: i64,
    attempts: u32,
    due: Instant,
}

impl<D: Dispatch> EventConsumer<D> {
    /// Joins the group and subscribes to the dispatcher's topics.
    pub fn new(
        settings: ConsumerSettings,
        registry: Arc<SchemaRegistry>,
        dispatcher: D,
    ) -> Result<Self, Error> {
        // Refused here: a bad policy would otherwise fail when an event
        // first fails (a NaN jitter made a NaN delay, which panicked).
        let policies = std::iter::once(("", &settings.retry)).chain(
            settings
                .retry_by_topic
                .iter()
                .map(|(topic, policy)| (topic.as_str(), policy)),
        );
        for (topic, policy) in policies {
            policy.check().map_err(|reason| {
                let which = if topic.is_empty() {
                    "the retry policy".to_owned()
                } else {
                    format!("the retry policy of {topic}")
                };
                ErrorKind::Config(format!("{which}: {reason}"))
            })?;
        }
        let mut config = settings.kafka.clone();
        config
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        for (key, value) in CONSUMER_DEFAULTS {
            if config.get(key).is_none() {
                config.set(*key, *value);
            }
        }
        let consumer: StreamConsumer<CommitOnRevoke> = config
            .create_with_context(CommitOnRevoke::default())
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
        let topics: Vec<String> = dispatcher
            .topics()
            .iter()
            .map(|t| format!("{}{t}", settings.topic_prefix))
            .collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(ErrorKind::Kafka)?;
        Ok(EventConsumer {
            topics: topics.into_iter().map(Arc::from).collect(),
            consumer,
            dead_letters,
            dispatcher,
            registry,
            settings,
            stats: Arc::default(),
            instruments: ConsumerInstruments::default(),
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

    /// Consumes until `shutdown` resolves, then commits and leaves the group
    /// (waiting at most [`ConsumerSettings::close_timeout`] for that).
    ///
    /// A failed event pauses only its partition until its retry is due (other
    /// partitions go on; its own later events wait, so order holds), and goes
    /// to the dead-letter topic after the last attempt or at once for a
    /// permanent error; its offset is stored only after that write is acked.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut shutdown = pin!(shutdown);
        // A timer rather than a clock read per record.
        let mut commit_due = tokio::time::interval(self.settings.commit_interval);
        commit_due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        commit_due.reset();
        let mut pending: HashMap<(String, i32), Pending> = HashMap::new();
        let mut burst = 0;
        let mut recent = None;
        // One stream for the whole run: each `recv()` makes a stream of its
        // own, which takes and frees a waker slot (two mutex locks a record).
        let mut messages = self.consumer.stream();
        let result = loop {
            // A revoked partition's retry is its new owner's: forget it here.
            let revoked = self.consumer.context().take_revoked();
            if !revoked.is_empty() {
                for partition in &revoked {
                    pending.remove(partition);
                }
                self.count_waiting(&pending);
            }
            let message = if burst < BURST && pending.is_empty() {
                // Records already fetched come first: the other branches are
                // polled only when none is ready, and every few records the
                // branch below looks at shutdown, commits and retries first.
                burst += 1;
                tokio::select! {
                    biased;
                    message = messages.next() => message,
                    _ = &mut shutdown => break Ok(()),
                    _ = commit_due.tick() => {
                        commit(&self.consumer, CommitMode::Async);
                        continue;
                    }
                }
            } else {
                burst = 0;
                let next_due = pending.values().map(|p| p.due).min();
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break Ok(()),
                    _ = commit_due.tick() => {
                        commit(&self.consumer, CommitMode::Async);
                        continue;
                    }
                    _ = sleep_until(next_due) => {
                        self.resume_due(&mut pending);
                        continue;
                    }
                    message = messages.next() => message,
                }
            };
            let message = match message.expect("Kafka message streams never end") {
                Ok(message) => message,
                Err(err) if ends_run(&err) => {
                    error!(error = %err, "the consumer cannot go on");
                    break Err(ErrorKind::ConsumerFailed(err).into());
                }
                Err(err) => {
                    warn!(error = %err, "consumer error");
                    continue;
                }
            };
            // A record of a partition we paused means it was reassigned (and so
            // resumed) meanwhile: the failed event is read again from its offset.
            let retrying = if pending.is_empty() {
                None
            } else {
                let retrying = pending.remove(&(message.topic().to_owned(), message.partition()));
                self.count_waiting(&pending);
                retrying
            };
            let attempt = match retrying {
                Some(p) if p.offset == message.offset() => p.attempts + 1,
                _ => 1,
            };
            match self.process(&message, attempt, &mut recent).await {
                Outcome::Done => {
                    if let Err(err) = self.consumer.store_offset_from_message(&message) {
                        // The partition was revoked meanwhile; its new owner reads it again.
                        debug!(error = %err, "offset not stored");
                    }
                }
                Outcome::Retry { delay, counted } => {
                    let key = (message.topic().to_owned(), message.partition());
                    let offset = message.offset();
                    drop(message);
                    self.pause_for_retry(&key, offset);
                    let attempts = if counted { attempt } else { attempt - 1 };
                    pending.insert(
                        key,
                        Pending {
                            offset,
                            attempts,
                            due: Instant::now() + delay,
                        },
                    );
                    self.count_waiting(&pending);
                }
                Outcome::Stop(err) => break Err(err),
            }
        };
        drop(messages);
        let closed = leave_group(self.consumer, &self.settings).await;
        // An error of the run itself says more than one of leaving.
        result.and(closed)
    }

    fn count_waiting(&self, pending: &HashMap<(String, i32), Pending>) {
        self.stats
            .waiting_to_retry
            .store(pending.len() as u64, Ordering::Relaxed);
    }

    fn pause_for_retry(&self, (topic, partition): &(String, i32), offset: i64) {
        self.stats.retried.fetch_add(1, Ordering::Relaxed);
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, *partition);
        if let Err(err) = self.consumer.pause(&list) {
            warn!(topic, partition, error = %err, "could not pause a partition to retry");
        }
        if let Err(err) = self.consumer.seek(
            topic,
            *partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        ) {
            warn!(topic, partition, offset, error = %err, "could not rewind to a failed event");
        }
    }

    fn resume_due(&self, pending: &mut HashMap<(String, i32), Pending>) {
        let now = Instant::now();
        for ((topic, partition), p) in pending.iter_mut() {
            if p.due > now {
                continue;
            }
            // Resumed: the event comes back through recv(); never due again by itself.
            p.due = now + Duration::from_secs(3600 * 24 * 365);
            let mut list = TopicPartitionList::new();
            list.add_partition(topic, *partition);
            if let Err(err) = self.consumer.resume(&list) {
                debug!(topic, partition, error = %err, "could not resume (no longer assigned?)");
            }
        }
    }

    /// `topic` as shared by contexts: no allocation per event.
    fn topic_name(&self, topic: &str) -> Arc<str> {
        match self.topics.iter().find(|t| ***t == *topic) {
            Some(known) => known.clone(),
            None => Arc::from(topic),
        }
    }

    fn policy(&self, topic: &str) -> &RetryPolicy {
        let contract_topic = topic
            .strip_prefix(self.settings.topic_prefix.as_str())
            .unwrap_or(topic);
        self.settings
            .retry_by_topic
            .get(contract_topic)
            .unwrap_or(&self.settings.retry)
    }

    async fn process(
        &self,
        message: &BorrowedMessage<'_>,
        attempt: u32,
        recent: &mut Option<Recent>,
    ) -> Outcome {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let Some(frame) = message.payload() else {
            return self
                .dead_letter(message, Reason::Poison, "the record has no value", 0)
                .await;
        };
        let header = match wire::read_header(frame) {
            Ok(header) => header,
            Err(err) => {
                return self
                    .dead_letter(message, Reason::Poison, &err.to_string(), 0)
                    .await;
            }
        };
        let hit = recent.as_ref().is_some_and(|r| r.matches(topic, &header));
        if !hit {
            let event_type = match self
                .registry
                .writer_type(header.schema_id, &header.indexes)
                .await
            {
                Ok(name) => name,
                Err(err) => match err.kind() {
                    ErrorKind::RegistryUnavailable(_) => {
                        warn!(topic, partition, offset, error = %err, "schema registry unavailable; will retry");
                        return Outcome::Retry {
                            delay: self.policy(topic).delay(1).max(Duration::from_secs(1)),
                            counted: false,
                        };
                    }
                    _ => {
                        return self
                            .dead_letter(message, Reason::Poison, &err.to_string(), 0)
                            .await;
                    }
                },
            };
            let topic_name = self.topic_name(topic);
            *recent = Some(Recent {
                schema_id: header.schema_id,
                indexes: header.indexes.clone(),
                instruments: self.instruments.get(&topic_name, &event_type),
                topic: topic_name,
                event_type,
            });
        }
        // The index path served the lookup; the header is not carried across
        // the dispatch's await (a Header kept alive across the decode cost
        // the unframe + decode bench a tenth).
        let (schema_id, payload_offset) = (header.schema_id, header.payload_offset);
        drop(header);
        let Some(Recent {
            topic: topic_name,
            event_type,
            instruments,
            ..
        }) = recent.as_ref()
        else {
            unreachable!("set above");
        };
        let context = EventContext::of(message, topic_name, schema_id, event_type);
        let span = info_span!(
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
        );
        // Reading headers costs; only a span someone listens to gets them.
        if !span.is_disabled() {
            span.record("event_id", context.event_id().unwrap_or_default());
            span.record(
                "correlation_id",
                context.correlation_id().unwrap_or_default(),
            );
            if let Some(trace) = context.traceparent() {
                span.record("trace_id", trace.trace_id);
                span.record("parent_span_id", trace.parent_id);
                #[cfg(feature = "opentelemetry")]
                crate::traceparent::set_parent(&span, &trace);
            }
        }
        let event = RawEvent {
            topic: topic
                .strip_prefix(self.settings.topic_prefix.as_str())
                .unwrap_or(topic),
            full_name: event_type,
            payload: &frame[payload_offset..],
            context: &context,
        };
        // quanta reads the TSC: a third of the cost of a clock_gettime, per event.
        let started = quanta::Instant::now();
        let dispatching = self.dispatcher.dispatch(event);
        // Entering and leaving a span no one listens to still costs, per poll.
        let dispatched = if span.is_disabled() {
            dispatching.await
        } else {
            dispatching.instrument(span.clone()).await
        };
        match dispatched {
            Ok(Dispatched::Handled) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                instruments.consumed.increment(1);
                instruments.handler_seconds.record(started.elapsed());
                Outcome::Done
            }
            Ok(Dispatched::Unknown) => {
                self.stats.unknown.fetch_add(1, Ordering::Relaxed);
                match self.settings.unknown_events {
                    UnknownEventPolicy::DeadLetter => {
                        let reason = format!("no handler for event type {event_type} in this build");
                        self.dead_letter(message, Reason::UnknownType, &reason, 0).await
                    }
                    UnknownEventPolicy::Skip => {
                        span.in_scope(|| warn!("no handler for this event type in this build; skipped"));
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
                self.dead_letter(message, Reason::Poison, &err.to_string(), 0)
                    .await
            }
            Err(err) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                instruments::handler_failed(topic, event_type, err.is_retryable());
                let policy = self.policy(topic);
                if err.is_retryable() && policy.allows_another(attempt) {
                    let delay = policy.delay(attempt);
                    span.in_scope(|| warn!(error = %err, retry_in = ?delay, "handler failed; the partition waits, the event will be retried"));
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
                    self.dead_letter(message, reason, &err.to_string(), attempt)
                        .await
                }
            }
        }
    }

    /// Writes the record to its dead-letter topic; only once that is acked is
    /// the original offset stored. A failed write is retried, never skipped.
    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: Reason,
        error: &str,
        attempts: u32,
    ) -> Outcome {
        if reason == Reason::Poison {
            self.stats.poison.fetch_add(1, Ordering::Relaxed);
        }
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        // Boxed: rare, and its producer send would otherwise be part of
        // every record's `process` future, copied per record.
        let written = Box::pin(self.dead_letters.write(message, reason, error, attempts)).await;
        match written {
            Ok(dead_letter_topic) => {
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
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

/// Whether a consumer error ends `run`: librdkafka's fatal errors, and
/// refusals no retry fixes. librdkafka would keep retrying those for ever
/// while the member handles nothing.
fn ends_run(err: &KafkaError) -> bool {
    match err {
        KafkaError::MessageConsumptionFatal(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        ),
        _ => false,
    }
}

/// Records taken one after another without looking at shutdown, commits or retries.
const BURST: u32 = 8;

/// Resolves at `due`, or never when there is nothing to wait for.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
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

/// Commits what is stored and leaves the group, on a thread of its own and for
/// at most [`ConsumerSettings::close_timeout`].
///
/// librdkafka's close blocks until the group lets the member go. That must not
/// hold a worker of the async runtime, and a consumer told to stop must stop
/// even if the close never ends: the thread is then left behind and the
/// error says in which group state the member was.
async fn leave_group(
    consumer: StreamConsumer<CommitOnRevoke>,
    settings: &ConsumerSettings,
) -> Result<(), Error> {
    let group_state = consumer.context().group_state.clone();
    let (closed, on_closed) = tokio::sync::oneshot::channel();
    let close = move || {
        commit(&consumer, CommitMode::Sync);
        // Dropping closes: partitions are revoked (committing again), the
        // member leaves, and the drop returns once the broker agreed.
        drop(consumer);
        let _ = closed.send(());
    };
    if let Err(err) = std::thread::Builder::new()
        .name("protobus-close".into())
        .spawn(close)
    {
        // The closure was dropped, and the consumer closed with it, right here.
        warn!(error = %err, "no thread to close the consumer on; closed it on this one");
    }
    match tokio::time::timeout(settings.close_timeout, on_closed).await {
        Ok(_) => Ok(()),
        Err(_) => {
            let state = match &*group_state.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(group) => format!(
                    "state {}, join state {}, {} partition(s) assigned, last rebalance {} ms ago ({})",
                    group.state,
                    group.join_state,
                    group.assignment_size,
                    group.rebalance_age,
                    group.rebalance_reason
                ),
                None => "no group statistics yet".into(),
            };
            Err(ErrorKind::CloseTimedOut {
                group: settings.group.clone(),
                timeout: settings.close_timeout,
                state,
            }
            .into())
        }
    }
}

/// Commits what was stored before partitions leave this member, so that their
/// next owner starts after the last handled event; keeps the member's latest
/// group state for the error of a close that does not end.
#[derive(Default)]
pub(crate) struct CommitOnRevoke {
    /// Formatted only for the error that needs it.
    group_state: Arc<std::sync::Mutex<Option<rdkafka::statistics::ConsumerGroup>>>,
    /// Partitions revoked since the run loop last looked, so that it can
    /// drop their pending retries.
    revoked: std::sync::Mutex<Vec<(String, i32)>>,
    /// Whether `revoked` has any: a load per loop instead of a lock.
    any_revoked: std::sync::atomic::AtomicBool,
}

impl CommitOnRevoke {
    /// The partitions revoked since the last call.
    fn take_revoked(&self) -> Vec<(String, i32)> {
        // A plain load first: this runs once per record, a revoke rarely.
        if !self.any_revoked.load(Ordering::Acquire)
            || !self.any_revoked.swap(false, Ordering::AcqRel)
        {
            return Vec::new();
        }
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientContext for CommitOnRevoke {
    fn stats(&self, statistics: rdkafka::Statistics) {
        instruments::consumer_lag(&statistics);
        if let Some(group) = statistics.cgrp {
            *self.group_state.lock().unwrap_or_else(|e| e.into_inner()) = Some(group);
        }
    }
}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            commit(consumer, CommitMode::Sync);
            self.revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(
                    partitions
                        .elements()
                        .iter()
                        .map(|p| (p.topic().to_owned(), p.partition())),
                );
            self.any_revoked.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::mocking::MockCluster;

    use super::*;

    /// Takes nothing: these tests only join and leave.
    struct NoEvents;

    impl Dispatch for NoEvents {
        fn topics(&self) -> Vec<&'static str> {
            vec!["events"]
        }

        fn handles(&self, topic: &str) -> bool {
            topic == "events"
        }

        async fn dispatch<'a>(&'a self, event: RawEvent<'a>) -> Result<Dispatched, HandlerError> {
            panic!("no event was sent, yet {} came", event.full_name)
        }
    }

    /// Runs a member of a fresh group on `cluster` for 2 s (it joins in about
    /// 0.1 s), lets `before_stop` act on the cluster, stops the member with a
    /// close timeout of 2 s and returns how `run` ended.
    async fn join_then_stop(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        before_stop: impl FnOnce(),
    ) -> Result<(), Error> {
        let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers(), "closing");
        settings
            .kafka
            .set("group.protocol", "consumer")
            .set("statistics.interval.ms", "200");
        settings.close_timeout = Duration::from_secs(2);
        let registry = Arc::new(SchemaRegistry::new("http://127.0.0.1:9").unwrap());
        let consumer = EventConsumer::new(settings, registry, NoEvents).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(consumer.run(async move {
            let _ = stopped.await;
        }));
        tokio::time::sleep(Duration::from_secs(2)).await;
        before_stop();
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(30), running)
            .await
            .expect("run returns within its close timeout")
            .expect("the consumer task")
    }

    #[test]
    fn a_retry_policy_that_cannot_work_is_refused_when_the_consumer_is_built() {
        let registry = Arc::new(SchemaRegistry::new("http://127.0.0.1:9").unwrap());
        let mut settings = ConsumerSettings::new("127.0.0.1:9", "refusing");
        settings.retry.jitter = f64::NAN;
        let err = EventConsumer::new(settings, registry.clone(), NoEvents)
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Config(reason) if reason.contains("jitter")),
            "{err}"
        );
        let mut settings = ConsumerSettings::new("127.0.0.1:9", "refusing");
        settings.retry_by_topic.insert(
            "events".into(),
            RetryPolicy {
                jitter: -0.5,
                ..RetryPolicy::default()
            },
        );
        let err = EventConsumer::new(settings, registry, NoEvents)
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("retry policy of events"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_stopped_member_closes_within_its_close_timeout() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("events", 2, 1).unwrap();
        join_then_stop(&cluster, || {})
            .await
            .expect("a clean close");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_close_that_cannot_finish_ends_run_after_the_close_timeout() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("events", 2, 1).unwrap();
        // Every answer from the broker now takes longer than the close may.
        let slow = || {
            cluster
                .broker_round_trip_time(1, Duration::from_secs(20))
                .unwrap()
        };
        let err = join_then_stop(&cluster, slow).await.unwrap_err();
        let ErrorKind::CloseTimedOut {
            group,
            timeout,
            state,
        } = err.kind()
        else {
            panic!("expected a close timeout, got {err}");
        };
        assert_eq!(
            (group.as_str(), *timeout),
            ("closing", Duration::from_secs(2))
        );
        assert!(state.contains("join state"), "{err}");
        cluster.broker_round_trip_time(1, Duration::ZERO).unwrap();
    }
}
