//! Protobus next to the clients a team would pick instead, on the same
//! broker in the same run: segmentio/kafka-go (the client of the Go
//! template Protobus replaces), twmb/franz-go (the fastest Go client) and
//! Apache Kafka's Java client. The peers live in `benches/peers`, are built
//! from their module and pom files by `benches/peers/build.sh` (Go module
//! proxy, Maven Central) with code generated from `protobus contract
//! export`, and run as processes of their own; each warms up before its
//! clock starts and prints its rate, and the CPU time per event of its
//! process and of the whole machine (the broker included) over its timed
//! events: on two cores that every side keeps busy, these say where a gap
//! comes from.
//!
//! Producing: every side frames the example contract's `OrderPlaced` in
//! Confluent's wire format with a cached schema id and Protobus's headers,
//! `acks=all`, idempotence where the client has it (kafka-go has not), a
//! 5 ms linger, no compression. Consuming: a new group reads the same
//! filled topic, decoding each event and committing what it handled; the
//! clock runs from the first event to the last.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::EventProducer;

use crate::consume::{Clock, read_whole};
use crate::cost::Cost;
use crate::kafka::RawProducer;
use crate::{Bench, Row, kafka};

/// Where the parent process built the peers, for the processes it starts.
pub(crate) const PEERS_DIR: &str = "PROTOBUS_BENCH_PEERS_DIR";

/// A peer: a client of another language, as its community writes it.
#[derive(Clone, Copy)]
enum Peer {
    KafkaGo,
    FranzGo,
    Java,
}

impl Peer {
    const ALL: [Peer; 3] = [Peer::KafkaGo, Peer::FranzGo, Peer::Java];

    fn producer(self) -> &'static str {
        match self {
            Peer::KafkaGo => "kafka-go Writer (async; no idempotence)",
            Peer::FranzGo => "franz-go",
            Peer::Java => "Java KafkaProducer",
        }
    }

    fn consumer(self) -> &'static str {
        match self {
            Peer::KafkaGo => "kafka-go Reader + CommitMessages",
            Peer::FranzGo => "franz-go + MarkCommitRecords",
            Peer::Java => "Java KafkaConsumer + commitAsync",
        }
    }

    fn command(self, built: &Path) -> Command {
        match self {
            Peer::KafkaGo | Peer::FranzGo => Command::new(built.join("go-peers")),
            Peer::Java => {
                let classpath = std::fs::read_to_string(built.join("java-classpath"))
                    .expect("the Java peer's classpath");
                let mut java = Command::new("java");
                java.args(["-cp", classpath.trim(), "protobus.peers.Peer"]);
                java
            }
        }
    }

    /// [`run`](Self::run) off the async workers.
    async fn run_blocking(
        self,
        built: &Path,
        action: &'static str,
        args: Vec<String>,
    ) -> serde_json::Value {
        let built = built.to_owned();
        tokio::task::spawn_blocking(move || self.run(&built, action, &args))
            .await
            .unwrap()
    }

    /// Runs `action` with `args` in a process of its own; what it printed.
    fn run(self, built: &Path, action: &str, args: &[String]) -> serde_json::Value {
        let mut command = self.command(built);
        command.arg(action);
        if let Peer::KafkaGo | Peer::FranzGo = self {
            let client = if let Peer::KafkaGo = self {
                "kafka-go"
            } else {
                "franz-go"
            };
            command.args(["-client", client]);
        }
        let output = command.args(args).output().expect("start a peer");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "peer {action} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout.lines().last().expect("the peer's result");
        serde_json::from_str(line).expect("the peer's JSON")
    }
}

impl Cost {
    fn of_peer(result: &serde_json::Value) -> Self {
        let figure = |name: &str| result[name].as_f64().unwrap_or_else(|| panic!("{name}"));
        Cost {
            rate: figure("rate"),
            process_cpu_us: figure("cpu_us"),
            machine_cpu_us: figure("machine_cpu_us"),
        }
    }
}

