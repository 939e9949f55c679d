//! What a handler knows about an event besides its content.

use std::sync::Arc;

use rdkafka::Timestamp;

use crate::consumer::fetched::Fetched;
use crate::headers;
use crate::traceparent::{self, TraceParent};

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
    Kafka(&'a Fetched<'a>),
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
    pub(crate) fn of(
        message: &'a Fetched<'a>,
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

    /// Every record header, in order: name and value (`None` for a null
    /// value). Kafka allows any bytes in a name; a header whose name is not
    /// UTF-8 cannot be asked for by name and is left out.
    pub fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        let (from_kafka, copied) = match &self.record {
            Record::Kafka(message) => (Some(message.headers()), None),
            Record::Copied(copied) => (None, Some(copied)),
        };
        let from_kafka = from_kafka.into_iter().flatten();
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
