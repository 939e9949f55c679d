//! Requests per second of `GET /schemas/ids/{id}` (warm state, keep-alive
//! clients), next to a constant-JSON axum route served the same way in the
//! same run, so the ratio shows what the registry itself costs.
//!
//! `cargo bench -p protobus-registry --bench schema_by_id`
//! (PROTOBUS_BENCH_SECONDS per round, default 3; 5 rounds; medians printed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use protobus_registry::{Registry, SchemaInput, router};

const CLIENTS: usize = 32;
const ROUNDS: usize = 5;
const SCHEMA: &str = "syntax = \"proto3\";\npackage shop;\nimport \"google/protobuf/timestamp.proto\";\n\
message Money { string currency = 1; int64 units = 2; }\n\
message Order { string id = 1; string customer = 2; Money total = 3; google.protobuf.Timestamp at = 4; repeated string tags = 5; }\n";

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Requests per second that `CLIENTS` keep-alive clients get from `url` in `seconds`.
async fn load(url: &str, seconds: f64) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, done, count) =
                (client.clone(), url.to_owned(), done.clone(), count.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let response = client.get(&url).send().await.expect("request");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then one short round checks that the benchmark still works.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (seconds, rounds): (f64, usize) = if measuring {
        let seconds = std::env::var("PROTOBUS_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0);
        (seconds, ROUNDS)
    } else {
        (0.2, 1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let registry = Registry::in_memory();
        let input = SchemaInput {
            schema: SCHEMA.into(),
            schema_type: Some("PROTOBUF".into()),
            ..SchemaInput::default()
        };
        let id = registry.register("orders-value", &input, false).await.unwrap();
        let registry_url = format!("{}/schemas/ids/{id}", serve(router(registry)).await);
        let body = serde_json::json!({ "schema": SCHEMA, "schemaType": "PROTOBUF", "references": [] }).to_string();
        let baseline = Router::new().route("/", get(move || { let body = body.clone(); async move { body } }));
        let baseline_url = serve(baseline).await + "/";

        load(&registry_url, seconds.min(1.0)).await; // warm-up
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Alternate, so that noise hits both sides alike.
            ours.push(load(&registry_url, seconds).await);
            base.push(load(&baseline_url, seconds).await);
        }
        let (ours, base) = (median(ours), median(base));
        println!("GET /schemas/ids/{{id}} with {CLIENTS} keep-alive clients, {rounds} rounds of {seconds}s, medians:");
        println!("  registry          {ours:>10.0} req/s");
        println!("  constant axum     {base:>10.0} req/s");
        println!("  ratio             {:>10.2}", ours / base);
        println!("  target            {:>10} req/s ({})", 20_000, if ours >= 20_000.0 { "met" } else { "NOT met" });
    });
}
