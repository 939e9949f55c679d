//! `protobus ingest`: the gRPC ingest service, for this build's contract or
//! one loaded (and reloaded) while it runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use protobus_ingest::auth::Tokens;
use protobus_ingest::{ContractSource, IngestService, IngestSettings, Loaded};
use protobus_runtime::SchemaRegistry;
use rdkafka::ClientConfig;
use tracing::{debug, error, info};

use crate::cli::DEFAULT_INGEST_LISTEN;
use crate::commands::flags::{DeliveryArgs, KafkaArgs, RegistrationArgs, RegistryClientArgs};
use crate::contract::{CONTRACT, FILE_DESCRIPTOR_SET};

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub delivery: DeliveryArgs,

    #[command(flatten)]
    pub registration: RegistrationArgs,

    #[command(flatten)]
    pub contract: ContractArgs,

    /// Reload a loaded contract this often, in seconds (0: only on SIGHUP).
    #[arg(long, env = "PROTOBUS_INGEST_RELOAD_SECS", default_value_t = 0)]
    pub reload_secs: u64,

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

/// Where the service's contract comes from (one of them); this build's when
/// none is given.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ContractArgs {
    /// Serve the contract of the `.proto` files under DIR (its import root),
    /// compiled at start and on every reload, instead of this build's.
    #[arg(
        long = "contract",
        value_name = "DIR",
        env = "PROTOBUS_INGEST_CONTRACT"
    )]
    pub sources: Option<PathBuf>,

    /// Serve the contract of an encoded FileDescriptorSet (`protobus contract
    /// export`, `buf build -o`, `protoc -o`); it has no sources, so it needs
    /// `--registration latest`.
    #[arg(long, value_name = "FILE", env = "PROTOBUS_INGEST_DESCRIPTOR_SET")]
    pub descriptor_set: Option<PathBuf>,

    /// Serve the contract the registry holds: the latest version of every
    /// Protobuf subject that declares events, with the files it references.
    #[arg(long, env = "PROTOBUS_INGEST_CONTRACT_FROM_REGISTRY")]
    pub contract_from_registry: bool,
}

impl ContractArgs {
    fn source(&self, registry: &Arc<SchemaRegistry>) -> ContractSource {
        if let Some(dir) = &self.sources {
            ContractSource::Sources(dir.clone())
        } else if let Some(file) = &self.descriptor_set {
            ContractSource::DescriptorSet(file.clone())
        } else if self.contract_from_registry {
            ContractSource::Registry(Arc::clone(registry))
        } else {
            ContractSource::Compiled {
                contract: &CONTRACT,
                descriptors: FILE_DESCRIPTOR_SET,
            }
        }
    }
}

pub async fn run(args: IngestArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    crate::commands::kafka_client::reachable(&args.kafka).await?;
    let registry = Arc::new(
        args.registry
            .reachable_client()
            .await?
            .with_registration(args.registration.mode()),
    );
    let source = args.contract.source(&registry);
    let loaded = source.load().await.context("loading the contract")?;
    let contract = loaded.contract()?;
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
            .map(|path| Tokens::from_file(path, contract))
            .transpose()?
            .map(Arc::new),
        ..IngestSettings::default()
    };
    let service = service(
        args.delivery,
        args.kafka.client_config()?,
        registry,
        loaded,
        &args.topic_prefix,
        settings,
    )?;
    info!(events = ?service.event_types(), "serving the contract");
    if !matches!(source, ContractSource::Compiled { .. }) {
        let interval = Duration::from_secs(args.reload_secs);
        tokio::spawn(keep_reloading(source, service.clone(), interval));
    }
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

/// The ingest service for `contract`, writing with the Kafka client
/// settings `config` behind `topic_prefix`.
pub(crate) fn service(
    delivery: DeliveryArgs,
    config: ClientConfig,
    registry: Arc<SchemaRegistry>,
    contract: Loaded,
    topic_prefix: &str,
    settings: IngestSettings,
) -> Result<IngestService> {
    let producer = delivery
        .producer(&config, registry)?
        .with_topic_prefix(topic_prefix);
    Ok(IngestService::with_contract(contract, producer, settings)?)
}

/// Loads the contract again on SIGHUP and every `interval` (unless zero),
/// and serves it when it changed. A contract that does not load or build is
/// logged, and the one served stays.
async fn keep_reloading(source: ContractSource, service: IngestService, interval: Duration) {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())
        .inspect_err(|err| error!(%err, "cannot listen for SIGHUP; reloading on the interval only"))
        .ok();
    let mut ticks = (!interval.is_zero()).then(|| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    // Either may be absent: waiting on it then never ends.
    async fn hangup_of(hangup: &mut Option<Signal>) {
        match hangup {
            Some(hangup) => drop(hangup.recv().await),
            None => std::future::pending().await,
        }
    }
    async fn tick_of(ticks: &mut Option<tokio::time::Interval>) {
        match ticks {
            Some(ticks) => drop(ticks.tick().await),
            None => std::future::pending().await,
        }
    }
    loop {
        tokio::select! {
            () = hangup_of(&mut hangup) => info!("SIGHUP: reloading the contract"),
            () = tick_of(&mut ticks) => {}
        }
        reload(&source, &service).await;
    }
}

async fn reload(source: &ContractSource, service: &IngestService) {
    let replaced = match source.load().await {
        // Building the event table is CPU work: off the async workers.
        Ok(loaded) => {
            let service = service.clone();
            tokio::task::spawn_blocking(move || service.replace_contract(loaded))
                .await
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
        }
        Err(err) => Err(err),
    };
    match replaced {
        Ok(true) => info!(events = ?service.event_types(), "contract reloaded"),
        Ok(false) => debug!("contract unchanged"),
        Err(err) => error!(%err, "the contract did not reload; the one served stays"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::Cli;

    #[test]
    fn one_contract_source_at_most_and_a_reload_interval_with_it() {
        let parsed = Cli::try_parse_from([
            "protobus",
            "ingest",
            "--contract",
            "proto",
            "--reload-secs",
            "5",
        ]);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
        let both = Cli::try_parse_from([
            "protobus",
            "ingest",
            "--contract",
            "proto",
            "--descriptor-set",
            "contract.binpb",
        ]);
        assert!(both.is_err(), "two contract sources were accepted");
    }
}
