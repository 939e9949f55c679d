//! Protobus next to raw librdkafka and prost, pair by pair, on one broker:
//! typed producer, gRPC ingest, typed consumer dispatch, handlers that wait
//! on I/O (next to the ideal of their mode), framing, end-to-end latency, and
//! the ingest service's memory. In every pair the sides run in turn, round
//! after round, the side that goes first rotating; producing
//! pairs are measured against three raw producers (`FutureProducer` with
//! every send in flight, `ThreadedProducer`, the `BaseProducer` loop) and
//! their target holds against the fastest. The `peers` section sets the
//! typed producer and consumer next to kafka-go, franz-go and the Java
//! client ([`peers`]).
//!
//! `cargo bench --bench perf` (needs Kafka at KAFKA_BOOTSTRAP_SERVERS, as the
//! tests do: `scripts/kafka.sh start`) runs the rounds in several processes
//! of this binary, pools them, prints every round's figures and the medians,
//! and exits non-zero when a target is missed. PROTOBUS_BENCH_PROCESSES sets
//! the processes (default 3), PROTOBUS_BENCH_ROUNDS the rounds in each
//! (default 5), PROTOBUS_BENCH_EVENTS the events per round (default 200 000,
//! long enough for a producer's sustained rate: docs/performance.md),
//! PROTOBUS_BENCH_ONLY some sections (framing,produce,consume,io,ingest,latency,peers).
//! Without `--bench` (as `cargo test --all-targets` runs it) every pair makes
//! one small pass in this process, to check the harness works; targets are
//! not judged on so few events.

mod consume;
mod cost;
mod framing;
mod ingest;
mod io_bound;
mod kafka;
mod latency;
mod peers;
mod produce;
mod report;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use protobus_runtime::SchemaRegistry;

pub(crate) use report::{Row, Target};

/// Counts heap allocations, for the allocations-per-event figures. Both
/// sides of every pair run in this process, so both allocate through it
/// (glibc's `malloc` underneath, librdkafka's too).
#[global_allocator]
static ALLOCATOR: cost::Counting = cost::Counting;

/// Set in the processes this binary starts for itself.
const CHILD: &str = "PROTOBUS_BENCH_CHILD";
/// Starts the line on which a process hands its rows to the parent.
const ROWS_LINE: &str = "protobus-bench-rows ";

/// What every pair needs.
pub(crate) struct Bench {
    pub(crate) bootstrap: String,
    pub(crate) registry_url: String,
    pub(crate) schemas: Arc<SchemaRegistry>,
    pub(crate) per_round: usize,
    pub(crate) rounds: usize,
    pub(crate) measuring: bool,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = if measuring {
        env_number("PROTOBUS_BENCH_ROUNDS", 5)
    } else {
        1
    };
    let per_round = if measuring {
        env_number("PROTOBUS_BENCH_EVENTS", 200_000)
    } else {
        1_000
    };
    if std::env::var_os(CHILD).is_some() || !measuring {
        let rows = measure(measuring, rounds, per_round);
        if measuring {
            println!("{ROWS_LINE}{}", serde_json::to_string(&rows).unwrap());
        } else {
            report::print(&[rows]);
        }
        return;
    }
    let processes = env_number("PROTOBUS_BENCH_PROCESSES", 3).max(1);
    println!(
        "Protobus vs raw librdkafka/prost: {processes} processes × {rounds} rounds of \
         {per_round} events per pair; acks=all, idempotence, linger.ms=5, no compression, \
         {} partitions; glibc malloc on both sides (the ingest service, the protobus \
         binary, uses mimalloc for Rust allocations)",
        kafka::PARTITIONS
    );
    // Built once, here: every process runs the same peers.
    let peers = runs_section("peers").then(peers::build);
    let mut runs = Vec::new();
    for process in 1..=processes {
        println!("process {process} of {processes}");
        runs.push(child(peers.as_deref()));
    }
    let missed = report::print(&runs);
    if !missed.is_empty() {
        println!("targets NOT met: {}", missed.join("; "));
        std::process::exit(1);
    }
    println!("every target met");
}

/// Whether this run measures `section` (PROTOBUS_BENCH_ONLY, all by default).
fn runs_section(section: &str) -> bool {
    let only = std::env::var("PROTOBUS_BENCH_ONLY").unwrap_or_default();
    only.is_empty() || only.split(',').any(|s| s.trim() == section)
}

/// Runs this binary again as one measuring process and returns its rows.
fn child(peers: Option<&std::path::Path>) -> Vec<Row> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut command = Command::new(exe);
    command
        .arg("--bench")
        .env(CHILD, "1")
        .stdout(Stdio::piped());
    if let Some(dir) = peers {
        command.env(peers::PEERS_DIR, dir);
    }
    let mut child = command.spawn().expect("start a bench process");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut rows = None;
    for line in stdout.lines() {
        let line = line.expect("the bench process's output");
        match line.strip_prefix(ROWS_LINE) {
            Some(json) => rows = Some(serde_json::from_str(json).expect("rows")),
            None => println!("{line}"),
        }
    }
    let status = child.wait().expect("bench process");
    assert!(status.success(), "a bench process failed: {status}");
    rows.expect("the bench process printed no rows")
}

/// Every section this process runs, on a registry of its own.
fn measure(measuring: bool, rounds: usize, per_round: usize) -> Vec<Row> {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let registry = protobus_registry::Registry::in_memory();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            async move { axum::serve(listener, protobus_registry::router(registry)).await },
        );
        let bench = Bench {
            schemas: Arc::new(SchemaRegistry::new(&registry_url).unwrap()),
            bootstrap,
            registry_url,
            per_round,
            rounds,
            measuring,
        };
        // PROTOBUS_BENCH_ONLY=consume,latency runs some sections only.
        let runs = runs_section;
        let mut rows = Vec::new();
        if runs("framing") {
            rows.extend(framing::run(&bench));
        }
        if runs("produce") {
            rows.extend(produce::run(&bench).await);
        }
        if runs("consume") {
            rows.extend(consume::run(&bench).await);
        }
        if runs("io") {
            rows.extend(io_bound::run(&bench).await);
        }
        if runs("ingest") {
            rows.extend(ingest::run(&bench).await);
        }
        if runs("latency") {
            rows.extend(latency::run(&bench).await);
        }
        if runs("peers") {
            let built = tokio::task::spawn_blocking(peers::build).await.unwrap();
            rows.extend(peers::run(&bench, &built).await);
        }
        kafka::delete_topics(&bench.bootstrap).await;
        rows
    })
}
