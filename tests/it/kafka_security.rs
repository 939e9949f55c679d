//! The platform through the test broker's secured listeners
//! (`scripts/kafka.sh` opens them next to the plain one): SASL/SCRAM on
//! KAFKA_PORT+2, TLS with client certificates on +3 and SCRAM over TLS on +4.
//! The typed producer and consumer pass librdkafka's security settings
//! through; the CLI takes them from a settings file. A wrong password, a
//! missing client certificate or an untrusted broker certificate is refused,
//! and no secret appears in anything the CLI prints.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, EventProducer, HandlerError,
};
use rdkafka::ClientConfig;

/// A listener of the test broker: `variable` when set, else the plain port + `offset`.
fn listener(variable: &str, offset: u16) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        let plain = common::bootstrap_servers();
        let (host, port) = plain.rsplit_once(':').expect("host:port");
        format!("{host}:{}", port.parse::<u16>().expect("a port") + offset)
    })
}

fn sasl_bootstrap() -> String {
    listener("KAFKA_SASL_BOOTSTRAP_SERVERS", 2)
}

fn mutual_tls_bootstrap() -> String {
    listener("KAFKA_SSL_BOOTSTRAP_SERVERS", 3)
}

fn sasl_ssl_bootstrap() -> String {
    listener("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS", 4)
}

/// The CA, client keystore and its password that `scripts/kafka.sh` made:
/// `KAFKA_TLS_DIR`, or `tls/` in the script's state directory.
fn tls_file(name: &str) -> PathBuf {
    let dir = std::env::var("KAFKA_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let port = common::bootstrap_servers()
                .rsplit_once(':')
                .map(|(_, port)| port.to_owned())
                .expect("host:port");
            let state = std::env::var("PROTOBUS_KAFKA_STATE")
                .unwrap_or_else(|_| format!("/tmp/protobus-kafka-{port}"));
            PathBuf::from(state).join("tls")
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: start the broker with scripts/kafka.sh (or set KAFKA_TLS_DIR)",
        path.display()
    );
    path
}

fn keystore_password() -> String {
    std::fs::read_to_string(tls_file("password")).expect("the keystore password")
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

/// TLS with a client certificate (a PKCS#12 keystore, as Java clients use).
fn mutual_tls() -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", mutual_tls_bootstrap())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", tls_file("ca.pem").to_str().unwrap())
        .set(
            "ssl.keystore.location",
            tls_file("client.p12").to_str().unwrap(),
        )
        .set("ssl.keystore.password", keystore_password());
    config
}

fn scram_over_tls() -> ClientConfig {
    let mut config = scram(&password());
    config
        .set("bootstrap.servers", sasl_ssl_bootstrap())
        .set("security.protocol", "SASL_SSL")
        .set("ssl.ca.location", tls_file("ca.pem").to_str().unwrap());
    config
}

