//! `protobus dev`: the typed pipeline end to end with nothing installed.
//!
//! With no broker configured it starts librdkafka's in-process mock cluster
//! and the in-process schema registry; the example contract's events are
//! registered, published through the typed producer in the Confluent wire
//! format, and handled by the generated handler traits. The mock cluster is
//! for this demo only; the test suite proves behaviour on a real broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use protobus_contract::DEFAULT_PARTITIONS;
use protobus_runtime::{
    ConsumerSettings, ConsumerStats, Event, EventConsumer, EventContext, EventProducer,
    HandlerError, RegistryTls, SchemaRegistry, SendOptions,
};
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::{DEFAULT_INGEST_LISTEN, DEFAULT_TIMEOUT};
use crate::commands::flags::{DeliveryArgs, KafkaArgs};
use crate::contract::shop::common::v1::Money;
use crate::contract::shop::customers::v1::CustomerRegistered;
use crate::contract::shop::orders::v1::{LineItem, OrderPaid, OrderPlaced, OrderShipped};
use crate::contract::{
    CONTRACT, ShopCustomersDispatcher, ShopCustomersHandler, ShopOrdersDispatcher,
    ShopOrdersHandler,
};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Use this Kafka instead of the in-process one.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka: Option<String>,

    /// Use this schema registry instead of the in-process one.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", hide_env_values = true)]
    pub registry: Option<String>,

    /// Address to serve the gRPC ingest service on (port 0: any free port).
    #[arg(long, env = "PROTOBUS_INGEST_LISTEN", default_value = DEFAULT_INGEST_LISTEN)]
    pub ingest_listen: SocketAddr,

    /// How many sample events to publish, then stop once all are handled (0 = until Ctrl-C).
    #[arg(long, env = "PROTOBUS_DEV_EVENTS", default_value_t = 0)]
    pub events: u64,

    /// Pause between sample events, in milliseconds.
    #[arg(long, env = "PROTOBUS_DEV_INTERVAL_MS", default_value_t = 250)]
    pub interval_ms: u64,
}

pub async fn run(args: DevArgs) -> Result<()> {
    // Held for the whole run: dropping it stops the in-process cluster.
    let mock;
    let kafka = match &args.kafka {
        Some(servers) => {
            crate::commands::kafka_client::reachable(&KafkaArgs::at(servers)).await?;
            servers.clone()
        }
        None => {
            mock = MockCluster::new(1).context("starting the in-process Kafka")?;
            // One broker: the contract's partitions, one copy each.
            for topic in CONTRACT.topics {
                let partitions = topic.settings.resolve(DEFAULT_PARTITIONS, 1).partitions;
                mock.create_topic(topic.name, partitions as i32, 1)
                    .with_context(|| format!("creating topic {}", topic.name))?;
            }
            mock.bootstrap_servers()
        }
    };
    let registry_url = match &args.registry {
        Some(url) => {
            SchemaRegistry::configured(url, &RegistryTls::default(), DEFAULT_TIMEOUT)?
                .reachable()
                .await?;
            url.clone()
        }
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding the in-process registry")?;
            let url = format!("http://{}", listener.local_addr()?);
            let app = protobus_registry::router(protobus_registry::Registry::in_memory());
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        }
    };
    let ingest_listener = tokio::net::TcpListener::bind(args.ingest_listen)
        .await
        .with_context(|| format!("binding the ingest service to {}", args.ingest_listen))?;
    let ingest_address = ingest_listener.local_addr()?;
    let mut kafka_config = rdkafka::ClientConfig::new();
    kafka_config.set("bootstrap.servers", &kafka);
    let ingest = crate::commands::ingest::service(
        DeliveryArgs::default(),
        kafka_config,
        std::sync::Arc::new(SchemaRegistry::new(&registry_url)?),
        protobus_ingest::Loaded::compiled(
            &crate::contract::CONTRACT,
            crate::contract::FILE_DESCRIPTOR_SET,
        ),
        "",
        protobus_ingest::IngestSettings::default(),
    )?;
    let (ingest_stop, ingest_stopped) = tokio::sync::oneshot::channel::<()>();
    let ingesting = tokio::spawn(protobus_ingest::serve(ingest_listener, ingest, async {
        let _ = ingest_stopped.await;
    }));
    info!(
        kafka = %kafka,
        registry = %protobus_runtime::RegistryUrl::parse(&registry_url)?.url,
        ingest = %ingest_address,
        embedded = args.kafka.is_none(),
        "Kafka, the schema registry and the gRPC ingest service are listening"
    );

    let registry = Arc::new(SchemaRegistry::new(&registry_url)?);
    let mut producer_config = ClientConfig::new();
    producer_config.set("bootstrap.servers", &kafka);
    let producer = EventProducer::new(&producer_config, registry.clone())?;

    let mut settings = ConsumerSettings::new(&kafka, "protobus-dev");
    settings.kafka.set("group.protocol", "consumer");
    let dispatcher = (
        ShopOrdersDispatcher(ExampleHandlers),
        ShopCustomersDispatcher(ExampleHandlers),
    );
    let consumer = EventConsumer::new(settings, registry.clone(), dispatcher)?;
    let stats = consumer.stats();

    let (stop_tx, stop_rx) = watch::channel(false);
    let consumer_stop = stop_rx;
    let consuming = tokio::spawn(consumer.run(async move {
        let mut stop = consumer_stop;
        let _ = stop.wait_for(|&s| s).await;
    }));

    let mut ticker = tokio::time::interval(Duration::from_millis(args.interval_ms.max(1)));
    let mut published = 0;
    let mut signal = std::pin::pin!(crate::shutdown::signal());
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = ticker.tick() => {}
        }
        if args.events != 0 && published >= args.events {
            if stats.handled.load(Ordering::Relaxed) >= args.events {
                break;
            }
            continue;
        }
        publish_sample(&producer, published).await;
        published += 1;
    }
    info!("stopping");
    // What was published is handled before the consumer stops, unless that
    // takes long (a failing handler) or a second signal comes.
    tokio::select! {
        _ = caught_up(&stats, published) => {}
        _ = tokio::time::sleep(CATCH_UP) => warn!(published, handled = stats.handled.load(Ordering::Relaxed), "stopping before every published event was handled"),
        _ = crate::shutdown::signal() => {}
    }
    let _ = ingest_stop.send(());
    ingesting.await.context("ingest task")??;
    let _ = stop_tx.send(true);
    consuming.await.context("consumer task")??;
    info!(
        published,
        handled = stats.handled.load(Ordering::Relaxed),
        unknown = stats.unknown.load(Ordering::Relaxed),
        poison = stats.poison.load(Ordering::Relaxed),
        registry_requests = registry.requests(),
        "done"
    );
    Ok(())
}

