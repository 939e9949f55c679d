//! Command-line interface of the `protobus` binary. Every flag has an
//! environment-variable fallback, so that the same settings work from a shell,
//! from `docker-compose.yml` and from CI.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use protobus_runtime::{RegistryTls, SchemaRegistry};

/// Default address of a Kafka broker, shared by the binary, the scripts and the tests.
pub const DEFAULT_KAFKA: &str = "127.0.0.1:9092";
/// Default listen address of the schema registry (the Confluent registry's port).
pub const DEFAULT_REGISTRY_LISTEN: &str = "127.0.0.1:8081";
/// Default URL of the schema registry that clients use.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:8081";
/// Default listen address of the gRPC ingest service (the usual gRPC port).
pub const DEFAULT_INGEST_LISTEN: &str = "127.0.0.1:50051";

#[derive(Debug, Parser)]
#[command(name = "protobus", version, about, long_about = None)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, env = "PROTOBUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. `0.0.0.0:9464`).
    #[arg(long, global = true, env = "PROTOBUS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Export spans to this OTLP/gRPC collector (e.g. `http://127.0.0.1:4317`).
    #[cfg(feature = "otel")]
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The service name exported spans carry.
    #[cfg(feature = "otel")]
    #[arg(
        long,
        global = true,
        env = "OTEL_SERVICE_NAME",
        default_value = "protobus"
    )]
    pub otel_service_name: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// See events flow with nothing installed: an in-process Kafka, sample events, handlers.
    Dev(DevArgs),
    /// Serve the Confluent-compatible schema registry.
    Registry(RegistryArgs),
    /// Serve the gRPC ingest service that publishes events to Kafka.
    Ingest(IngestArgs),
    /// Check, register and compare contracts.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Inspect and replay dead-lettered events.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// How far a consumer group is behind: committed offset, end offset and lag per partition.
    Lag(LagArgs),
    /// Print a topic's records decoded to proto3 JSON, with key, headers and position.
    Tail(TailArgs),
    /// Publish events given as proto3 JSON: one as an argument, or NDJSON on stdin.
    Publish(PublishArgs),
    /// List topics with the event types this build's contract writes to them.
    Topics(TopicsArgs),
}

/// Where Kafka is and how to reach it; librdkafka settings pass through as
/// they are (`security.protocol`, `sasl.*`, `ssl.*`…), as Kafka's own tools do.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long = "kafka", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = DEFAULT_KAFKA)]
    pub bootstrap: String,

    /// A librdkafka setting `name=value` for every Kafka client (repeatable;
    /// the variable takes a comma-separated list). Secrets belong in --kafka-config-file.
    #[arg(long = "kafka-config", env = "PROTOBUS_KAFKA_CONFIG", value_delimiter = ',', value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,

    /// A file of librdkafka settings, `name=value` per line (`#` comments),
    /// such as `sasl.password`.
    #[arg(long = "kafka-config-file", env = "PROTOBUS_KAFKA_CONFIG_FILE")]
    pub settings_file: Option<std::path::PathBuf>,
}

impl KafkaArgs {
    /// The client settings: bootstrap servers, then the file, then each --kafka-config.
    pub fn client_config(&self) -> anyhow::Result<rdkafka::ClientConfig> {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        if let Some(path) = &self.settings_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading Kafka settings from {}: {e}", path.display())
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, value) = parse_setting(line)
                    .map_err(|e| anyhow::anyhow!("{}, line {}: {e}", path.display(), number + 1))?;
                config.set(name, value);
            }
        }
        for (name, value) in &self.settings {
            config.set(name, value);
        }
        Ok(config)
    }
}

impl std::fmt::Display for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.bootstrap)
    }
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        // The value is left out: it may be a secret.
        _ => Err("expected `name=value`".to_owned()),
    }
}

/// How to reach a Confluent-compatible schema registry (Confluent's clients
/// call these `schema.registry.url` and `schema.registry.ssl.*`).
#[derive(Debug, Clone, Args)]
pub struct RegistryClientArgs {
    /// URL of a Confluent-compatible schema registry (`https://user:password@host` for TLS and basic auth).
    #[arg(long = "registry", env = "SCHEMA_REGISTRY_URL", hide_env_values = true, default_value = DEFAULT_REGISTRY_URL)]
    pub url: String,

    /// CA certificates (PEM) to trust for an https:// registry, besides the system's.
    #[arg(long = "registry-ca-file", env = "PROTOBUS_REGISTRY_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate chain (PEM) for a registry that requires one; needs --registry-key-file.
    #[arg(
        long = "registry-cert-file",
        env = "PROTOBUS_REGISTRY_CERT_FILE",
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(
        long = "registry-key-file",
        env = "PROTOBUS_REGISTRY_KEY_FILE",
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,
}

impl RegistryClientArgs {
    /// The TLS settings these flags give.
    pub fn tls(&self) -> RegistryTls {
        RegistryTls {
            ca_file: self.ca_file.clone(),
            identity: self.cert_file.clone().zip(self.key_file.clone()),
        }
    }

    /// A runtime client of the registry.
    pub fn client(&self) -> anyhow::Result<SchemaRegistry> {
        Ok(SchemaRegistry::with_tls(&self.url, &self.tls())?)
    }
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The topic to read.
    pub topic: String,

    /// Start at each partition's first retained record (default: only new records).
    #[arg(long, conflicts_with = "offset", env = "PROTOBUS_TAIL_FROM_BEGINNING")]
    pub from_beginning: bool,

    /// Read only this partition.
    #[arg(long, env = "PROTOBUS_TAIL_PARTITION")]
    pub partition: Option<i32>,

