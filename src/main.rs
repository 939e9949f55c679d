use anyhow::{Context, Result};
use clap::Parser;
use protobus::cli::{Cli, LogFormat};

/// mimalloc rather than glibc's malloc: librdkafka's and tokio's threads free
/// what others allocated, which glibc serves through locked per-thread arenas
/// (a third of the ingest service's CPU went to malloc and free). Built with
/// `no_thp`: on transparent huge pages its resident memory moved in 2 MiB
/// steps (the ingest service peaked at 81–100 MiB under the bench's load,
/// 65–67 MiB without).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line a person can act on: the error, then each cause.
            eprintln!("Error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    let export = init_tracing(&cli)?;
    if let Some(listen) = cli.metrics_listen {
        protobus::prometheus::install(listen)
            .with_context(|| format!("serving metrics on {listen}"))?;
    }
    let result = cli.command.run().await;
    #[cfg(feature = "otel")]
    if let Some(export) = export {
        export.shutdown().await;
    }
    #[cfg(not(feature = "otel"))]
    let () = export;
    result
}

/// The span exporter to flush before exiting (feature `otel`).
#[cfg(feature = "otel")]
type Export = Option<protobus::otlp::OtlpExport>;
#[cfg(not(feature = "otel"))]
type Export = ();

fn init_tracing(cli: &Cli) -> Result<Export> {
    use tracing_subscriber::prelude::*;

    // RUST_LOG picks the log lines; exported spans have their own filter.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr, coloured only for a person at a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    #[cfg(feature = "otel")]
    {
        let export = cli
            .otlp_endpoint
            .as_deref()
            .map(|endpoint| {
                protobus::otlp::OtlpExport::new(endpoint, &cli.otel_service_name)
                    .with_context(|| format!("exporting spans to {endpoint}"))
            })
            .transpose()?;
        registry
            .with(export.as_ref().map(|export| export.layer()))
            .init();
        Ok(export)
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.init();
        Ok(())
    }
}
