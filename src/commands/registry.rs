//! `protobus registry`: the Confluent-compatible schema registry, its state
//! in a Kafka topic (or, for tests and demos, in memory).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use protobus_registry::basic_auth::{Users, with_basic_auth};
use protobus_registry::{Registry, TlsConfig, router};
use tracing::info;

use crate::cli::DEFAULT_REGISTRY_LISTEN;
use crate::commands::flags::KafkaArgs;

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Address to serve the REST API on.
    #[arg(long, env = "PROTOBUS_REGISTRY_LISTEN", default_value = DEFAULT_REGISTRY_LISTEN)]
    pub listen: SocketAddr,

    /// Where the registry's log lives: `kafka` (a compacted topic, shared by
    /// every instance) or `memory` (this process only, gone when it stops:
    /// for tests and demos).
    #[arg(long, env = "PROTOBUS_REGISTRY_STORE", value_enum, default_value_t = Store::Kafka)]
    pub store: Store,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Compacted topic that holds every registration, config change and delete.
    #[arg(long, env = "PROTOBUS_REGISTRY_TOPIC", default_value = "_schemas")]
    pub topic: String,

    /// File of `user:password` lines: require HTTP basic auth from every caller.
    #[arg(long, env = "PROTOBUS_REGISTRY_USERS_FILE")]
    pub users_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub limits: RegistryLimitsArgs,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "PROTOBUS_REGISTRY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The TLS private key (PEM).
    #[arg(long, env = "PROTOBUS_REGISTRY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "PROTOBUS_REGISTRY_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Where the registry keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    /// A compacted Kafka topic (`--topic`), in Confluent's `_schemas` format.
    Kafka,
    /// This process's memory.
    Memory,
}

/// What one request may make the registry do and hold (see "Limits on hostile
/// input" in docs/operations.md).
#[derive(Debug, Args)]
pub struct RegistryLimitsArgs {
    /// Largest schema text accepted, in bytes.
    #[arg(long, env = "PROTOBUS_REGISTRY_MAX_SCHEMA_BYTES", default_value_t = protobus_registry::Limits::default().max_schema_bytes)]
    pub max_schema_bytes: usize,

    /// Most files a schema may import through references (transitively).
    #[arg(long, env = "PROTOBUS_REGISTRY_MAX_REFERENCES", default_value_t = protobus_registry::Limits::default().max_references)]
    pub max_references: usize,

    /// Largest compiled schema kept (imports included), in bytes.
    #[arg(long, env = "PROTOBUS_REGISTRY_MAX_COMPILED_BYTES", default_value_t = protobus_registry::Limits::default().max_compiled_bytes)]
    pub max_compiled_bytes: usize,

    /// Most bytes all registered schemas may take, compiled.
    #[arg(long, env = "PROTOBUS_REGISTRY_MAX_TOTAL_BYTES", default_value_t = protobus_registry::Limits::default().max_total_bytes)]
    pub max_total_bytes: usize,

    /// Longest a request waits for a compile or compatibility check (e.g. `10s`).
    #[arg(long, env = "PROTOBUS_REGISTRY_WORK_TIMEOUT", default_value_t = protobus_registry::Limits::default().work_timeout.into())]
    pub work_timeout: humantime::Duration,

    /// Compiles and compatibility checks at once (default: one per core).
    #[arg(long, env = "PROTOBUS_REGISTRY_WORKERS")]
    pub workers: Option<usize>,
}

impl RegistryLimitsArgs {
    /// The registry's limits.
    pub fn limits(&self) -> protobus_registry::Limits {
        let mut limits = protobus_registry::Limits::default();
        limits.max_schema_bytes = self.max_schema_bytes;
        limits.max_references = self.max_references;
        limits.max_compiled_bytes = self.max_compiled_bytes;
        limits.max_total_bytes = self.max_total_bytes;
        limits.work_timeout = self.work_timeout.into();
        if let Some(workers) = self.workers {
            limits.workers = workers;
        }
        limits
    }
}

pub async fn run(args: RegistryArgs) -> Result<()> {
    // Certificates first: a wrong path should fail before Kafka is read.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let registry = match args.store {
        Store::Memory => Registry::in_memory_with(args.limits.limits()),
        Store::Kafka => {
            crate::commands::kafka_client::reachable(&args.kafka).await?;
            Registry::kafka_with(
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
            })?
        }
    };
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    info!(
        listen = %args.listen,
        store = ?args.store,
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
        crate::shutdown::signal().await;
        info!("schema registry stopping");
    })
    .await
    .context("serving the registry")
}
