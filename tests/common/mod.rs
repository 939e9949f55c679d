//! Support shared by the integration tests: the broker address, unique names,
//! topic creation. Every test that needs Kafka goes through [`kafka`], which
//! fails the test (never skips it) when the broker cannot be reached.
#![allow(dead_code, unreachable_pub)]

pub mod billing;
pub mod pki;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;

use protobus::contract::ShopOrdersHandler;
use protobus_runtime::{EventContext, HandlerError};

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

/// The Python with Confluent's client that `scripts/python-env.sh` prepared
/// (`PROTOBUS_PYTHON`; `scripts/test.sh` sets it). Panics, saying how to get
/// one, when it is missing.
pub fn confluent_python() -> std::path::PathBuf {
    match std::env::var_os("PROTOBUS_PYTHON") {
        Some(path) if std::path::Path::new(&path).exists() => path.into(),
        _ => panic!(
            "PROTOBUS_PYTHON does not name a Python with confluent-kafka; run the suite with \
             `scripts/test.sh`, or `export PROTOBUS_PYTHON=$(scripts/python-env.sh)`"
        ),
    }
}

/// Python classes generated from `proto/` with `grpc_tools.protoc`, as a
/// Python team makes them from the contract's sources: a directory to put on
/// `sys.path` (`from shop.orders.v1 import orders_pb2`).
pub fn python_classes(python: &std::path::Path) -> tempfile::TempDir {
    fn protos(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read proto/") {
            let path = entry.expect("proto/ entry").path();
            if path.is_dir() {
                protos(&path, found);
            } else if path.extension().is_some_and(|e| e == "proto") {
                found.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut files = Vec::new();
    protos(&root, &mut files);
    let out = tempfile::tempdir().expect("temp dir");
    let generated = std::process::Command::new(python)
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("--proto_path={}", root.display()))
        .arg(format!("--python_out={}", out.path().display()))
        .args(&files)
        .output()
        .expect("run grpc_tools.protoc");
    assert!(
        generated.status.success(),
        "grpc_tools.protoc failed on proto/:\n{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    out
}

/// Serves `registry` on a free 127.0.0.1 port; returns its base URL.
pub async fn serve_registry(registry: protobus_registry::Registry) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move {
        axum::serve(listener, protobus_registry::router(registry))
            .await
            .expect("serve the registry");
    });
    url
}

impl Kafka {
    /// A schema registry with its state in a fresh topic of this broker,
    /// served on a free port, and a runtime client of it.
    pub async fn schema_registry(&self) -> std::sync::Arc<protobus_runtime::SchemaRegistry> {
        let registry =
            protobus_registry::Registry::kafka(&self.bootstrap, &unique_name("_schemas"))
                .await
                .expect("registry on Kafka");
        let url = serve_registry(registry).await;
        std::sync::Arc::new(protobus_runtime::SchemaRegistry::new(&url).expect("registry client"))
    }

    /// A typed producer writing behind `prefix`, with extra librdkafka `settings`.
    pub fn event_producer(
        &self,
        schemas: std::sync::Arc<protobus_runtime::SchemaRegistry>,
        prefix: &str,
        settings: &[(&str, &str)],
    ) -> protobus_runtime::EventProducer {
        let mut config = self.config();
        for (key, value) in settings {
            config.set(*key, *value);
        }
        protobus_runtime::EventProducer::new(&config, schemas)
            .expect("producer")
            .with_topic_prefix(prefix)
    }
}

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

/// Copies the directory tree `from` into `to` (for edited copies of `proto/`).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("dir entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("create dir");
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

/// Prints a fault scenario's figure line (sent, acknowledged, consumed,
/// duplicates, lost) and appends it to the file named by `PROTOBUS_FIGURES`,
/// which `scripts/test.sh` prints as a summary once every test has run.
pub fn figure(line: &str) {
    use std::io::Write;
    println!("{line}");
    let Some(path) = std::env::var_os("PROTOBUS_FIGURES") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.to_string_lossy()));
    writeln!(file, "{line}").expect("writing a figure line");
}

/// A consumer running in a task of its own until [`RunningConsumer::stop`].
pub struct RunningConsumer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), protobus_runtime::Error>>,
}

