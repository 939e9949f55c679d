//! `protobus registry`: the Confluent-compatible schema registry, its state in Kafka.

use anyhow::{Context, Result};
use protobus::cli::RegistryArgs;
use protobus_registry::basic_auth::{Users, with_basic_auth};
use protobus_registry::{Registry, router};
use tracing::info;

pub(crate) async fn run(args: RegistryArgs) -> Result<()> {
    let registry = Registry::kafka_with(&args.kafka.client_config()?, &args.topic)
        .await
        .with_context(|| {
            format!(
                "loading the registry from topic {} on {}",
                args.topic, args.kafka
            )
        })?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    info!(listen = %args.listen, kafka = %args.kafka, topic = %args.topic, "schema registry serving");
    let mut app = router(registry);
    if let Some(path) = &args.users_file {
        let users = Users::from_file(path).map_err(anyhow::Error::msg)?;
        info!(users = ?users, "HTTP basic auth required");
        app = with_basic_auth(app, users);
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            crate::dev::shutdown_signal().await;
            info!("schema registry stopping");
        })
        .await
        .context("serving the registry")
}
