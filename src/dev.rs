//! `protobus dev`: events flowing on an in-process Kafka (librdkafka's mock
//! cluster) with nothing installed, or on a real broker with `--kafka`.
//!
//! The mock cluster is for this demo and fast tests only; the test suite
//! proves behaviour against a real broker.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use prost::Message as _;
use protobus::cli::DevArgs;
use protobus::contract::shop::v1::{Money, OrderPlaced};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;
use tracing::{info, warn};

const TOPIC: &str = "shop.orders";
const PARTITIONS: i32 = 3;

pub(crate) async fn run(args: DevArgs) -> Result<()> {
    // Held for the whole run: dropping it stops the in-process cluster.
    let mock;
    let bootstrap = match &args.kafka {
        Some(servers) => {
            info!(kafka = %servers, "using the configured Kafka");
            servers.clone()
        }
        None => {
            mock = MockCluster::new(1).context("starting the in-process Kafka")?;
            mock.create_topic(TOPIC, PARTITIONS, 1)
                .context("creating the demo topic")?;
            let servers = mock.bootstrap_servers();
            info!(kafka = %servers, "in-process Kafka (librdkafka mock cluster) listening");
            servers
        }
    };

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .context("creating the producer")?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "protobus-dev")
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating the consumer")?;
    consumer
        .subscribe(&[TOPIC])
        .context("subscribing to the demo topic")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        if shutdown_signal().await.is_ok() {
            info!("stopping");
            let _ = stop_tx.send(true);
        }
    });

    let limit = args.events;
    let publisher = tokio::spawn(publish(producer, args, stop_rx.clone()));
    let handled = handle(&consumer, limit, stop_rx).await?;
    let published = publisher.await.context("publisher task")??;
    info!(published, handled, "done");
    Ok(())
}

/// Publishes sample events until `limit` (if non-zero) or until stopped.
async fn publish(
    producer: FutureProducer,
    args: DevArgs,
    mut stop: watch::Receiver<bool>,
) -> Result<u64> {
    let mut published = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(args.interval_ms.max(1)));
    while args.events == 0 || published < args.events {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticker.tick() => {}
        }
        let event = sample_order(published);
        let payload = event.encode_to_vec();
        let record = FutureRecord::to(TOPIC)
            .key(&event.order_id)
            .payload(&payload);
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(delivery) => {
                published += 1;
                info!(topic = TOPIC, partition = delivery.partition, offset = delivery.offset,
                      order_id = %event.order_id, "published OrderPlaced");
            }
            Err((err, _)) => warn!(error = %err, order_id = %event.order_id, "publish failed"),
        }
    }
    Ok(published)
}

/// Decodes and logs events until `limit` (if non-zero) were handled or until
/// stopped, committing each offset after its event was handled.
async fn handle(
    consumer: &StreamConsumer,
    limit: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<u64> {
    let mut handled = 0;
    while limit == 0 || handled < limit {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = consumer.recv() => message.context("consuming")?,
        };
        let payload = message.payload().unwrap_or_default();
        match OrderPlaced::decode(payload) {
            Ok(order) => {
                handled += 1;
                let total = order.total.unwrap_or_default();
                info!(topic = message.topic(), partition = message.partition(), offset = message.offset(),
                      order_id = %order.order_id, customer_id = %order.customer_id,
                      total = %format!("{}.{:02} {}", total.minor_units / 100, total.minor_units % 100, total.currency),
                      "handled OrderPlaced");
            }
            Err(err) => {
                warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(),
                              error = %err, "skipping a record that is not an OrderPlaced")
            }
        }
        consumer
            .commit_message(&message, rdkafka::consumer::CommitMode::Async)
            .context("committing")?;
    }
    Ok(handled)
}

fn sample_order(n: u64) -> OrderPlaced {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    OrderPlaced {
        order_id: format!("order-{n:05}"),
        customer_id: format!("customer-{}", n % 7),
        total: Some(Money {
            currency: "EUR".into(),
            minor_units: 1_999 + (n as i64 % 5) * 1_000,
        }),
        placed_at: Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
