//! The platform through the broker's SASL/SCRAM listener (`scripts/kafka.sh`
//! opens one on KAFKA_PORT+2 with a SCRAM-SHA-512 user): the typed producer
//! and consumer with librdkafka's security settings passed through, and the
//! CLI with a settings file. A wrong password is refused, and no password
//! appears in anything the CLI prints.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, EventProducer, HandlerError,
};
use rdkafka::ClientConfig;

/// The SASL listener: `KAFKA_SASL_BOOTSTRAP_SERVERS`, or the test broker's port + 2.
fn sasl_bootstrap() -> String {
    std::env::var("KAFKA_SASL_BOOTSTRAP_SERVERS").unwrap_or_else(|_| {
        let plain = common::bootstrap_servers();
        let (host, port) = plain.rsplit_once(':').expect("host:port");
        format!("{host}:{}", port.parse::<u16>().expect("a port") + 2)
    })
}

fn user() -> String {
    std::env::var("KAFKA_SCRAM_USER").unwrap_or_else(|_| "protobus".into())
}

fn password() -> String {
    std::env::var("KAFKA_SCRAM_PASSWORD").unwrap_or_else(|_| "protobus-scram-secret".into())
}

fn scram(password: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", sasl_bootstrap())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", user())
        .set("sasl.password", password);
    config
}

#[derive(Clone, Default)]
struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ShopOrdersHandler for Count {
    async fn order_placed(&self, _: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    async fn order_paid(&self, _: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_producer_and_consumer_work_through_scram() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("sasl"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 2)
        .await;
    let schemas = kafka.schema_registry().await;

    let producer = EventProducer::new(&scram(&password()), schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    for i in 0..3 {
        let order = OrderPlaced {
            order_id: format!("o-{i}"),
            ..OrderPlaced::default()
        };
        producer.send(&order).await.expect("sent over SASL/SCRAM");
    }

    let count = Count::default();
    let mut settings = ConsumerSettings::new(&sasl_bootstrap(), &common::unique_name("sasl"));
    settings.kafka = scram(&password());
    settings.dead_letter_producer = Some(scram(&password()));
    settings.topic_prefix = prefix.clone();
    let consumer =
        EventConsumer::new(settings, schemas, ShopOrdersDispatcher(count.clone())).unwrap();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.0.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        assert!(
            Instant::now() < deadline,
            "events not consumed over SASL/SCRAM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
}

fn topics_with(settings_file: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["topics", "--format", "json", "--all"])
        .args(["--kafka", &sasl_bootstrap()])
        .args(["--kafka-config", "security.protocol=SASL_PLAINTEXT"])
        .arg("--kafka-config-file")
        .arg(settings_file)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "debug")
        .output()
        .expect("run protobus topics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_kafka_security_settings_from_a_file() {
    let kafka = common::kafka().await;
    let topic = common::unique_name("sasl-cli");
    kafka.create_topic(&topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("client.properties");
    std::fs::write(
        &good,
        format!(
            "# SCRAM for the test broker\nsasl.mechanism=SCRAM-SHA-512\nsasl.username={}\nsasl.password={}\n",
            user(),
            password()
        ),
    )
    .unwrap();
    let listed = topics_with(&good);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        stdout.contains(&format!("\"topic\":\"{topic}\"")),
        "{stdout}"
    );

    let wrong_password = "not-the-password-4711";
    let bad = dir.path().join("wrong.properties");
    std::fs::write(
        &bad,
        format!(
            "sasl.mechanism=SCRAM-SHA-512\nsasl.username={}\nsasl.password={wrong_password}\n",
            user()
        ),
    )
    .unwrap();
    let refused = topics_with(&bad);
    assert!(!refused.status.success(), "a wrong password was accepted");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.to_lowercase().contains("auth"), "{stderr}");
    for output in [&listed, &refused] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains(&password()), "the password was printed");
        assert!(!all.contains(wrong_password), "the password was printed");
    }

    let malformed = dir.path().join("malformed.properties");
    std::fs::write(&malformed, "sasl.password\n").unwrap();
    let refused = topics_with(&malformed);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("line 1: expected `name=value`"), "{stderr}");
}
