//! `protobus registry`: the Confluent-compatible schema registry, its state in Kafka.

use anyhow::{Context, Result};
use protobus::cli::RegistryArgs;
use protobus_registry::basic_auth::{Users, with_basic_auth};
use protobus_registry::{Registry, TlsConfig, router};
use tracing::info;

pub(crate) async fn run(args: RegistryArgs) -> Result<()> {
    // Certificates first: a wrong path should fail before Kafka is read.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let registry = Registry::kafka_with(
        &args.kafka.client_config()?,
        &args.topic,
        args.limits.limits(),
    )
    .await
    .with_context(|| {
        format!(
            "loading the registry from topic {} on {}",
            args.topic, args.kafka
        )
    })?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    info!(
        listen = %args.listen,
        kafka = %args.kafka,
        topic = %args.topic,
        tls = tls.is_some(),
        client_certificates = args.tls_client_ca.is_some(),
        "schema registry serving"
    );
    let mut app = router(registry);
    if let Some(path) = &args.users_file {
        let users = Users::from_file(path).map_err(anyhow::Error::msg)?;
        info!(users = ?users, "HTTP basic auth required");
        app = with_basic_auth(app, users);
    }
    protobus_registry::serve(listener, app, tls, async {
        crate::dev::shutdown_signal().await;
        info!("schema registry stopping");
    })
    .await
    .context("serving the registry")
}
