//! The typed producer: `send(&event)` frames the event in the Confluent wire
//! format under its registered schema id and writes it to its topic with an
//! idempotent, `acks=all` producer.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use tracing::debug;

use crate::EventContext;
use crate::event_id::EventId;
use crate::instruments::Produced;
use crate::kafka_producer::{Batch, Delivered, Enqueued, KafkaProducer, Record};
use crate::pending_delivery::PendingDelivery;
use crate::producer_settings::{check_delivery, with_defaults};
use crate::producer_types::{SendType, SendTypes};
use crate::send_batch::SendBatch;
use crate::traceparent;

use crate::error::{Error, ErrorKind};
use crate::event::{Contract, Event, EventInfo};
use crate::schemas::SchemaRegistry;
use crate::{headers, wire};

/// Where an event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic written to (with the producer's topic prefix).
    pub topic: String,
    /// The partition written to.
    pub partition: i32,
    /// The event's offset in that partition.
    pub offset: i64,
    /// The event id sent in the `protobus-event-id` header.
    pub event_id: String,
}

/// Per-send settings beyond the event itself.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The event id; a new UUID v7 when `None`.
    pub event_id: Option<String>,
    /// The correlation id; none is sent when `None`.
    pub correlation_id: Option<String>,
    /// Replaces the key taken from the event's key field.
    pub key: Option<Vec<u8>>,
    /// More headers, sent after Protobus's own.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl SendOptions {
    /// Options for an event sent because of the one in `cause` (by its
    /// handler): the same correlation id (the cause's event id when it had
    /// none) and its trace context, so the chain stays one conversation and
    /// one trace. With feature `opentelemetry` and spans being exported, the
    /// parent is the handler's span.
    pub fn caused_by(cause: &EventContext<'_>) -> Self {
        let correlation_id = cause.correlation_id().or_else(|| cause.event_id());
        let headers = cause
            .header(traceparent::HEADER)
            .filter(|v| {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(traceparent::TraceParent::parse)
                    .is_some()
            })
            .map(|v| vec![(traceparent::HEADER.to_owned(), v.to_vec())])
            .unwrap_or_default();
        // With OpenTelemetry recording, the handler's own span is the parent.
        #[cfg(feature = "opentelemetry")]
        let headers = match traceparent::current() {
            Some(current) => vec![(traceparent::HEADER.to_owned(), current.into_bytes())],
            None => headers,
        };
        SendOptions {
            correlation_id: correlation_id.map(str::to_owned),
            headers,
            ..SendOptions::default()
        }
    }
}

/// Sends typed events; cheap to clone.
///
/// librdkafka allocates each record and its headers, and frees them when
/// Kafka's acknowledgement is served. While
/// sends keep coming, each send serves an acknowledgement already waiting,
/// so a record is mostly freed on the thread that allocated it; a thread of
/// the producer's own serves them once sends pause for a millisecond or two.
/// Under glibc's `malloc`, records freed on another thread than their
/// sender's make both threads take turns on its arena's lock: a runtime that sends
/// from many threads at once may gain from linking mimalloc with its
/// `override` feature (so that librdkafka allocates from it too), at the
/// cost of some 20–30 MiB more resident memory in the ingest service
/// (mimalloc keeps freed memory a second before returning it).
#[derive(Clone)]
pub struct EventProducer {
    producer: KafkaProducer,
    registry: Arc<SchemaRegistry>,
    /// How long a send waits for room in librdkafka's queue before failing.
    queue_wait: Duration,
    topic_prefix: String,
    /// librdkafka's `message.max.bytes`: larger records are refused before
    /// they are queued.
    max_message_bytes: usize,
    types: SendTypes,
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;
/// What a record header costs besides its name and value, at most: its
/// varint lengths, and the count of headers once.
const HEADER_OVERHEAD_BYTES: usize = 10;

/// A thread's frame buffer grown past this is let go after the send, so one
/// large event does not pin its size for the thread's life.
const FRAME_BUFFER_KEPT: usize = 64 * 1024;

thread_local! {
    /// The frame of the event being queued on this thread.
    static FRAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer")
            .field("registry", &self.registry.url())
            .finish_non_exhaustive()
    }
}

