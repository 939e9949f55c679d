//! The ingest service's curve: 1, 10 and 100 concurrent clients, each with a
//! connection of its own sending `Publish` requests of 100 events of 1 KiB
//! one after another for 10 s, to a `protobus ingest` process (its default
//! limits: 16 MiB in flight). For each: events per second acknowledged, the
//! p99 of a request, and the service's resident and peak memory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload};
use protobus_runtime::Event as _;

use crate::{Curve, free_address};

const PER_REQUEST: usize = 100;
const SECONDS: u64 = 10;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start protobus"),
    )
}

fn request(client: usize, n: u64) -> api::PublishRequest {
    let events = (0..PER_REQUEST)
        .map(|i| {
            let order = OrderPlaced {
                order_id: format!("c{client}-r{n}-{i}"),
                customer_id: format!("customer-{}", i % 100),
                coupon_code: "x".repeat(960),
                ..OrderPlaced::default()
            };
            api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                payload: Some(Payload::Binary(order.encode_to_vec().into())),
                ..api::Event::default()
            }
        })
        .collect();
    api::PublishRequest {
        events,
        request_id: n,
    }
}

pub(crate) async fn run(bootstrap: &str, clients: &[usize]) -> Curve {
    let mut curve = Curve::new(
        "ingest: concurrent clients (Publish, 100 events of 1 KiB a request)",
        &[
            "clients",
            "events/s",
            "request p99 ms",
            "resident MiB after",
            "peak MiB",
        ],
    );
    let registry_at = free_address().to_string();
    let _registry = start(&["registry", "--store", "memory", "--listen", &registry_at]);
    let registry = format!("http://{registry_at}");
    for &count in clients {
        let prefix = format!("scale-ingest-{}.", uuid::Uuid::new_v4().simple());
        let listen = free_address().to_string();
        let ingest = start(&[
            "ingest",
            "--listen",
            &listen,
            "--kafka",
            bootstrap,
            "--registry",
            &registry,
            "--topic-prefix",
            &prefix,
        ]);
        crate::consumer::create_topic(bootstrap, &format!("{prefix}{}", OrderPlaced::TOPIC), 6)
            .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut warm = loop {
            if let Ok(client) = IngestClient::connect(format!("http://{listen}")).await {
                break client;
            }
            assert!(
                Instant::now() < deadline,
                "the ingest service did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        warm.publish(request(usize::MAX, 0)).await.expect("warm-up");
        let until = Instant::now() + Duration::from_secs(SECONDS);
        let started = Instant::now();
        let tasks: Vec<_> = (0..count)
            .map(|c| {
                let listen = listen.clone();
                tokio::spawn(async move {
                    let mut client = IngestClient::connect(format!("http://{listen}"))
                        .await
                        .expect("connect");
                    let mut latencies = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                    let mut acked = 0usize;
                    let mut n = 1;
                    while Instant::now() < until {
                        let sent = Instant::now();
                        let response = client.publish(request(c, n)).await;
                        n += 1;
                        latencies += sent.elapsed().as_micros() as u64;
                        // RESOURCE_EXHAUSTED is the budget pushing back.
                        if let Ok(response) = response {
                            acked += response
                                .into_inner()
                                .results
                                .iter()
                                .filter(|r| matches!(r.outcome, Some(api::result::Outcome::Ack(_))))
                                .count();
                        }
                    }
                    (acked, latencies)
                })
            })
            .collect();
        let mut acked = 0;
        let mut latencies = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for task in tasks {
            let (n, l) = task.await.unwrap();
            acked += n;
            latencies += l;
        }
        let rate = acked as f64 / started.elapsed().as_secs_f64();
        let (resident, peak) = crate::memory(&ingest.0.id().to_string());
        curve.row(vec![
            count.to_string(),
            format!("{rate:.0}"),
            format!("{:.1}", latencies.value_at_quantile(0.99) as f64 / 1000.0),
            format!("{resident:.0}"),
            format!("{peak:.0}"),
        ]);
    }
    curve
}
