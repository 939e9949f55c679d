//! Scale curves: how Protobus's costs grow with the work, printed as tables
//! (not run in CI: a full run takes many minutes). Needs Kafka at
//! KAFKA_BOOTSTRAP_SERVERS (`scripts/kafka.sh start`).
//!
//! `cargo bench --bench scale` runs every curve; `-- registry` some of them.
//! PROTOBUS_SCALE_SCHEMAS sets the registry's sizes (default
//! 1000,10000,100000), PROTOBUS_SCALE_EVENTS the contract's (default
//! 10,100,1000), PROTOBUS_SCALE_PARTITIONS the consumer's (default
//! 1,12,120,600), PROTOBUS_SCALE_CLIENTS the ingest service's (default
//! 1,10,100).

mod consumer;
mod contract;
mod ingest;
mod registry;

/// A table: one row per size of the input.
pub(crate) struct Curve {
    title: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Curve {
    pub(crate) fn new(title: &str, columns: &[&str]) -> Self {
        Curve {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, row: Vec<String>) {
        println!("  {}", row.join(" | "));
        self.rows.push(row);
    }

    fn print(&self) {
        println!("\n### {}\n", self.title);
        println!("| {} |", self.columns.join(" | "));
        println!("|{}", " ---: |".repeat(self.columns.len()));
        for row in &self.rows {
            println!("| {} |", row.join(" | "));
        }
    }
}

/// Resident and peak memory of process `pid` (`self` for this one), in MiB.
pub(crate) fn memory(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Cargo's target directory (CARGO_TARGET_DIR, else the repository's).
pub(crate) fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        Into::into,
    )
}

/// An address on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_address() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    probe.local_addr().expect("local address")
}

fn sizes(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name).ok().map_or_else(
        || default.to_vec(),
        |v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
    )
}

fn main() {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs = |curve: &str| chosen.is_empty() || chosen.iter().any(|c| c == curve);
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` builds and starts this; the curves are
        // for `cargo bench --bench scale` only.
        println!("scale curves run with `cargo bench --bench scale`");
        return;
    }
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut curves = Vec::new();
    runtime.block_on(async {
        if runs("registry") {
            let schemas = sizes("PROTOBUS_SCALE_SCHEMAS", &[1_000, 10_000, 100_000]);
            curves.push(registry::run(&bootstrap, &schemas).await);
        }
        if runs("contract") {
            let events = sizes("PROTOBUS_SCALE_EVENTS", &[10, 100, 1_000]);
            curves.push(contract::run(&events).await);
        }
        if runs("consumer") {
            // A registry of this process's own, in memory.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let app = protobus_registry::router(protobus_registry::Registry::in_memory());
            tokio::spawn(async move { axum::serve(listener, app).await });
            let client = std::sync::Arc::new(protobus_runtime::SchemaRegistry::new(&url).unwrap());
            let partitions: Vec<i32> = sizes("PROTOBUS_SCALE_PARTITIONS", &[1, 12, 120, 600])
                .into_iter()
                .map(|p| p as i32)
                .collect();
            curves.push(consumer::run(&bootstrap, client, &partitions).await);
        }
        if runs("ingest") {
            let clients = sizes("PROTOBUS_SCALE_CLIENTS", &[1, 10, 100]);
            curves.push(ingest::run(&bootstrap, &clients).await);
        }
    });
    for curve in &curves {
        curve.print();
    }
}
