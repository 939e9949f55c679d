//! `protobus ingest`: the gRPC ingest service for this build's contract.

use std::sync::Arc;

use anyhow::{Context, Result};
use protobus::cli::IngestArgs;
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::auth::Tokens;
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::{EventProducer, SchemaRegistry};
use rdkafka::ClientConfig;

pub(crate) async fn run(args: IngestArgs) -> Result<()> {
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
    let service = service(
        args.kafka.client_config()?,
        args.registry.client()?,
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
    protobus_ingest::serve_tls(listener, service, tls, crate::dev::shutdown_signal())
        .await
        .context("serving gRPC")
}

/// The ingest service for this build's contract, writing with the Kafka
/// client settings `config` behind `topic_prefix`.
pub(crate) fn service(
    config: ClientConfig,
    registry: SchemaRegistry,
    topic_prefix: &str,
    settings: IngestSettings,
) -> Result<IngestService> {
    let registry = Arc::new(registry);
    let producer = EventProducer::new(&config, registry)?.with_topic_prefix(topic_prefix);
    Ok(IngestService::new(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        producer,
        settings,
    )?)
}
