//! The dead-letter topic: a record that cannot be handled is written there
//! unchanged (key, value, headers), with headers that say why, before its
//! offset is committed on the original topic.

use std::time::{Duration, SystemTime};

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};

use crate::consumer::fetched::Fetched;

use crate::error::Error;
use crate::kafka_producer::{KafkaProducer, Record};

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

/// librdkafka settings that only a consumer reads: everything else a
/// consumer is given (brokers, security, client id, timeouts) is what its
/// dead-letter producer needs too.
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "offset.store.method",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "consume.callback.max.messages",
    // The consumer's statistics feed the lag gauge; a producer's would be
    // computed for no one.
    "statistics.interval.ms",
];

/// The settings of a consumer's dead-letter producer when none is given: the
/// consumer's own, less what only a consumer reads.
pub(crate) fn producer_config_of(consumer: &ClientConfig) -> ClientConfig {
    // A clone, then removals: `config_map` hides secrets (SASL passwords,
    // key passwords), so copying from it would lose them.
    let mut config = consumer.clone();
    for key in CONSUMER_ONLY {
        config.remove(key);
    }
    config
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
        message: &Fetched<'_>,
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
        // A header whose name is not UTF-8 cannot be written back with
        // rdkafka's headers, and is left out.
        for (key, value) in message.headers() {
            out = out.insert(Header { key, value });
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
        let mut record = Record::to(&topic).headers(out);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_letter_producer_keeps_the_consumers_connection_and_secrets() {
        let mut consumer = ClientConfig::new();
        consumer
            .set("bootstrap.servers", "broker:9093")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.password", "secret")
            .set("ssl.key.password", "also secret")
            .set("client.id", "orders")
            .set("group.id", "orders")
            .set("fetch.queue.backoff.ms", "20")
            .set("statistics.interval.ms", "5000");
        let producer = producer_config_of(&consumer);
        for (key, value) in [
            ("bootstrap.servers", "broker:9093"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "secret"),
            ("ssl.key.password", "also secret"),
            ("client.id", "orders"),
        ] {
            assert_eq!(producer.get(key), Some(value), "{key}");
        }
        for key in [
            "group.id",
            "fetch.queue.backoff.ms",
            "statistics.interval.ms",
        ] {
            assert_eq!(producer.get(key), None, "{key}");
        }
    }
}