    /// Start at this offset (of each partition read); negative counts back from the end.
    #[arg(long, allow_hyphen_values = true, env = "PROTOBUS_TAIL_OFFSET")]
    pub offset: Option<i64>,

    /// Stop after this many records (default: follow until Ctrl-C).
    #[arg(long, env = "PROTOBUS_TAIL_LIMIT")]
    pub limit: Option<usize>,

    /// `json`: one object per line; `pretty`: a heading and indented JSON per record.
    #[arg(long, value_enum, default_value_t = TailFormat::Json, env = "PROTOBUS_TAIL_FORMAT")]
    pub format: TailFormat,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailFormat {
    Json,
    Pretty,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic: the event type's contract topic, behind any prefix (`staging.shop.orders`).
    pub topic: String,

    /// The event type, fully qualified (`shop.orders.v1.OrderPlaced`) or by its message name.
    #[arg(long = "type", env = "PROTOBUS_PUBLISH_TYPE")]
    pub event_type: String,

    /// One event in proto3 JSON; without it, one event per line is read from stdin.
    pub json: Option<String>,

    /// Kafka key for every event (default: the event's key field).
    #[arg(long, env = "PROTOBUS_PUBLISH_KEY")]
    pub key: Option<String>,

    /// A header `name=value` for every event (repeatable).
    #[arg(long = "header", value_parser = parse_header, env = "PROTOBUS_PUBLISH_HEADERS", value_delimiter = ',')]
    pub headers: Vec<(String, String)>,

    /// Correlation id for every event.
    #[arg(long, env = "PROTOBUS_CORRELATION_ID")]
    pub correlation_id: Option<String>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not `name=value`")),
    }
}

#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// Prefix of the contract topics.
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Also list topics outside this build's contract (internal `_`/`__` topics never).
    #[arg(long, env = "PROTOBUS_TOPICS_ALL")]
    pub all: bool,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// `human`: a table; `json`: one object per topic and line.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_TOPICS_FORMAT")]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct LagArgs {
    /// The consumer group.
    #[arg(long, env = "PROTOBUS_GROUP")]
    pub group: String,

    /// A topic to report (repeatable); default: this build's contract topics
    /// that exist, behind --topic-prefix.
    #[arg(long = "topic", env = "PROTOBUS_LAG_TOPICS", value_delimiter = ',')]
    pub topics: Vec<String>,

    /// Prefix of the contract topics (as the producer's and consumer's topic prefix).
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// `human`: a table; `json`: one object per partition and line.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_LAG_FORMAT")]
    pub format: ReportFormat,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Print the dead-lettered records of a topic, decoded, one JSON object per line.
    List(DlqArgs),
    /// Send dead-lettered records back to their original topic.
    Replay(DlqReplayArgs),
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    /// The original topic (its dead-letter topic is TOPIC.dlq).
    #[arg(long, env = "PROTOBUS_DLQ_TOPIC")]
    pub topic: String,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,

    /// Only records at or after this offset of the dead-letter topic.
    #[arg(long, env = "PROTOBUS_DLQ_FROM_OFFSET")]
    pub from_offset: Option<i64>,

    /// Only records before this offset of the dead-letter topic.
    #[arg(long, env = "PROTOBUS_DLQ_TO_OFFSET")]
    pub to_offset: Option<i64>,

    /// Only records whose error contains this text.
    #[arg(long, env = "PROTOBUS_DLQ_ERROR")]
    pub error: Option<String>,

    /// At most this many records.
    #[arg(long, env = "PROTOBUS_DLQ_LIMIT")]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DlqReplayArgs {
    #[command(flatten)]
    pub select: DlqArgs,

    /// Show what would be replayed without writing anything.
    #[arg(long, env = "PROTOBUS_DLQ_DRY_RUN")]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Compare the contract in a directory with what a registry has; non-zero exit when it breaks readers.
    Check(SchemaCheckArgs),
    /// Register the contract this binary was built with (idempotent).
    Register(SchemaRegisterArgs),
    /// Compare two contract directories: what in NEW breaks readers of OLD.
    Diff(SchemaDiffArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct SchemaCheckArgs {
    /// The contract directory.
    #[arg(long, env = "PROTOBUS_PROTO_DIR", default_value = "proto")]
    pub proto: std::path::PathBuf,

    #[command(flatten)]
    pub registry: RegistryClientArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_SCHEMA_FORMAT")]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct SchemaRegisterArgs {
    #[command(flatten)]
    pub registry: RegistryClientArgs,
}

#[derive(Debug, Args)]
pub struct SchemaDiffArgs {
    /// The old contract directory (what readers were built with).
    pub old: std::path::PathBuf,
    /// The new contract directory.
    pub new: std::path::PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_SCHEMA_FORMAT")]
    pub format: ReportFormat,
}

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

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Address to serve the REST API on.
    #[arg(long, env = "PROTOBUS_REGISTRY_LISTEN", default_value = DEFAULT_REGISTRY_LISTEN)]
    pub listen: SocketAddr,

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

/// What one request may make the registry do and hold (see the README's
/// Security section).
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

#[derive(Debug, Args)]
pub struct IngestArgs {
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
    /// it, no authentication (see the README's Security section).
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag can come from the environment (compose files, CI, shells).
    #[test]
    fn every_flag_has_an_environment_variable() {
        fn missing(command: &clap::Command, path: &str, out: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !arg.is_positional() && !builtin && arg.get_env().is_none() {
                    out.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                missing(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut out = Vec::new();
        missing(&Cli::command(), "protobus", &mut out);
        assert!(out.is_empty(), "flags without `env =`: {out:?}");
    }
}