/// How long a stop waits for the consumer to handle what was published.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Resolves once the consumer has handled `published` events.
async fn caught_up(stats: &ConsumerStats, published: u64) {
    while stats.handled.load(Ordering::Relaxed) < published {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The n-th sample event: a customer registers, then each order is placed,
/// paid and shipped, one event per tick.
async fn publish_sample(producer: &EventProducer, n: u64) {
    let order = n / 4;
    let order_id = format!("order-{order:05}");
    let customer_id = format!("customer-{}", order % 7);
    let options = SendOptions {
        correlation_id: Some(order_id.clone()),
        ..SendOptions::default()
    };
    let price = |units: i64| Money {
        currency: "EUR".into(),
        minor_units: units,
    };
    let result = match n % 4 {
        0 => {
            let event = CustomerRegistered {
                customer_id: customer_id.clone(),
                email: format!("{customer_id}@example.com"),
                display_name: format!("Customer {}", order % 7),
                registered_at: Some(now()),
            };
            producer
                .send_with(&event, options)
                .await
                .map(|d| (d, CustomerRegistered::FULL_NAME))
        }
        1 => {
            let quantity = 1 + (order % 3) as u32;
            let event = OrderPlaced {
                order_id: order_id.clone(),
                customer_id,
                lines: vec![LineItem {
                    sku: format!("sku-{}", order % 11),
                    quantity,
                    unit_price: Some(price(1_999)),
                }],
                total: Some(price(1_999 * i64::from(quantity))),
                placed_at: Some(now()),
                coupon_code: String::new(),
            };
            producer
                .send_with(&event, options)
                .await
                .map(|d| (d, OrderPlaced::FULL_NAME))
        }
        2 => {
            let event = OrderPaid {
                order_id: order_id.clone(),
                payment_id: format!("pay-{order:05}"),
                amount: Some(price(1_999)),
                paid_at: Some(now()),
            };
            producer
                .send_with(&event, options)
                .await
                .map(|d| (d, OrderPaid::FULL_NAME))
        }
        _ => {
            let event = OrderShipped {
                order_id: order_id.clone(),
                carrier: "DHL".into(),
                tracking_number: format!("TRK{order:08}"),
                shipped_at: Some(now()),
            };
            producer
                .send_with(&event, options)
                .await
                .map(|d| (d, OrderShipped::FULL_NAME))
        }
    };
    match result {
        Ok((delivery, event_type)) => info!(
            event_type,
            topic = delivery.topic,
            partition = delivery.partition,
            offset = delivery.offset,
            event_id = %delivery.event_id,
            correlation_id = %order_id,
            "published"
        ),
        Err(err) => warn!(error = %err, correlation_id = %order_id, "publish failed"),
    }
}

fn now() -> prost_types::Timestamp {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: now.as_secs() as i64,
        nanos: now.subsec_nanos() as i32,
    }
}

fn money(m: &Option<Money>) -> String {
    let m = m.clone().unwrap_or_default();
    format!(
        "{}.{:02} {}",
        m.minor_units / 100,
        m.minor_units % 100,
        m.currency
    )
}

/// The example handlers: they log what they receive.
struct ExampleHandlers;

impl ShopOrdersHandler for ExampleHandlers {
    async fn order_placed(
        &self,
        event: OrderPlaced,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(partition = context.partition(), offset = context.offset(), order_id = %event.order_id,
              customer_id = %event.customer_id, lines = event.lines.len(), total = %money(&event.total),
              "handled OrderPlaced");
        Ok(())
    }

    async fn order_paid(
        &self,
        event: OrderPaid,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(partition = context.partition(), offset = context.offset(), order_id = %event.order_id,
              payment_id = %event.payment_id, amount = %money(&event.amount), "handled OrderPaid");
        Ok(())
    }

    async fn order_shipped(
        &self,
        event: OrderShipped,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(partition = context.partition(), offset = context.offset(), order_id = %event.order_id,
              carrier = %event.carrier, tracking = %event.tracking_number, "handled OrderShipped");
        Ok(())
    }
}

impl ShopCustomersHandler for ExampleHandlers {
    async fn customer_registered(
        &self,
        event: CustomerRegistered,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        info!(partition = context.partition(), offset = context.offset(), customer_id = %event.customer_id,
              email = %event.email, "handled CustomerRegistered");
        Ok(())
    }
}
