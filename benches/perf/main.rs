//! Protobus next to raw librdkafka and prost, pair by pair, in one run on one
//! broker: typed producer, gRPC ingest, typed consumer dispatch, framing,
//! end-to-end latency, and the ingest service's memory. Each pair runs its
//! two sides alternately, round after round, the side that goes first taking
//! turns; the table shows medians and ratios (Protobus / raw).
//!
//! `cargo bench --bench perf` (needs Kafka at KAFKA_BOOTSTRAP_SERVERS, as the
//! tests do: `scripts/kafka.sh start`). PROTOBUS_BENCH_EVENTS sets events per
//! round (default 50 000), PROTOBUS_BENCH_ROUNDS the rounds (default 9),
//! PROTOBUS_BENCH_ONLY some sections (framing,produce,consume,ingest,latency).
//! Without `--bench` (as `cargo test --all-targets` runs it) every pair makes
//! one small pass, to check the harness works.

mod alloc_count;
mod consume;
mod framing;
mod ingest;
mod kafka;
mod latency;
mod produce;

use std::sync::Arc;

use protobus_runtime::SchemaRegistry;

/// Counts heap allocations, for the allocations-per-event figures.
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

/// What every pair needs.
pub(crate) struct Bench {
    pub(crate) bootstrap: String,
    pub(crate) registry_url: String,
    pub(crate) schemas: Arc<SchemaRegistry>,
    pub(crate) per_round: usize,
    pub(crate) rounds: usize,
    pub(crate) measuring: bool,
}

/// One line of the table.
pub(crate) struct Row {
    pub(crate) pair: String,
    pub(crate) unit: &'static str,
    pub(crate) protobus: f64,
    pub(crate) raw: f64,
    /// Protobus / raw; `None` where a ratio means nothing.
    pub(crate) ratio: Option<f64>,
    /// The lowest and highest ratio of single rounds (each side's figure of
    /// the same round), to show how much one round can swing.
    pub(crate) spread: Option<(f64, f64)>,
    /// The target, as text, and whether it holds.
    pub(crate) target: Option<(String, bool)>,
}

impl Row {
    /// A throughput pair from each side's rates, round by round: higher is
    /// better, the ratio of the medians must be at least `min`.
    pub(crate) fn throughput(
        pair: String,
        protobus: &[f64],
        raw: &[f64],
        min: Option<f64>,
    ) -> Self {
        let spread = spread(protobus, raw);
        let (protobus, raw) = (median(protobus.to_vec()), median(raw.to_vec()));
        let ratio = protobus / raw;
        Row {
            pair,
            unit: "events/s",
            protobus,
            raw,
            ratio: Some(ratio),
            spread,
            target: min.map(|min| (format!("≥ {min:.2}"), ratio >= min)),
        }
    }
}

impl Row {
    /// A figure of Protobus alone (allocations, requests, memory).
    pub(crate) fn single(
        pair: impl Into<String>,
        unit: &'static str,
        value: f64,
        target: Option<(&str, bool)>,
    ) -> Self {
        Row {
            pair: pair.into(),
            unit,
            protobus: value,
            raw: f64::NAN,
            ratio: None,
            spread: None,
            target: target.map(|(text, met)| (text.to_owned(), met)),
        }
    }
}

/// The lowest and highest ratio of one round's figures.
pub(crate) fn spread(protobus: &[f64], raw: &[f64]) -> Option<(f64, f64)> {
    protobus
        .iter()
        .zip(raw)
        .map(|(p, r)| p / r)
        .fold(None, |range, r| match range {
            None => Some((r, r)),
            Some((low, high)) => Some((low.min(r), high.max(r))),
        })
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
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
            per_round: if measuring {
                env_number("PROTOBUS_BENCH_EVENTS", 50_000)
            } else {
                1_000
            },
            rounds: if measuring {
                env_number("PROTOBUS_BENCH_ROUNDS", 9)
            } else {
                1
            },
            measuring,
        };
        println!(
            "Protobus vs raw librdkafka/prost: {} rounds of {} events per pair, medians \
             (rounds: the lowest and highest ratio of one round); \
             acks=all, idempotence, linger.ms=5, no compression, {} partitions",
            bench.rounds,
            bench.per_round,
            kafka::PARTITIONS
        );
        // PROTOBUS_BENCH_ONLY=consume,latency runs some sections only.
        let only = std::env::var("PROTOBUS_BENCH_ONLY").unwrap_or_default();
        let runs = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
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
        if runs("ingest") {
            rows.extend(ingest::run(&bench).await);
        }
        if runs("latency") {
            rows.extend(latency::run(&bench).await);
        }
        kafka::delete_topics(&bench.bootstrap).await;
        print_table(&rows);
        let missed: Vec<&Row> = rows
            .iter()
            .filter(|r| matches!(r.target, Some((_, false))))
            .collect();
        if missed.is_empty() {
            println!("every target met");
        } else {
            println!(
                "targets NOT met: {}",
                missed
                    .iter()
                    .map(|r| r.pair.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    });
}

fn print_table(rows: &[Row]) {
    let width = rows
        .iter()
        .map(|r| r.pair.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "| {:width$} | {:>12} | {:>12} | {:>11} | {:>6} | {:>11} | {:>8} |",
        "pair", "protobus", "raw", "unit", "ratio", "rounds", "target"
    );
    println!(
        "|{}|--------------|--------------|-------------|--------|-------------|----------|",
        "-".repeat(width + 2)
    );
    for row in rows {
        let ratio = row.ratio.map(|r| format!("{r:.2}")).unwrap_or_default();
        let spread = row
            .spread
            .map(|(low, high)| format!("{low:.2}–{high:.2}"))
            .unwrap_or_default();
        let target = match &row.target {
            Some((text, true)) => format!("{text} ✓"),
            Some((text, false)) => format!("{text} ✗"),
            None => String::new(),
        };
        println!(
            "| {:width$} | {:>12} | {:>12} | {:>11} | {:>6} | {:>11} | {:>8} |",
            row.pair,
            format_value(row.protobus),
            format_value(row.raw),
            row.unit,
            ratio,
            spread,
            target
        );
    }
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "—".into()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
