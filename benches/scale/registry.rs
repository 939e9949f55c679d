//! The registry's curve: 1 000, 10 000 and 100 000 registered schemas, each
//! importing one of a set of shared files (a reference per schema). The
//! schemas are written to a fresh `_schemas` topic directly, in Confluent's
//! record format (as a migration would), then for each size: the start-up
//! of a `protobus registry` process replaying them (every schema compiled
//! again), its resident memory once started, `GET /schemas/ids/{id}` and
//! `GET /schemas/ids/{id}/versions` per second and their p99 (4 clients,
//! random ids), and registrations per second on top of it (over HTTP, 8 at
//! a time).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::json;

use crate::{Curve, free_address};

/// Schemas that import one shared file.
const PER_SHARED_FILE: usize = 100;

struct Registry {
    child: Child,
    url: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// A `protobus registry` process on `topic`, and how long it took to
    /// answer a read of the schema with id `ready_id` (its log replayed).
    async fn start(bootstrap: &str, topic: &str, ready_id: Option<u64>) -> (Self, Duration) {
        let address = free_address();
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args([
                "registry",
                "--topic",
                topic,
                "--listen",
                &address.to_string(),
            ])
            .args(["--kafka", bootstrap])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start protobus registry");
        let registry = Registry {
            child,
            url: format!("http://{address}"),
        };
        let probe = match ready_id {
            Some(id) => format!("{}/schemas/ids/{id}", registry.url),
            None => format!("{}/subjects", registry.url),
        };
        let deadline = started + Duration::from_secs(600);
        loop {
            if reqwest::get(&probe)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return (registry, started.elapsed());
            }
            assert!(Instant::now() < deadline, "the registry did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn shared_file(k: usize) -> (String, String) {
    (
        format!("scale/common/c{k}.proto"),
        format!(
            "syntax = \"proto3\";\npackage scale.common.c{k};\nmessage Money {{ string currency = 1; int64 minor_units = 2; }}\n"
        ),
    )
}

fn event_schema(i: usize) -> serde_json::Value {
    let k = i / PER_SHARED_FILE;
    let (name, _) = shared_file(k);
    json!({
        "schemaType": "PROTOBUF",
        "schema": format!(
            "syntax = \"proto3\";\npackage scale.e{i};\nimport \"{name}\";\nmessage Happened {{\n  string id = 1;\n  scale.common.c{k}.Money amount = 2;\n  int64 at = 3;\n  repeated string tags = 4;\n}}\n"
        ),
        "references": [{ "name": name, "subject": name, "version": 1 }],
    })
}

/// Confluent's `_schemas` record of `schema` as `subject` version 1.
fn record(subject: &str, id: usize, schema: &serde_json::Value) -> (String, String) {
    let key = json!({ "keytype": "SCHEMA", "subject": subject, "version": 1, "magic": 1 });
    let value = json!({
        "subject": subject,
        "version": 1,
        "id": id,
        "schemaType": "PROTOBUF",
        "schema": schema["schema"],
        "references": schema.get("references").cloned().unwrap_or(json!([])),
        "deleted": false,
    });
    (key.to_string(), value.to_string())
}

/// Writes the shared files and `n` event schemas to `topic`; the newest id.
async fn fill(bootstrap: &str, topic: &str, n: usize) -> u64 {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let shared = n.div_ceil(PER_SHARED_FILE);
    let mut records = Vec::with_capacity(n + shared);
    for k in 0..shared {
        let (name, schema) = shared_file(k);
        records.push(record(&name, k + 1, &json!({ "schema": schema })));
    }
    for i in 0..n {
        records.push(record(
            &format!("scale-{i}-value"),
            shared + i + 1,
            &event_schema(i),
        ));
    }
    let newest = records.len() as u64;
    futures_util::stream::iter(records)
        .map(|(key, value)| {
            let producer = producer.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(&key)
                            .payload(&value)
                            .partition(0),
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("write a schema record");
            }
        })
        .buffer_unordered(1000)
        .collect::<Vec<_>>()
        .await;
    newest
}

async fn post(http: &reqwest::Client, url: String, body: serde_json::Value) -> u64 {
    let response = http.post(&url).json(&body).send().await.expect("register");
    let status = response.status();
    let answer: serde_json::Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "{url}: {status} {answer}");
    answer["id"].as_u64().expect("an id")
}

pub(crate) async fn run(bootstrap: &str, sizes: &[usize]) -> Curve {
    let mut curve = Curve::new(
        "registry: registered schemas (each with a reference)",
        &[
            "schemas",
            "start-up (replay) s",
            "resident MiB",
            "peak MiB",
            "GET /schemas/ids/{id} per s",
            "p99 ms",
            "GET /schemas/ids/{id}/versions per s",
            "p99 ms",
            "registrations/s",
        ],
    );
    let http = reqwest::Client::new();
    for &n in sizes {
        let topic = format!("_schemas-scale-{}", uuid::Uuid::new_v4().simple());
        // The registry creates the topic as it wants it (compacted, one partition).
        drop(Registry::start(bootstrap, &topic, None).await);
        let newest = fill(bootstrap, &topic, n).await;

        let (registry, startup) = Registry::start(bootstrap, &topic, Some(newest)).await;
        let (resident, peak) = crate::memory(&registry.child.id().to_string());
        let (by_id, p99) = reads(&http, &registry.url, newest, "").await;
        let (holders, holders_p99) = reads(&http, &registry.url, newest, "/versions").await;
        let more = 400;
        let started = Instant::now();
        futures_util::stream::iter(n..n + more)
            .map(|i| {
                let url = format!("{}/subjects/scale-{i}-value/versions", registry.url);
                post(&http, url, event_schema(i % n.max(1)))
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        let registrations = more as f64 / started.elapsed().as_secs_f64();
        curve.row(vec![
            n.to_string(),
            format!("{:.2}", startup.as_secs_f64()),
            format!("{resident:.0}"),
            format!("{peak:.0}"),
            format!("{by_id:.0}"),
            format!("{p99:.2}"),
            format!("{holders:.0}"),
            format!("{holders_p99:.2}"),
            format!("{registrations:.1}"),
        ]);
    }
    curve
}

/// Random `GET /schemas/ids/{id}{then}` from 4 clients for 5 s: per
/// second, p99 ms.
async fn reads(http: &reqwest::Client, url: &str, newest: u64, then: &str) -> (f64, f64) {
    let until = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let clients = (0..4u64).map(|c| {
        let (http, url, then) = (http.clone(), url.to_owned(), then.to_owned());
        tokio::spawn(async move {
            let mut latencies = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ c;
            while Instant::now() < until {
                // xorshift: ids spread over the whole registry.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let id = 1 + state % newest;
                let sent = Instant::now();
                let response = http
                    .get(format!("{url}/schemas/ids/{id}{then}"))
                    .send()
                    .await
                    .expect("GET");
                assert!(
                    response.status().is_success(),
                    "id {id}: {}",
                    response.status()
                );
                let _ = response.bytes().await.expect("body");
                latencies += sent.elapsed().as_micros() as u64;
            }
            latencies
        })
    });
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for client in clients {
        all += client.await.unwrap();
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, all.value_at_quantile(0.99) as f64 / 1000.0)
}
