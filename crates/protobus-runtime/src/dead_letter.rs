//! The dead-letter topic: a record that cannot be handled is written there
//! unchanged (key, value, headers), with headers that say why, before its
//! offset is committed on the original topic.

use std::time::{Duration, SystemTime};

use rdkafka::ClientConfig;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::error::Error;
use crate::kafka_producer::KafkaProducer;

/// Header names on dead-lettered records.
pub mod headers {
    /// Why the record failed (the error's text).
    pub const ERROR: &str = "protobus-dlq-error";
    /// `retries-exhausted`, `permanent`, `poison` or `unknown-type`.
    pub const REASON: &str = "protobus-dlq-reason";
    /// How many times a handler was called.
    pub const ATTEMPTS: &str = "protobus-dlq-attempts";
    /// The topic it was read from.
    pub const ORIGINAL_TOPIC: &str = "protobus-dlq-original-topic";
    /// Its partition there.
    pub const ORIGINAL_PARTITION: &str = "protobus-dlq-original-partition";
    /// Its offset there.
    pub const ORIGINAL_OFFSET: &str = "protobus-dlq-original-offset";
    /// Its timestamp there, in milliseconds since the Unix epoch.
    pub const ORIGINAL_TIMESTAMP: &str = "protobus-dlq-original-timestamp";
    /// The consumer group that gave up on it.
    pub const GROUP: &str = "protobus-dlq-group";
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub const FAILED_AT: &str = "protobus-dlq-failed-at";
}

/// Why a record is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A retryable failure that failed on every attempt.
    RetriesExhausted,
    /// A failure the handler said no retry would fix.
    Permanent,
    /// Not a readable event (not framed, unknown schema id, undecodable).
    Poison,
    /// An event type this build has no handler for.
    UnknownType,
}

impl Reason {
    /// The value of the `protobus-dlq-reason` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RetriesExhausted => "retries-exhausted",
            Reason::Permanent => "permanent",
            Reason::Poison => "poison",
            Reason::UnknownType => "unknown-type",
        }
    }
}

/// Writes dead letters; acknowledged (acks=all, idempotent) before returning.
pub(crate) struct DeadLetters {
    producer: KafkaProducer,
    suffix: String,
    group: String,
}

impl DeadLetters {
    pub(crate) fn new(config: &ClientConfig, suffix: &str, group: &str) -> Result<Self, Error> {
        let mut config = config.clone();
        config.set("enable.idempotence", "true").set("acks", "all");
        Ok(DeadLetters {
            producer: KafkaProducer::new(config)?,
            suffix: suffix.to_owned(),
            group: group.to_owned(),
        })
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn fault_injector(&self) -> crate::fault_injection::FaultInjector {
        crate::fault_injection::FaultInjector::new(&self.producer)
    }

    /// The dead-letter topic of `topic`.
    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{topic}{}", self.suffix)
    }

    /// Writes `message` to its dead-letter topic; returns once Kafka has it.
    pub(crate) async fn write(
        &self,
        message: &BorrowedMessage<'_>,
        reason: Reason,
        error: &str,
        attempts: u32,
    ) -> Result<String, Error> {
        let topic = self.topic(message.topic());
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let timestamp = message.timestamp().to_millis().unwrap_or(-1).to_string();
        let (partition, offset) = (
            message.partition().to_string(),
            message.offset().to_string(),
        );
        let (attempts, failed_at) = (attempts.to_string(), now_ms.to_string());
        let mut out = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                out = out.insert(header);
            }
        }
        for (key, value) in [
            (headers::ERROR, error),
            (headers::REASON, reason.as_str()),
            (headers::ATTEMPTS, &attempts),
            (headers::ORIGINAL_TOPIC, message.topic()),
            (headers::ORIGINAL_PARTITION, &partition),
            (headers::ORIGINAL_OFFSET, &offset),
            (headers::ORIGINAL_TIMESTAMP, &timestamp),
            (headers::GROUP, &self.group),
            (headers::FAILED_AT, &failed_at),
        ] {
            out = out.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(out);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(ms) = message.timestamp().to_millis() {
            record = record.timestamp(ms);
        }
        self.producer.send(record, Duration::from_secs(30)).await?;
        Ok(topic)
    }
}