/// Three events through the typed producer and consumer, every client
/// (dead-letter producer too) with the settings `secured` gives.
async fn round_trip(secured: fn() -> ClientConfig, what: &str) {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("secured"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 2)
        .await;
    let schemas = kafka.schema_registry().await;

    let producer = EventProducer::new(&secured(), schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    for i in 0..3 {
        let order = OrderPlaced {
            order_id: format!("o-{i}"),
            ..OrderPlaced::default()
        };
        producer
            .send(&order)
            .await
            .unwrap_or_else(|e| panic!("not sent over {what}: {e}"));
    }

    let count = common::Count::default();
    let config = secured();
    let bootstrap = config.get("bootstrap.servers").unwrap().to_owned();
    let mut settings = ConsumerSettings::new(&bootstrap, &common::unique_name("secured"));
    settings.kafka = config;
    settings.dead_letter_producer = Some(secured());
    settings.topic_prefix = prefix.clone();
    let consumer =
        EventConsumer::new(settings, schemas, ShopOrdersDispatcher(count.clone())).unwrap();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.0.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        assert!(Instant::now() < deadline, "events not consumed over {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_producer_and_consumer_work_through_scram() {
    round_trip(|| scram(&password()), "SASL/SCRAM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_producer_and_consumer_work_with_a_client_certificate() {
    round_trip(mutual_tls, "mutual TLS").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_producer_and_consumer_work_through_scram_over_tls() {
    round_trip(scram_over_tls, "SASL_SSL").await;
}

/// `protobus topics` at `bootstrap` with `security.protocol` from a flag
/// and the rest from a settings file.
fn topics_with(
    bootstrap: &str,
    protocol: &str,
    settings_file: &std::path::Path,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["topics", "--format", "json", "--all"])
        .args(["--kafka", bootstrap])
        .args(["--kafka-config", &format!("security.protocol={protocol}")])
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
    let listed = topics_with(&sasl_bootstrap(), "SASL_PLAINTEXT", &good);
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
    let refused = topics_with(&sasl_bootstrap(), "SASL_PLAINTEXT", &bad);
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
    let refused = topics_with(&sasl_bootstrap(), "SASL_PLAINTEXT", &malformed);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("line 1: expected `name=value`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_connects_over_tls_and_names_what_tls_refused() {
    let kafka = common::kafka().await;
    let topic = common::unique_name("tls-cli");
    kafka.create_topic(&topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = tls_file("ca.pem");
    let keystore = tls_file("client.p12");
    let secret = keystore_password();
    let settings = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let with_certificate = settings(
        "client.properties",
        format!(
            "ssl.ca.location={}\nssl.keystore.location={}\nssl.keystore.password={secret}\n",
            ca.display(),
            keystore.display()
        ),
    );
    let listed = topics_with(&mutual_tls_bootstrap(), "SSL", &with_certificate);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        stdout.contains(&format!("\"topic\":\"{topic}\"")),
        "{stdout}"
    );

    // The listener wants a client certificate.
    let without_certificate = settings(
        "no-certificate.properties",
        format!("ssl.ca.location={}\n", ca.display()),
    );
    let refused = topics_with(&mutual_tls_bootstrap(), "SSL", &without_certificate);
    assert!(
        !refused.status.success(),
        "a client without a certificate got in"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(stderr.contains("ssl"), "{stderr}");

    // The system's CAs do not vouch for the test broker.
    let untrusting = settings(
        "untrusting.properties",
        format!(
            "sasl.mechanism=SCRAM-SHA-512\nsasl.username={}\nsasl.password={}\n",
            user(),
            password()
        ),
    );
    let untrusted = topics_with(&sasl_ssl_bootstrap(), "SASL_SSL", &untrusting);
    assert!(
        !untrusted.status.success(),
        "a broker certificate from an unknown CA was accepted"
    );
    let stderr = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");

    for output in [&listed, &refused, &untrusted] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains(&secret), "the keystore password was printed");
        assert!(!all.contains(&password()), "the SCRAM password was printed");
    }
}

/// Refuses every order for good, so each goes to the dead-letter topic.
#[derive(Clone)]
struct Refuse;

impl ShopOrdersHandler for Refuse {
    async fn order_placed(&self, _: OrderPlaced, _: &EventContext<'_>) -> Result<(), HandlerError> {
        Err(HandlerError::permanent("refused"))
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

/// With no dead-letter producer of its own, a consumer's dead letters go
/// through the consumer's connection and security settings (here SCRAM over
/// TLS): a producer with only its `bootstrap.servers` could never write them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_go_through_the_consumers_own_security_settings() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("secured-dlq"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 1).await;
    kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    let schemas = kafka.schema_registry().await;
    let producer = EventProducer::new(&scram_over_tls(), schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    let order = OrderPlaced {
        order_id: "refused".into(),
        ..OrderPlaced::default()
    };
    producer.send(&order).await.expect("send over SASL_SSL");

    let config = scram_over_tls();
    let bootstrap = config.get("bootstrap.servers").unwrap().to_owned();
    let mut settings = ConsumerSettings::new(&bootstrap, &common::unique_name("secured-dlq"));
    settings.kafka = config;
    settings.topic_prefix = prefix.clone();
    assert!(settings.dead_letter_producer.is_none());
    let consumer = EventConsumer::new(settings, schemas, ShopOrdersDispatcher(Refuse)).unwrap();
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats
        .dead_lettered
        .load(std::sync::atomic::Ordering::Relaxed)
        < 1
    {
        assert!(
            Instant::now() < deadline,
            "the dead letter was never written over SASL_SSL: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    let letters = kafka.records(&format!("{topic}.dlq"));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0.as_deref(), Some(&b"refused"[..]));
}

/// A consumer the broker will not authenticate does not wait for ever:
/// `run` ends with `ConsumerFailed`, naming the authentication failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_refused_authentication_ends_run_with_the_cause() {
    let kafka = common::kafka().await;
    let schemas = kafka.schema_registry().await;
    let config = scram("not-the-password");
    let bootstrap = config.get("bootstrap.servers").unwrap().to_owned();
    let mut settings = ConsumerSettings::new(&bootstrap, &common::unique_name("refused"));
    settings.kafka = config;
    settings.close_timeout = Duration::from_secs(5);
    let consumer = EventConsumer::new(
        settings,
        schemas,
        ShopOrdersDispatcher(common::Count::default()),
    )
    .unwrap();
    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        consumer.run(std::future::pending::<()>()),
    )
    .await
    .expect("run ends by itself when the broker refuses the credentials");
    let err = ended.expect_err("a refused consumer is an error");
    assert!(
        matches!(err.kind(), protobus_runtime::ErrorKind::ConsumerFailed(_)),
        "{err}"
    );
    assert!(
        err.to_string().to_lowercase().contains("authentication"),
        "{err}"
    );
}
