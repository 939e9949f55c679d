//! What an [`EventConsumer`](super::EventConsumer) is told: its group, the
//! librdkafka settings, how events are ordered and how many run at once,
//! retries, dead letters and time limits.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::consumer::UnknownEventPolicy;
use crate::retry::RetryPolicy;

/// Which events of a member may be handled at the same time.
///
/// Whatever the order, an offset is committed only once every event before it
/// in its partition was handled, dead-lettered or skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProcessingOrder {
    /// The events of one partition one after another, in offset order;
    /// different partitions at the same time.
    #[default]
    Partition,
    /// The events with the same record key one after another, in offset
    /// order; different keys (also of one partition) at the same time.
    /// Records without a key count as one key of their partition.
    Key,
    /// Any events at the same time: no order at all, not even for one key.
    Unordered,
}

/// Settings of an [`EventConsumer`](super::EventConsumer).
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The consumer group.
    pub group: String,
    /// librdkafka settings, passed through (`bootstrap.servers` at least).
    pub kafka: ClientConfig,
    /// Members of the group this consumer runs, each with its own librdkafka
    /// consumer, on a task of its own (default 1). A member decodes and
    /// handles its partitions on one core at a time (librdkafka fetches,
    /// and a thread of the member's frees finished records, on other
    /// cores); with handlers that spend CPU, more members use more cores
    /// (on tokio's multi-threaded runtime: its workers run the members'
    /// tasks). The group spreads the partitions among the members, so more
    /// members than partitions leaves some idle. Each holds its own
    /// connections, prefetch queue (`queued.max.messages.kbytes`) and
    /// thread, and `max_in_flight` counts per member.
    pub members: usize,
    /// Which events may be handled at the same time.
    pub order: ProcessingOrder,
    /// Handler calls in progress at most, per member. When reached, the member
    /// takes no more records until one finishes (librdkafka then stops
    /// fetching once its prefetch queue is full: `queued.max.messages.kbytes`).
    /// A batch handler's topic holds instead a running and a filling batch
    /// at most (see [`max_batch_size`](Self::max_batch_size)).
    pub max_in_flight: usize,
    /// Records of one partition read and not yet committed past (in flight,
    /// waiting for their key or partition, waiting to be retried, or finished
    /// after an unfinished one) at most. When reached, the partition is paused
    /// until half of them are done: memory stays bounded whatever the handlers do.
    pub max_outstanding_per_partition: usize,
    /// How long a revoke or a shutdown waits for the handler calls in flight
    /// of the partitions leaving the member. What finished by then is
    /// committed; the rest is left for the next owner (a handler still running
    /// then is not cancelled: its result is ignored).
    pub drain_timeout: Duration,
    /// Events handed to a batch handler in one call at most. One batch per
    /// topic runs at a time while the next one fills.
    pub max_batch_size: usize,
    /// How long a batch handler's next batch waits to fill once its first
    /// event is read (a full batch goes at once).
    pub max_batch_wait: Duration,
    /// Events of types this build does not know.
    pub unknown_events: UnknownEventPolicy,
    /// How often the offsets of finished events are committed while running
    /// (also on each revoke and when the run ends).
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
    /// How long [`EventConsumer::run`](super::EventConsumer::run) waits, once
    /// its handlers are drained, for the final commit and for the group to let
    /// the member go.
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
            members: 1,
            order: ProcessingOrder::default(),
            max_in_flight: 64,
            max_outstanding_per_partition: 1000,
            drain_timeout: Duration::from_secs(10),
            max_batch_size: 500,
            max_batch_wait: Duration::from_millis(20),
            unknown_events: UnknownEventPolicy::default(),
            commit_interval: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            retry_by_topic: HashMap::new(),
            dead_letter_suffix: protobus_contract::DEAD_LETTER_SUFFIX.into(),
            dead_letter_producer: None,
            topic_prefix: String::new(),
            close_timeout: Duration::from_secs(30),
        }
    }

    /// Why these settings cannot work, if they cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.members == 0 {
            return Err("members must be at least 1".into());
        }
        if self.max_in_flight == 0 {
            return Err("max_in_flight must be at least 1".into());
        }
        if self.max_outstanding_per_partition == 0 {
            return Err("max_outstanding_per_partition must be at least 1".into());
        }
        if self.max_batch_size == 0 {
            return Err("max_batch_size must be at least 1".into());
        }
        // Refused here: a bad policy would otherwise fail when an event
        // first fails (a NaN jitter made a NaN delay, which panicked).
        let policies = std::iter::once(("", &self.retry)).chain(
            self.retry_by_topic
                .iter()
                .map(|(topic, policy)| (topic.as_str(), policy)),
        );
        for (topic, policy) in policies {
            policy.check().map_err(|reason| {
                if topic.is_empty() {
                    format!("the retry policy: {reason}")
                } else {
                    format!("the retry policy of {topic}: {reason}")
                }
            })?;
        }
        Ok(())
    }

    /// The policy for events of the Kafka topic `topic`.
    pub(crate) fn policy(&self, topic: &str) -> &RetryPolicy {
        let contract_topic = topic
            .strip_prefix(self.topic_prefix.as_str())
            .unwrap_or(topic);
        self.retry_by_topic
            .get(contract_topic)
            .unwrap_or(&self.retry)
    }
}

/// Consumer settings Protobus chooses unless the caller set them.
pub(crate) const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("auto.offset.reset", "earliest"),
    // When the prefetch queue is over its thresholds, librdkafka postpones the
    // next fetch by this much (1 s by default): a handler that drains the
    // queue sooner would then idle for the rest of that second.
    ("fetch.queue.backoff.ms", "20"),
    // Per-partition lag for the `protobus_consumer_lag` gauge.
    ("statistics.interval.ms", "5000"),
];