impl EventProducer {
    /// A producer with `config` (librdkafka settings, passed through) on top
    /// of Protobus's defaults, registering schemas in `registry`. Settings
    /// that weaken delivery (`acks` other than `all`, `enable.idempotence=false`)
    /// are refused, with what they would lose; see
    /// [`with_weaker_delivery`](Self::with_weaker_delivery).
    pub fn new(config: &ClientConfig, registry: Arc<SchemaRegistry>) -> Result<Self, Error> {
        let config = with_defaults(config);
        check_delivery(&config)?;
        Self::build(config, registry)
    }

    /// [`new`](Self::new), accepting settings that weaken delivery: an
    /// acknowledged event may then be lost when a partition leader fails
    /// (`acks` 0 or 1), or written twice and out of order when a send is
    /// retried (`enable.idempotence=false`).
    pub fn with_weaker_delivery(
        config: &ClientConfig,
        registry: Arc<SchemaRegistry>,
    ) -> Result<Self, Error> {
        Self::build(with_defaults(config), registry)
    }

    fn build(config: ClientConfig, registry: Arc<SchemaRegistry>) -> Result<Self, Error> {
        let max_message_bytes = match config.get("message.max.bytes") {
            None => DEFAULT_MAX_MESSAGE_BYTES,
            Some(value) => value.parse().map_err(|_| {
                ErrorKind::Config(format!("message.max.bytes `{value}` is not a number"))
            })?,
        };
        let producer = KafkaProducer::new(config)?;
        Ok(EventProducer {
            producer,
            registry,
            queue_wait: Duration::from_secs(30),
            topic_prefix: String::new(),
            max_message_bytes,
            types: SendTypes::default(),
        })
    }

