//! The replicated cluster of `scripts/kafka.sh cluster`: reaching it (a
//! scenario fails, never skips, when it does not answer), faults on its
//! brokers, what its metadata says, and the `protobus` processes a
//! scenario runs against it.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::common;

/// Scenarios take turns: each fails brokers the others use.
static ONE_SCENARIO_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The three-broker cluster, held by one scenario at a time.
pub struct Cluster {
    bootstrap: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// One partition as the cluster's metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub id: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

const HOW_TO_START: &str = "start it with `scripts/kafka.sh cluster start` (scripts/test.sh does)";

/// Takes the cluster for one scenario, with every broker up and in the
/// cluster's metadata; panics with instructions when it does not answer.
pub async fn cluster() -> Cluster {
    let turn = ONE_SCENARIO_AT_A_TIME.lock().await;
    let bootstrap = std::env::var("PROTOBUS_CLUSTER_BOOTSTRAP")
        .unwrap_or_else(|_| "127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093".to_owned());
    let cluster = Cluster {
        bootstrap,
        _turn: turn,
    };
    // An earlier scenario that failed may have left a broker down or paused.
    cluster.script(&["heal"]);
    let brokers = cluster.brokers();
    assert_eq!(
        brokers, 3,
        "the cluster at {} shows {brokers} brokers; {HOW_TO_START}",
        cluster.bootstrap
    );
    cluster
}

impl Cluster {
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Client settings for the cluster, to add a scenario's own to.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("socket.timeout.ms", "10000");
        config
    }

    /// Runs `scripts/kafka.sh cluster ARGS`; panics when it fails.
    pub fn script(&self, args: &[&str]) {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh"))
            .arg("cluster")
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run scripts/kafka.sh");
        assert!(
            status.success(),
            "scripts/kafka.sh cluster {args:?} failed; {HOW_TO_START}"
        );
    }

    pub fn kill(&self, broker: i32) {
        self.script(&["kill", &broker.to_string()]);
    }

    pub fn restart(&self, broker: i32) {
        self.script(&["restart", &broker.to_string()]);
    }

    pub fn pause(&self, broker: i32) {
        self.script(&["pause", &broker.to_string()]);
    }

    pub fn resume(&self, broker: i32) {
        self.script(&["resume", &broker.to_string()]);
    }

    fn client(&self) -> BaseConsumer {
        self.config().create().expect("a metadata client")
    }

    /// Brokers in the cluster's metadata.
    pub fn brokers(&self) -> usize {
        self.client()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.brokers().len())
            .unwrap_or_else(|e| {
                panic!(
                    "the cluster at {} does not answer ({e}); {HOW_TO_START}",
                    self.bootstrap
                )
            })
    }

    /// `topic`'s partitions: leader, replicas and in-sync replicas.
    pub fn partitions(&self, topic: &str) -> Vec<PartitionState> {
        let metadata = self
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .map(|p| PartitionState {
                id: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            })
            .collect()
    }

    /// The partition of `topic` holding the most records, and its leader.
    pub fn busiest_partition(&self, topic: &str) -> PartitionState {
        let client = self.client();
        let mut partitions = self.partitions(topic);
        let sizes: HashMap<i32, i64> = partitions
            .iter()
            .map(|p| {
                let (low, high) = client
                    .fetch_watermarks(topic, p.id, Duration::from_secs(10))
                    .unwrap_or((0, 0));
                (p.id, high - low)
            })
            .collect();
        partitions.sort_by_key(|p| std::cmp::Reverse(sizes[&p.id]));
        partitions.remove(0)
    }

    /// Waits until every partition of `topics` has every replica in sync.
    pub async fn wait_in_sync(&self, topics: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let behind: Vec<(String, PartitionState)> = topics
                .iter()
                .flat_map(|t| self.partitions(t).into_iter().map(|p| ((*t).to_owned(), p)))
                .filter(|(_, p)| p.isr.len() < p.replicas.len())
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not back in sync within {within:?}: {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Provisions the contract's topics behind `prefix` with `protobus topics apply`.
    pub fn apply_topics(&self, prefix: &str) {
        let output = Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args([
                "topics",
                "apply",
                "--topic-prefix",
                prefix,
                "--kafka",
                &self.bootstrap,
            ])
            .output()
            .expect("run protobus topics apply");
        assert!(
            output.status.success(),
            "topics apply: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A `protobus` process against the cluster, killed when dropped.
    pub fn protobus(&self, args: &[&str]) -> common::Process {
        common::Process(
            Command::new(env!("CARGO_BIN_EXE_protobus"))
                .args(args)
                .env("KAFKA_BOOTSTRAP_SERVERS", &self.bootstrap)
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start protobus"),
        )
    }

    /// `protobus registry` on the cluster, its log in `topic`; returns its
    /// URL once it answers.
    pub async fn registry(&self, topic: &str) -> (common::Process, String) {
        let address = common::free_address();
        let process = self.protobus(&[
            "registry",
            "--listen",
            &address.to_string(),
            "--topic",
            topic,
        ]);
        let url = format!("http://{address}");
        common::wait_for_http(&format!("{url}/health")).await;
        (process, url)
    }

    /// `protobus ingest` on the cluster behind `prefix`; returns its address
    /// once it accepts connections.
    pub async fn ingest(
        &self,
        registry: &str,
        prefix: &str,
        kafka_settings: &[&str],
    ) -> (common::Process, std::net::SocketAddr) {
        let address = common::free_address();
        let mut args = vec![
            "ingest".to_owned(),
            "--listen".to_owned(),
            address.to_string(),
            "--registry".to_owned(),
            registry.to_owned(),
            "--topic-prefix".to_owned(),
            prefix.to_owned(),
        ];
        for setting in kafka_settings {
            args.extend(["--kafka-config".to_owned(), (*setting).to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = self.protobus(&args);
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(Instant::now() < deadline, "ingest did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (process, address)
    }
}
