//! A starting point for a service that publishes events: copy it, swap the
//! example contract for yours.
//!
//! ```sh
//! scripts/kafka.sh start && cargo run -- registry &     # or any Kafka and Confluent-compatible registry
//! cargo run --example producer -- --count 100
//! ```
//!
//! Every flag has an environment variable (`--help` lists them).

use std::sync::Arc;

use anyhow::Result;
use clap::Parser;
use protobus::contract::shop::common::v1::Money;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{EventProducer, SchemaRegistry, SendOptions};
use rdkafka::ClientConfig;

#[derive(Debug, Parser)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    kafka: String,
    /// URL of a Confluent-compatible schema registry.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    registry: String,
    /// Prefix for every topic (e.g. `staging.`).
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// How many OrderPlaced events to send.
    #[arg(long, default_value_t = 10)]
    count: u32,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let registry = Arc::new(SchemaRegistry::new(&args.registry)?);
    let mut kafka = ClientConfig::new();
    kafka.set("bootstrap.servers", &args.kafka);
    let producer = EventProducer::new(&kafka, registry)?.with_topic_prefix(args.topic_prefix);

    for n in 0..args.count {
        let order = OrderPlaced {
            order_id: format!("example-{n}"),
            customer_id: "customer-1".into(),
            total: Some(Money {
                currency: "EUR".into(),
                minor_units: 1_000 + i64::from(n),
            }),
            ..OrderPlaced::default()
        };
        let options = SendOptions {
            correlation_id: Some(format!("example-run-{n}")),
            ..SendOptions::default()
        };
        let delivery = producer.send_with(&order, options).await?;
        println!(
            "{} -> {}/{} offset {} (event id {})",
            order.order_id, delivery.topic, delivery.partition, delivery.offset, delivery.event_id
        );
    }
    Ok(())
}