/// One of a [`Cost`]'s figures.
type Figure = fn(&Cost) -> f64;

/// Builds the peers (once per run: the parent does it for its processes).
pub(crate) fn build() -> PathBuf {
    if let Some(dir) = std::env::var_os(PEERS_DIR) {
        return dir.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target").join("bench-peers");
    let contract = out.join("contract");
    let exported = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["contract", "export", "--out"])
        .arg(&contract)
        .output()
        .expect("run protobus contract export");
    assert!(exported.status.success(), "{exported:?}");
    let built = Command::new(root.join("benches/peers/build.sh"))
        .arg(&contract)
        .arg(&out)
        .status()
        .expect("run benches/peers/build.sh");
    assert!(built.success(), "building the peers failed");
    out
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(name, value)| [format!("-{name}"), value.clone()])
        .collect()
}

pub(crate) async fn run(bench: &Bench, built: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for (size, label) in [(100, "100 B"), (1024, "1 KiB")] {
        rows.extend(produce(bench, built, size, label).await);
        rows.extend(consume(bench, built, size, label).await);
    }
    rows
}

async fn produce(bench: &Bench, built: &Path, size: usize, label: &str) -> Vec<Row> {
    let (prefix, topic) = kafka::topic(&bench.bootstrap, &format!("peers-produce-{size}")).await;
    let producer = EventProducer::new(&kafka::settings(&bench.bootstrap), bench.schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    let schema_id = bench.schemas.id_of::<OrderPlaced>().await.unwrap();
    let events: Arc<Vec<OrderPlaced>> = Arc::new(
        (0..bench.per_round)
            .map(|i| kafka::event(i, size))
            .collect(),
    );
    // Warm, as each peer warms up with a round's worth before its clock starts.
    typed_produce(&producer, &events).await;
    let args = flags(&[
        ("bootstrap", bench.bootstrap.clone()),
        ("topic", topic.clone()),
        ("count", bench.per_round.to_string()),
        ("size", size.to_string()),
        ("schema-id", schema_id.to_string()),
        ("warmup", bench.per_round.to_string()),
    ]);
    let raw = RawProducer::Base;
    let client = &raw.client(&bench.bootstrap, &topic, schema_id).await;
    let costs = rotate(bench.rounds, Peer::ALL.len() + 2, |side| {
        let (events, topic, args) = (events.clone(), topic.clone(), args.clone());
        let producer = &producer;
        async move {
            match side {
                0 => crate::produce::typed(producer, &events).await.0.into(),
                1 => client.produce(&topic, schema_id, events).await.into(),
                peer => Cost::of_peer(
                    &Peer::ALL[peer - 2]
                        .run_blocking(built, "produce", args)
                        .await,
                ),
            }
        }
    })
    .await;
    rows(
        &format!("typed producer vs {{raw}}, {label}"),
        &costs,
        format!("{} (librdkafka)", raw.name()),
        Peer::producer,
    )
}

/// Sends `events` through the typed producer, each one acknowledged.
async fn typed_produce(producer: &EventProducer, events: &[OrderPlaced]) {
    crate::produce::typed(producer, events).await;
}

async fn consume(bench: &Bench, built: &Path, size: usize, label: &str) -> Vec<Row> {
    let (prefix, topic) = kafka::topic(&bench.bootstrap, &format!("peers-consume-{size}")).await;
    let producer = EventProducer::new(&kafka::settings(&bench.bootstrap), bench.schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    let events = bench.per_round * crate::consume::READS_PER_ROUND;
    let filled: Vec<OrderPlaced> = (0..events).map(|i| kafka::event(i, size)).collect();
    typed_produce(&producer, &filled).await;
    let typed_read = || async {
        let clock = Clock::new(events);
        let dispatcher =
            protobus::contract::ShopOrdersDispatcher(crate::consume::Noop(clock.clone()));
        read_whole(bench, &prefix, &clock, |_| {}, dispatcher).await;
        clock.read()
    };
    typed_read().await; // warm-up, as the Java peer reads once before its clock
    let args = flags(&[
        ("bootstrap", bench.bootstrap.clone()),
        ("topic", topic.clone()),
        ("count", events.to_string()),
    ]);
    let costs = rotate(bench.rounds, Peer::ALL.len() + 2, |side| {
        let (topic, args) = (topic.clone(), args.clone());
        let typed_read = &typed_read;
        async move {
            match side {
                0 => typed_read().await,
                1 => crate::consume::raw_batched(bench.bootstrap.clone(), topic, events, 1).await,
                peer => Cost::of_peer(
                    &Peer::ALL[peer - 2]
                        .run_blocking(built, "consume", args)
                        .await,
                ),
            }
        }
    })
    .await;
    rows(
        &format!("typed consumer dispatch vs {{raw}}, {label}"),
        &costs,
        "batch read + prost (librdkafka)".into(),
        Peer::consumer,
    )
}

/// Runs `measure(side)` for every side in each round, the side that goes
/// first rotating from round to round; the figures, side by side.
async fn rotate<T, F, Fut>(rounds: usize, sides: usize, mut measure: F) -> Vec<Vec<T>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut figures: Vec<Vec<T>> = (0..sides).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..sides {
            let side = (round + k) % sides;
            figures[side].push(measure(side).await);
        }
    }
    figures
}