    /// Writes every event to its contract topic behind `prefix` (`staging.`
    /// turns `shop.orders` into `staging.shop.orders`), so that environments
    /// or tests can share a cluster. Registry subjects keep the contract's
    /// topic names.
    pub fn with_topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        // Its entries hold the topic under the old prefix.
        self.types = SendTypes::default();
        self
    }

    /// How long a send waits for room when librdkafka's queue is full (30 s by
    /// default). Zero fails at once with [`ErrorKind::QueueFull`], for services
    /// that push back on their clients instead of buffering.
    pub fn with_queue_wait(mut self, wait: Duration) -> Self {
        self.queue_wait = wait;
        self
    }

    /// The largest record this producer writes (librdkafka's
    /// `message.max.bytes`), framing, key and headers included.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// This producer (the same Kafka client) with schema ids from `registry`.
    pub fn with_registry(mut self, registry: Arc<SchemaRegistry>) -> Self {
        self.registry = registry;
        // Its entries hold the old registry's schema ids.
        self.types = SendTypes::default();
        self
    }

    /// The registry this producer registers schemas in.
    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.registry
    }

    /// Sends `event` to its topic; returns once Kafka acknowledged it.
    pub async fn send<E: Event>(&self, event: &E) -> Result<Delivery, Error> {
        self.send_with(event, SendOptions::default()).await
    }

    /// [`send`](Self::send) with an event id, correlation id, key or headers.
    pub async fn send_with<E: Event>(
        &self,
        event: &E,
        options: SendOptions,
    ) -> Result<Delivery, Error> {
        self.enqueue(event, options).await?.await
    }

    /// Hands `event` to the producer's queue and returns without waiting for
    /// Kafka; the returned [`PendingDelivery`] resolves to its [`Delivery`].
    /// Awaiting each [`send`](Self::send) in turn caps throughput at one
    /// round trip per event; enqueueing many and awaiting them afterwards
    /// lets librdkafka batch them.
    pub async fn enqueue<E: Event>(
        &self,
        event: &E,
        options: SendOptions,
    ) -> Result<PendingDelivery, Error> {
        let send_type = self.send_type(E::contract(), E::info()).await?;
        let mut batch = self.producer.batch(1)?;
        let event_id = self
            .write_event(&mut batch, &send_type, event, options)
            .await?;
        Ok(PendingDelivery::new(batch, event_id, send_type))
    }

    /// Events handed over together and answered together, up to
    /// `capacity` of them ([`SendBatch::MAX_EVENTS`] at most): what a
    /// service that takes requests of many events sends each one's with.
    /// Awaiting a batch costs one wake for all of its events, where each
    /// [`PendingDelivery`] costs one of its own.
    pub fn batch(&self, capacity: usize) -> Result<SendBatch<'_>, Error> {
        Ok(SendBatch::new(self, self.producer.batch(capacity)?))
    }

    /// Sends an already encoded event of type `event` (from `contract`), with
    /// `key` unless `options.key` overrides it: for services that take events
    /// by name, such as the ingest service. The payload is not checked here.
    pub async fn send_encoded(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
        payload: &[u8],
        key: Option<&[u8]>,
        options: SendOptions,
    ) -> Result<Delivery, Error> {
        self.enqueue_encoded(contract, event, payload, key, options)
            .await?
            .await
    }

    /// [`send_encoded`](Self::send_encoded) without waiting for Kafka, as
    /// [`enqueue`](Self::enqueue).
    pub async fn enqueue_encoded(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
        payload: &[u8],
        key: Option<&[u8]>,
        options: SendOptions,
    ) -> Result<PendingDelivery, Error> {
        check_key(event, key, &options)?;
        let send_type = self.send_type(contract, event).await?;
        let mut batch = self.producer.batch(1)?;
        let event_id = self
            .write_encoded(&mut batch, &send_type, event, payload, key, options)
            .await?;
        Ok(PendingDelivery::new(batch, event_id, send_type))
    }

    /// Queues `event` in `batch`; its id.
    pub(crate) async fn write_event<E: Event>(
        &self,
        batch: &mut Batch,
        send_type: &SendType,
        event: &E,
        options: SendOptions,
    ) -> Result<EventId, Error> {
        let schema_id = send_type.schema_id;
        let key = match &options.key {
            Some(_) => None,
            None => Some(event.key().ok_or_else(|| ErrorKind::MissingKey {
                event: E::FULL_NAME,
                field: E::KEY_FIELD,
            })?),
        };
        let frame = |buf: &mut Vec<u8>| wire::frame_into(buf, schema_id, E::MESSAGE_INDEXES, event);
        self.write(batch, send_type, frame, key.as_deref(), options)
            .await
    }

    /// Queues an encoded event in `batch`, its key checked with
    /// [`check_key`] before; its id.
    pub(crate) async fn write_encoded(
        &self,
        batch: &mut Batch,
        send_type: &SendType,
        event: &'static EventInfo,
        payload: &[u8],
        key: Option<&[u8]>,
        options: SendOptions,
    ) -> Result<EventId, Error> {
        let schema_id = send_type.schema_id;
        let frame = |buf: &mut Vec<u8>| {
            buf.reserve(wire::header_len(event.message_indexes) + payload.len());
            wire::write_header(buf, schema_id, event.message_indexes);
            buf.extend_from_slice(payload);
        };
        self.write(batch, send_type, frame, key, options).await
    }

    /// `event` as this producer sends it; its schema is registered on its
    /// first send.
    pub(crate) async fn send_type(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
    ) -> Result<Arc<SendType>, Error> {
        if let Some(known) = self.types.get(event) {
            return Ok(known);
        }
        let schema_id = self.registry.id_for(contract, event).await?;
        Ok(self.types.add(event, schema_id, &self.topic_prefix))
    }

    /// Queues an event in `batch`, framed by `frame` into this thread's
    /// frame buffer, with Protobus's headers; its id.
    async fn write(
        &self,
        batch: &mut Batch,
        send_type: &SendType,
        frame: impl FnOnce(&mut Vec<u8>),
        key: Option<&[u8]>,
        options: SendOptions,
    ) -> Result<EventId, Error> {
        let key = options.key.as_deref().or(key).unwrap_or_default();
        let instruments = &send_type.instruments;
        // One clock read for the record's timestamp and its event id.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let now_ms = now.as_millis() as i64;
        let event_id = match options.event_id {
            Some(given) => EventId::Given(given),
            None => EventId::new(now),
        };
        let mut event_id_text = uuid::Uuid::encode_buffer();
        let event_id_text = event_id.as_str(&mut event_id_text);
        let protobus_headers = [
            (headers::EVENT_ID, event_id_text.as_bytes()),
            (headers::EVENT_TYPE, instruments.event_type.as_bytes()),
        ];
        let correlation =
            (options.correlation_id.as_ref()).map(|id| (headers::CORRELATION_ID, id.as_bytes()));
        let more = (options.headers.iter()).map(|(name, value)| (name.as_str(), value.as_slice()));
        // What the headers add to the record, counted as librdkafka counts.
        let mut header_bytes = 0;
        let mut record_headers = OwnedHeaders::new_with_capacity(4 + options.headers.len());
        for (key, value) in protobus_headers.into_iter().chain(correlation).chain(more) {
            header_bytes += key.len() + value.len() + HEADER_OVERHEAD_BYTES;
            record_headers = record_headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let topic = &*instruments.topic;
        // librdkafka copies the frame when it takes the record, so one buffer
        // per thread serves every send; a record that must wait for room in
        // librdkafka's queue takes a copy of its own.
        let attempt = FRAME.with_borrow_mut(|buf| {
            buf.clear();
            frame(buf);
            // Counted as librdkafka counts, an upper bound: refused here, a
            // record would otherwise fail as a Kafka error that looks retriable.
            let bytes = buf.len() + key.len() + HEADER_OVERHEAD_BYTES + header_bytes;
            let attempt = if bytes > self.max_message_bytes {
                Err(ErrorKind::TooLarge {
                    bytes,
                    limit: self.max_message_bytes,
                }
                .into())
            } else {
                let record = Record::to(topic)
                    .key(key)
                    .payload(buf.as_slice())
                    .timestamp(now_ms)
                    .headers(record_headers);
                batch.try_enqueue(record).map(|enqueued| match enqueued {
                    Enqueued::Queued(index) => Ok(index),
                    Enqueued::Full(record) => Err((buf.clone(), record.headers)),
                })
            };
            if buf.capacity() > FRAME_BUFFER_KEPT {
                *buf = Vec::new();
            }
            attempt
        });
        let queued = match attempt {
            Ok(Ok(index)) => Ok(index),
            Ok(Err((frame, headers))) => {
                let mut record = Record::to(topic)
                    .key(key)
                    .payload(frame.as_slice())
                    .timestamp(now_ms);
                record.headers = headers;
                batch.enqueue_when_room(record, self.queue_wait).await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = queued {
            instruments.failed.increment(1);
            return Err(err);
        }
        Ok(event_id)
    }

    /// Injects faults into this producer (and its clones), for tests.
    #[cfg(feature = "fault-injection")]
    pub fn fault_injector(&self) -> crate::fault_injection::FaultInjector {
        crate::fault_injection::FaultInjector::new(&self.producer)
    }

    /// Waits until every event sent so far is acknowledged, or `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.producer.flush(timeout)
    }
}

/// Refuses an encoded event with no key, before its type is looked up.
pub(crate) fn check_key(
    event: &'static EventInfo,
    key: Option<&[u8]>,
    options: &SendOptions,
) -> Result<(), Error> {
    if key.is_none() && options.key.is_none() {
        return Err(ErrorKind::MissingKey {
            event: event.full_name,
            field: event.key_field,
        }
        .into());
    }
    Ok(())
}

/// What an event's answer tells its sender, logged.
pub(crate) fn delivery(
    instruments: &Produced,
    event_id: EventId,
    delivered: Result<Delivered, Error>,
) -> Result<Delivery, Error> {
    let topic = String::from(&*instruments.topic);
    let event_id = event_id.into_string();
    let event_type = instruments.event_type;
    match delivered {
        Ok(delivered) => {
            debug!(topic, partition = delivered.partition, offset = delivered.offset,
                   event_id = %event_id, event_type, "event delivered");
            Ok(Delivery {
                topic,
                partition: delivered.partition,
                offset: delivered.offset,
                event_id,
            })
        }
        Err(err) => {
            debug!(topic, event_id = %event_id, event_type, error = %err, "event not delivered");
            Err(err)
        }
    }
}
