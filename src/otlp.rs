//! OpenTelemetry export (feature `otel`): the spans Protobus writes (an
//! `event` span per handled record, joined to the trace in its `traceparent`)
//! sent to an OTLP/gRPC collector such as the OpenTelemetry Collector,
//! Jaeger or Tempo.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tracing_subscriber::prelude::*;
//!
//! let export = protobus::otlp::OtlpExport::new("http://127.0.0.1:4317", "billing")?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(export.layer())
//!     .init();
//! // … run producers and consumers …
//! export.shutdown().await; // sends what is still buffered
//! # Ok(()) }
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

pub use opentelemetry_otlp::ExporterBuildError;

/// Batches spans and sends them over OTLP/gRPC.
#[derive(Debug)]
pub struct OtlpExport {
    provider: SdkTracerProvider,
}

impl OtlpExport {
    /// An exporter to `endpoint` (e.g. `http://127.0.0.1:4317`; `https://`
    /// trusts the system's CAs) for a process named `service_name`. Call it
    /// inside a Tokio runtime: the gRPC channel lives there.
    pub fn new(endpoint: &str, service_name: &str) -> Result<Self, ExporterBuildError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        Ok(OtlpExport { provider })
    }

    /// The `tracing` layer that turns spans at INFO and above into
    /// OpenTelemetry spans, except those of the exporter's own transport
    /// (h2, hyper, tonic, tower), which would feed back into the export.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let spans = Targets::new().with_default(LevelFilter::INFO).with_targets(
            [
                "h2",
                "hyper",
                "hyper_util",
                "tonic",
                "tower",
                "opentelemetry",
            ]
            .map(|target| (target, LevelFilter::OFF)),
        );
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("protobus"))
            .with_filter(spans)
    }

    /// Sends the spans still buffered and stops; errors are logged, since
    /// there is nothing a stopping process could do about them.
    pub async fn shutdown(self) {
        // The SDK blocks while it flushes; keep that off the async workers.
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = stopped {
            tracing::warn!(%error, "spans left unsent at shutdown");
        }
    }
}