/// Runs `consumer` in a task until the returned handle is stopped.
pub fn start_consumer<D>(consumer: protobus_runtime::EventConsumer<D>) -> RunningConsumer
where
    D: protobus_runtime::Dispatch + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    RunningConsumer { stop, task }
}

impl RunningConsumer {
    /// Stops the consumer (it commits and leaves its group); panics unless it
    /// ran cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("the consumer task")
            .expect("the consumer ran cleanly");
    }
}

/// Log lines of this test process, in the JSON format, for assertions.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Makes this process log JSON lines at `filter` into the returned capture
    /// (once per test binary).
    pub fn install(filter: &str) -> Self {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    pub fn json(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A handler of the orders topic that counts the events it took.
#[derive(Clone, Default)]
pub struct Count(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Count {
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn tick(&self) -> Result<(), HandlerError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl ShopOrdersHandler for Count {
    async fn order_placed(
        &self,
        _: protobus::contract::shop::orders::v1::OrderPlaced,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.tick()
    }
    async fn order_paid(
        &self,
        _: protobus::contract::shop::orders::v1::OrderPaid,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.tick()
    }
    async fn order_shipped(
        &self,
        _: protobus::contract::shop::orders::v1::OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.tick()
    }
}

/// An `OrderPlaced` with `order_id` as the ingest API takes it (binary payload).
pub fn ingest_order(order_id: &str) -> protobus_ingest::api::Event {
    use prost::Message as _;
    use protobus_runtime::Event as _;
    let order = protobus::contract::shop::orders::v1::OrderPlaced {
        order_id: order_id.into(),
        ..Default::default()
    };
    protobus_ingest::api::Event {
        r#type: protobus::contract::shop::orders::v1::OrderPlaced::FULL_NAME.into(),
        payload: Some(protobus_ingest::api::event::Payload::Binary(
            order.encode_to_vec().into(),
        )),
        ..Default::default()
    }
}

/// Serves `service` on a free 127.0.0.1 port until the test ends; returns its address.
pub async fn serve_ingest(service: protobus_ingest::IngestService) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(protobus_ingest::serve(
        listener,
        service,
        std::future::pending(),
    ));
    address
}

/// An address on 127.0.0.1 that was free a moment ago, for a process that
/// binds it itself.
pub fn free_address() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    probe.local_addr().expect("local address")
}

/// A `protobus` process started by a test, killed when the test ends.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `protobus` binary with `args` against the test broker.
pub fn protobus(args: &[&str]) -> Process {
    Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start protobus"),
    )
}

/// The Prometheus text at `http://ADDRESS/metrics`, waiting up to 30 s for it.
pub async fn scrape(address: std::net::SocketAddr) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match reqwest::get(format!("http://{address}/metrics")).await {
            Ok(response) if response.status().is_success() => {
                return response.text().await.unwrap();
            }
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no metrics at {address}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The value of the series `name` whose labels include `labels`; 0 when absent.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(text, name, labels).unwrap_or(0.0)
}

/// The summed value of the series `name` whose labels include `labels`;
/// `None` when there is none (a gauge that is missing is not a gauge at 0).
pub fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .reduce(|a, b| a + b)
}

/// A record as read back: key, value, headers by name.
pub type Record = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    std::collections::HashMap<String, String>,
);

/// What a consumer did with the events sent, matched by event id: which
/// sent ones never arrived, which arrived more than once, and which arrived
/// without having been sent. Counting alone would let one loss and one
/// duplicate cancel out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub unexpected: Vec<String>,
    /// Deliveries beyond the first, summed over every id.
    pub extra_copies: usize,
}

impl Delivery {
    /// Matches `received` (with repeats) against `sent` (each id once).
    pub fn check<'a>(
        sent: impl IntoIterator<Item = &'a str>,
        received: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
        for id in received {
            *seen.entry(id).or_default() += 1;
        }
        let sent: std::collections::BTreeSet<&str> = sent.into_iter().collect();
        let mut delivery = Delivery::default();
        for id in &sent {
            match seen.get(id) {
                None => delivery.lost.push((*id).to_owned()),
                Some(&n) if n > 1 => {
                    delivery.duplicated.push((*id).to_owned());
                    delivery.extra_copies += n - 1;
                }
                Some(_) => {}
            }
        }
        delivery.unexpected = seen
            .keys()
            .filter(|id| !sent.contains(*id))
            .map(|id| (*id).to_owned())
            .collect();
        delivery
    }
}
