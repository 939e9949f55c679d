//! `protobus ingest`: the gRPC ingest service for this build's contract.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use protobus_ingest::auth::Tokens;
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::SchemaRegistry;
use rdkafka::ClientConfig;

use crate::cli::DEFAULT_INGEST_LISTEN;
use crate::commands::flags::{DeliveryArgs, KafkaArgs, RegistrationArgs, RegistryClientArgs};
use crate::contract::{CONTRACT, FILE_DESCRIPTOR_SET};

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub delivery: DeliveryArgs,

    #[command(flatten)]
    pub registration: RegistrationArgs,

    /// Address to serve gRPC on.
    #[arg(long, env = "PROTOBUS_INGEST_LISTEN", default_value = DEFAULT_INGEST_LISTEN)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,

    /// Prefix for every topic written (e.g. `staging.`).
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Largest event payload accepted, in bytes.
    #[arg(long, env = "PROTOBUS_INGEST_MAX_EVENT_BYTES", default_value_t = 1024 * 1024)]
    pub max_event_bytes: usize,

    /// Largest request (one batch) accepted, in bytes.
    #[arg(long, env = "PROTOBUS_INGEST_MAX_REQUEST_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Request bytes in flight before calls are refused (unary) or streams paused.
    #[arg(long, env = "PROTOBUS_INGEST_MAX_IN_FLIGHT_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_in_flight_bytes: usize,

    /// How long a retry with the same idempotency key returns the first result, in seconds.
    #[arg(
        long,
        env = "PROTOBUS_INGEST_IDEMPOTENCY_WINDOW_SECS",
        default_value_t = 600
    )]
    pub idempotency_window_secs: u64,

    /// Most bytes the remembered idempotency results may take; the oldest go first.
    #[arg(long, env = "PROTOBUS_INGEST_IDEMPOTENCY_MAX_BYTES", default_value_t = protobus_ingest::IngestSettings::default().idempotency_max_bytes)]
    pub idempotency_max_bytes: usize,

    /// Longest idempotency key accepted, in bytes.
    #[arg(long, env = "PROTOBUS_INGEST_MAX_IDEMPOTENCY_KEY_BYTES", default_value_t = protobus_ingest::IngestSettings::default().max_idempotency_key_bytes)]
    pub max_idempotency_key_bytes: usize,

    /// JSON file of bearer tokens and the topics each may publish to; without
    /// it, no authentication (see docs/operations.md, Security).
    #[arg(long, env = "PROTOBUS_INGEST_TOKENS_FILE")]
    pub tokens_file: Option<std::path::PathBuf>,

    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "PROTOBUS_INGEST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The TLS private key (PEM).
    #[arg(long, env = "PROTOBUS_INGEST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "PROTOBUS_INGEST_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,
}

pub async fn run(args: IngestArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let settings = IngestSettings {
        max_event_bytes: args.max_event_bytes,
        max_request_bytes: args.max_request_bytes,
        max_in_flight_bytes: args.max_in_flight_bytes,
        idempotency_window: std::time::Duration::from_secs(args.idempotency_window_secs),
        idempotency_max_bytes: args.idempotency_max_bytes,
        max_idempotency_key_bytes: args.max_idempotency_key_bytes,
        tokens: args
            .tokens_file
            .as_deref()
            .map(|path| Tokens::from_file(path, &CONTRACT))
            .transpose()?
            .map(Arc::new),
        ..IngestSettings::default()
    };
    crate::commands::kafka_client::reachable(&args.kafka).await?;
    let service = service(
        args.delivery,
        args.kafka.client_config()?,
        args.registry
            .reachable_client()
            .await?
            .with_registration(args.registration.mode()),
        &args.topic_prefix,
        settings,
    )?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(protobus_ingest::tls(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    protobus_ingest::serve_tls(listener, service, tls, crate::shutdown::signal())
        .await
        .context("serving gRPC")
}

/// The ingest service for this build's contract, writing with the Kafka
/// client settings `config` behind `topic_prefix`.
pub(crate) fn service(
    delivery: DeliveryArgs,
    config: ClientConfig,
    registry: SchemaRegistry,
    topic_prefix: &str,
    settings: IngestSettings,
) -> Result<IngestService> {
    let registry = Arc::new(registry);
    let producer = delivery
        .producer(&config, registry)?
        .with_topic_prefix(topic_prefix);
    Ok(IngestService::new(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        producer,
        settings,
    )?)
}
