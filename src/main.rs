use anyhow::{Context, Result};
use clap::Parser;
use protobus::cli::{Cli, Command, LogFormat};

mod dev;
mod dlq_cmd;
mod ingest;
mod kafka_client;
mod lag_cmd;
mod progress;
mod publish_cmd;
mod records;
mod registry;
mod schema_cmd;
mod tail_cmd;
mod topics_cmd;

/// mimalloc rather than glibc's malloc: librdkafka's and tokio's threads free
/// what others allocated, which glibc serves through locked per-thread arenas
/// (a third of the ingest service's CPU went to malloc and free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    if let Some(listen) = cli.metrics_listen {
        protobus::prometheus::install(listen)
            .with_context(|| format!("serving metrics on {listen}"))?;
    }
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Registry(args) => registry::run(args).await,
        Command::Ingest(args) => ingest::run(args).await,
        Command::Schema(command) => schema_cmd::run(command).await,
        Command::Dlq(command) => dlq_cmd::run(command).await,
        Command::Lag(args) => lag_cmd::run(args),
        Command::Tail(args) => tail_cmd::run(args).await,
        Command::Publish(args) => publish_cmd::run(args).await,
        Command::Topics(args) => topics_cmd::run(args),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr, coloured only for a person at a terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
