//! A starting point for a service that handles events: implement the
//! generated handler trait of each topic, run them in a consumer group.
//! Offsets are committed only after a handler returned `Ok`; Ctrl-C or
//! SIGTERM stops it cleanly (in-flight handler finished, offsets committed,
//! group left). `docker compose up` runs it as the `consumer` service.
//!
//! ```sh
//! cargo run --example consumer -- --group orders-service
//! ```

use std::sync::Arc;

use anyhow::Result;
use clap::Parser;
use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{
    ShopCustomersDispatcher, ShopCustomersHandler, ShopOrdersDispatcher, ShopOrdersHandler,
};
use protobus_runtime::{
    ConsumerSettings, EventConsumer, EventContext, HandlerError, SchemaRegistry,
};
use tracing::info;

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
    /// The consumer group.
    #[arg(long, env = "PROTOBUS_GROUP", default_value = "example-consumer")]
    group: String,
    /// Prefix for every topic (e.g. `staging.`).
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Members of the group this process runs, each on a task of its own:
    /// up to one per core when handling is bound by CPU.
    #[arg(long, env = "PROTOBUS_CONSUMER_MEMBERS", default_value_t = 1)]
    members: usize,
    /// Serve Prometheus metrics (consumed, failed, lag…) at http://ADDR/metrics.
    #[arg(long, env = "PROTOBUS_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

struct Orders;

impl ShopOrdersHandler for Orders {
    async fn order_placed(
        &self,
        event: OrderPlaced,
        ctx: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(order_id = %event.order_id, partition = ctx.partition(), offset = ctx.offset(), "order placed");
        Ok(())
    }

    async fn order_paid(&self, event: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        info!(order_id = %event.order_id, payment_id = %event.payment_id, "order paid");
        Ok(())
    }

    async fn order_shipped(
        &self,
        event: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(order_id = %event.order_id, carrier = %event.carrier, "order shipped");
        Ok(())
    }
}

struct Customers;

impl ShopCustomersHandler for Customers {
    async fn customer_registered(
        &self,
        event: CustomerRegistered,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(customer_id = %event.customer_id, "customer registered");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(listen) = args.metrics_listen {
        protobus::prometheus::install(listen)?;
    }
    let registry = Arc::new(SchemaRegistry::new(&args.registry)?);
    let mut settings = ConsumerSettings::new(&args.kafka, &args.group);
    settings.topic_prefix = args.topic_prefix;
    settings.members = args.members;
    let consumer = EventConsumer::new(
        settings,
        registry,
        (
            ShopOrdersDispatcher(Orders),
            ShopCustomersDispatcher(Customers),
        ),
    )?;
    info!(group = %args.group, members = args.members, "consuming; Ctrl-C to stop");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    consumer
        .run(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        })
        .await?;
    Ok(())
}
