//! The test broker: reaching it (a test fails, never skips, when it does
//! not answer), unique names, topics, clients, and what a topic holds.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;

/// The broker the tests use: `KAFKA_BOOTSTRAP_SERVERS`, or the address `scripts/kafka.sh` starts.
pub fn bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| protobus::cli::DEFAULT_KAFKA.to_owned())
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A reachable Kafka broker, or a panic that says how to start one.
#[derive(Debug, Clone)]
pub struct Kafka {
    bootstrap: String,
}

/// Connects to the test broker; panics with instructions when it does not answer.
pub async fn kafka() -> Kafka {
    let bootstrap = bootstrap_servers();
    let config = base_config(&bootstrap);
    let probe = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|metadata| metadata.brokers().len())
    })
    .await
    .expect("metadata probe panicked");
    match probe {
        Ok(brokers) if brokers > 0 => Kafka { bootstrap },
        Ok(_) => panic!("Kafka at {bootstrap} answered with no brokers; {HOW_TO_START}"),
        Err(err) => panic!("Kafka is not reachable at {bootstrap} ({err}); {HOW_TO_START}"),
    }
}

const HOW_TO_START: &str = "start Kafka with `scripts/kafka.sh start` (or run everything with \
     `scripts/test.sh`), or point KAFKA_BOOTSTRAP_SERVERS at a running broker";

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000");
    config
}

impl Kafka {
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Client settings pointing at this broker, to add test-specific ones to.
    pub fn config(&self) -> ClientConfig {
        base_config(&self.bootstrap)
    }

    /// Creates `topic` with `partitions` partitions through the admin API and
    /// waits until the broker reports it.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.config().create().expect("admin client");
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &options,
            )
            .await
            .unwrap_or_else(|err| panic!("creating topic {topic}: {err}"));
        for result in results {
            if let Err((name, code)) = result {
                panic!("creating topic {name}: {code}");
            }
        }
    }

    /// An idempotent producer (`acks=all`), as Protobus itself configures one.
    pub fn idempotent_producer(&self) -> FutureProducer {
        self.config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .expect("producer")
    }

    /// A group member that commits only offsets it stored itself (at-least-once).
    pub fn manual_commit_consumer(&self, group: &str) -> StreamConsumer {
        self.config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .create()
            .expect("consumer")
    }

    /// The end (high watermark) of every partition of `topic`, by partition.
    pub fn end_offsets(
        &self,
        topic: &str,
        partitions: i32,
    ) -> std::collections::BTreeMap<i32, i64> {
        let consumer: BaseConsumer = self.config().create().expect("consumer");
        (0..partitions)
            .map(|partition| {
                let (_, high) = consumer
                    .fetch_watermarks(topic, partition, Duration::from_secs(10))
                    .expect("watermarks");
                (partition, high)
            })
            .collect()
    }

    /// Every record of `topic` (read from the start until 3 s pass without
    /// one): key, value, headers by name.
    pub fn records(&self, topic: &str) -> Vec<Record> {
        use rdkafka::message::{Headers as _, Message as _};
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", unique_name("records-reader"))
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let mut records = Vec::new();
        let mut idle = std::time::Instant::now();
        while idle.elapsed() < Duration::from_secs(3) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                idle = std::time::Instant::now();
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push((
                    message.key().map(<[u8]>::to_vec),
                    message.payload().map(<[u8]>::to_vec),
                    headers,
                ));
            }
        }
        records
    }

    /// Offsets committed by `group` for every partition of `topic`, by partition.
    pub fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> std::collections::BTreeMap<i32, i64> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut list = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
            .collect()
    }
}

/// A record as read back: key, value, headers by name.
pub type Record = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    std::collections::HashMap<String, String>,
);

/// The orders topic behind a prefix of its own, with its dead-letter topic,
/// and a typed producer for it.
pub struct OrdersTopic {
    pub kafka: Kafka,
    pub prefix: String,
    /// The Kafka name of the orders topic (prefix included).
    pub topic: String,
    pub producer: protobus_runtime::EventProducer,
}

/// A fresh [`OrdersTopic`] of `partitions` partitions, named after `label`.
pub async fn orders_topic(label: &str, partitions: i32) -> OrdersTopic {
    use protobus_runtime::Event as _;
    let kafka = kafka().await;
    let prefix = format!("{}.", unique_name(label));
    let topic = format!(
        "{prefix}{}",
        protobus::contract::shop::orders::v1::OrderPlaced::TOPIC
    );
    kafka.create_topic(&topic, partitions).await;
    kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas, &prefix, &[]);
    OrdersTopic {
        kafka,
        prefix,
        topic,
        producer,
    }
}

/// How many copies of each event id (`protobus-event-id`) `topic` holds,
/// read whole (committed records only).
pub fn event_id_copies(
    config: &ClientConfig,
    topic: &str,
) -> std::collections::HashMap<String, u32> {
    use rdkafka::Message as _;
    use rdkafka::message::Headers as _;
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", unique_name("copies"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("a checking consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut copies = std::collections::HashMap::new();
    let mut idle_since = std::time::Instant::now();
    while idle_since.elapsed() < Duration::from_secs(5) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            idle_since = std::time::Instant::now();
            let id = message
                .headers()
                .and_then(|h| {
                    h.iter()
                        .find(|h| h.key == "protobus-event-id")
                        .and_then(|h| h.value)
                })
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .expect("an event id header");
            *copies.entry(id).or_default() += 1;
        }
    }
    copies
}

/// `topic`'s configs as the brokers describe them, by name.
pub async fn topic_configs(
    config: &ClientConfig,
    topic: &str,
) -> std::collections::HashMap<String, String> {
    use rdkafka::admin::ResourceSpecifier;
    let admin: AdminClient<DefaultClientContext> = config.create().expect("an admin client");
    let described = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("describe configs");
    described
        .into_iter()
        .next()
        .expect("one resource")
        .expect("its configs")
        .entries
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}
