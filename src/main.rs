use anyhow::Result;
use clap::Parser;
use protobus::cli::{Cli, Command, LogFormat};

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Dev(_) => anyhow::bail!("`protobus dev` is not implemented yet"),
        Command::Registry(_) => anyhow::bail!("`protobus registry` is not implemented yet"),
        Command::Ingest(_) => anyhow::bail!("`protobus ingest` is not implemented yet"),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
