//! OpenTelemetry export (feature `otel`; `scripts/test.sh` runs this with
//! `--features otel`): an in-process OTLP/gRPC collector receives the
//! handler's span as a child of the span named in the event's `traceparent`,
//! and the handler of a follow-up event sent with `SendOptions::caused_by` as
//! a child of the first handler's span. `protobus dev --otlp-endpoint`
//! exports its handlers' spans under `OTEL_SERVICE_NAME`.

#[path = "it/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::billing::Billing;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use protobus::contract::ShopOrdersDispatcher;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced};
use protobus::otlp::OtlpExport;
use protobus_runtime::{ConsumerSettings, Event, EventConsumer, SendOptions};
use tracing_subscriber::prelude::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Spans received, with the `service.name` of the process that sent them.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let attributes = resource_spans
                .resource
                .map(|resource| resource.attributes)
                .unwrap_or_default();
            let service = text(&attributes, "service.name").unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves OTLP/gRPC on a free port; returns the endpoint URL.
    async fn start() -> (Self, String) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (collector, endpoint)
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap().clone()
    }

    /// The `event` spans whose `event_type` attribute is `event_type`.
    fn handler_spans(&self, event_type: &str) -> Vec<Span> {
        self.spans()
            .into_iter()
            .map(|(_, span)| span)
            .filter(|span| {
                span.name == "event"
                    && text(&span.attributes, "event_type").as_deref() == Some(event_type)
            })
            .collect()
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .and_then(|value| match value {
            any_value::Value::StringValue(text) => Some(text.clone()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_spans_join_the_trace_of_their_event_and_pass_it_on() {
    let kafka = common::kafka().await;
    let (collector, endpoint) = Collector::start().await;
    let export = OtlpExport::new(&endpoint, "otel-test").expect("OTLP exporter");
    tracing_subscriber::registry()
        .with(export.layer())
        .try_init()
        .expect("the only subscriber of this test binary");

    let prefix = format!("{}.", common::unique_name("otel"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 1)
        .await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let order = OrderPlaced {
        order_id: "traced".into(),
        ..OrderPlaced::default()
    };
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    producer
        .send_with(
            &order,
            SendOptions {
                headers: vec![("traceparent".into(), traceparent.into_bytes())],
                ..SendOptions::default()
            },
        )
        .await
        .expect("sent");

    let billing = Billing::new(producer);
    let paid = billing.paid.clone();
    let mut settings =
        ConsumerSettings::new(&common::bootstrap_servers(), &common::unique_name("otel"));
    settings.topic_prefix = prefix.clone();
    let consumer = EventConsumer::new(settings, schemas, ShopOrdersDispatcher(billing)).unwrap();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while paid.load(Ordering::Relaxed) < 1 {
        assert!(
            Instant::now() < deadline,
            "the follow-up event was not handled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    export.shutdown().await;

    let placed = collector.handler_spans(OrderPlaced::FULL_NAME);
    let [placed] = placed.as_slice() else {
        panic!("one OrderPlaced handler span expected: {placed:?}");
    };
    assert_eq!(hex(&placed.trace_id), TRACE_ID);
    assert_eq!(hex(&placed.parent_span_id), PARENT_ID);
    let follow_up = collector.handler_spans(OrderPaid::FULL_NAME);
    let [follow_up] = follow_up.as_slice() else {
        panic!("one OrderPaid handler span expected: {follow_up:?}");
    };
    assert_eq!(
        hex(&follow_up.trace_id),
        TRACE_ID,
        "the follow-up left the trace"
    );
    assert_eq!(
        follow_up.parent_span_id, placed.span_id,
        "the follow-up's handler is not a child of the first handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_its_handlers_spans() {
    let (collector, endpoint) = Collector::start().await;
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["dev", "--events", "3", "--interval-ms", "10"])
        .args([
            "--ingest-listen",
            "127.0.0.1:0",
            "--otlp-endpoint",
            &endpoint,
        ])
        .env("OTEL_SERVICE_NAME", "dev-under-test")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let handled: Vec<_> = collector
        .spans()
        .into_iter()
        .filter(|(service, span)| service == "dev-under-test" && span.name == "event")
        .collect();
    assert!(
        handled.len() >= 3,
        "{} handler spans exported, 3 expected",
        handled.len()
    );
}
