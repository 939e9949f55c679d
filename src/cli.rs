//! Command-line interface of the `protobus` binary. Every flag has an
//! environment-variable fallback, so that the same settings work from a shell,
//! from `docker-compose.yml` and from CI.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands::{
    catalog, contract, dev, dlq, ingest, lag, publish, registry, schema, tail, topics,
};

/// Default address of a Kafka broker, shared by the binary, the scripts and the tests.
pub const DEFAULT_KAFKA: &str = "127.0.0.1:9092";
/// Default listen address of the schema registry (the Confluent registry's port).
pub const DEFAULT_REGISTRY_LISTEN: &str = "127.0.0.1:8081";
/// Default URL of the schema registry that clients use.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:8081";
/// Default listen address of the gRPC ingest service (the usual gRPC port).
pub const DEFAULT_INGEST_LISTEN: &str = "127.0.0.1:50051";
/// How long a command waits for Kafka or the registry before it gives up.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    Dev(dev::DevArgs),
    /// Serve the Confluent-compatible schema registry.
    Registry(registry::RegistryArgs),
    /// Serve the gRPC ingest service that publishes events to Kafka.
    Ingest(ingest::IngestArgs),
    /// Check, register and compare contracts.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Export this build's contract for other languages and tools.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Write the event catalog: an AsyncAPI 3.0 document and a Markdown page per topic.
    Catalog(catalog::CatalogArgs),
    /// Inspect and replay dead-lettered events.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// How far a consumer group is behind: committed offset, end offset and lag per partition.
    Lag(lag::LagArgs),
    /// Print a topic's records decoded to proto3 JSON, with key, headers and position.
    Tail(tail::TailArgs),
    /// Publish events given as proto3 JSON: one as an argument, or NDJSON on stdin.
    Publish(publish::PublishArgs),
    /// List topics with the event types this build's contract writes to
    /// them; `topics apply` provisions them as the contract declares.
    Topics(topics::TopicsArgs),
}

impl Command {
    /// Runs the command to its end.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Dev(args) => dev::run(args).await,
            Command::Registry(args) => registry::run(args).await,
            Command::Ingest(args) => ingest::run(args).await,
            Command::Schema(command) => schema::run(command).await,
            Command::Contract(command) => contract::run(command).await,
            Command::Catalog(args) => catalog::run(args).await,
            Command::Dlq(command) => dlq::run(command).await,
            Command::Lag(args) => lag::run(args),
            Command::Tail(args) => tail::run(args).await,
            Command::Publish(args) => publish::run(args).await,
            Command::Topics(args) => topics::run(args).await,
        }
    }
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