/// The rows of a pair measured by [`rotate`] (Protobus, librdkafka alone,
/// then each peer): the rates, judged against the fastest peer, with
/// librdkafka alone in a row of its own, without a target, to show what of
/// a gap is Protobus's; then the CPU time per event of each side's process
/// and of the machine, and the cores the machine would need at Protobus's
/// and at librdkafka's to match the fastest peer.
fn rows(pair: &str, costs: &[Vec<Cost>], raw: String, named: fn(Peer) -> &'static str) -> Vec<Row> {
    let figures = |figure: Figure| -> Vec<Vec<f64>> {
        costs
            .iter()
            .map(|side| side.iter().map(figure).collect())
            .collect()
    };
    let peers = || Peer::ALL.map(|peer| named(peer).to_owned());
    let mut rates = figures(|c| c.rate);
    let peer_rates = rates.split_off(2);
    let raw_rates = rates.pop().expect("librdkafka's rates");
    let typed_rates = rates.pop().expect("Protobus's rates");
    // Each round's fastest peer rate.
    let fastest: Vec<f64> = (0..typed_rates.len())
        .map(|round| peer_rates.iter().map(|r| r[round]).fold(0.0, f64::max))
        .collect();
    let mut out = vec![
        Row::throughput(
            pair.to_owned(),
            typed_rates.clone(),
            peers().into_iter().zip(peer_rates).collect(),
            Some(1.0),
        ),
        Row::throughput(
            pair.to_owned(),
            typed_rates,
            vec![(raw.clone(), raw_rates)],
            None,
        ),
    ];
    let cpu: [(&str, Figure); 2] = [
        ("client process CPU per event", |c| c.process_cpu_us),
        ("machine CPU per event (broker included)", |c| {
            c.machine_cpu_us
        }),
    ];
    for (what, figure) in cpu {
        let mut sides = figures(figure);
        let typed = sides.remove(0);
        let names = std::iter::once(raw.clone()).chain(peers());
        out.push(Row::times(
            format!("{what}, {pair}"),
            "µs",
            typed,
            names.zip(sides).collect(),
        ));
    }
    // Cores the whole machine would need to match the fastest peer at a
    // side's CPU per event: above the machine's cores, no tuning of that
    // side reaches the peer here.
    let machine = figures(|c| c.machine_cpu_us);
    let cores = |side: usize| -> Vec<f64> {
        (machine[side].iter().zip(&fastest))
            .map(|(us, rate)| us * rate / 1e6)
            .collect()
    };
    out.push(Row::times(
        format!("cores needed at the fastest peer's rate, {pair}"),
        "cores",
        cores(0),
        vec![(raw, cores(1))],
    ));
    out
}
