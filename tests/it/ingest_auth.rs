//! Bearer tokens on the ingest service: no token or a wrong one is
//! UNAUTHENTICATED, a token for another topic is PERMISSION_DENIED and writes
//! nothing, the right token publishes; no secret reaches the logs, even at
//! debug level.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::auth::Tokens;
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::Event;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tonic::Code;
use tonic::transport::Channel;

const ORDERS_TOKEN: &str = "orders-0123456789-secret";
const CUSTOMERS_TOKEN: &str = "customers-0123456789-secret";

fn request(token: Option<&str>, events: Vec<api::Event>) -> tonic::Request<api::PublishRequest> {
    let mut request = tonic::Request::new(api::PublishRequest {
        events,
        request_id: 7,
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

async fn stream_code(client: &mut IngestClient<Channel>, token: Option<&str>) -> Code {
    let inner = request(token, vec![common::ingest_order("streamed")]).into_inner();
    let mut call = tonic::Request::new(tokio_stream::iter([inner]));
    if let Some(token) = token {
        call.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match client.publish_stream(call).await {
        Err(status) => status.code(),
        Ok(responses) => match responses.into_inner().message().await {
            Err(status) => status.code(),
            Ok(_) => Code::Ok,
        },
    }
}

#[test]
fn tokens_authenticate_and_limit_topics_without_leaking() {
    let logs = common::CapturedLogs::new("debug");
    logs.run(async {

    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("auth"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens.json");
    std::fs::write(
        &tokens_file,
        serde_json::json!({ "tokens": [
            { "name": "orders-writer", "token": ORDERS_TOKEN, "topics": [OrderPlaced::TOPIC] },
            { "name": "customers-writer", "token": CUSTOMERS_TOKEN, "topics": [CustomerRegistered::TOPIC] },
        ]})
        .to_string(),
    )
    .unwrap();
    let settings = IngestSettings {
        tokens: Some(Arc::new(
            Tokens::from_file(&tokens_file, &CONTRACT).unwrap(),
        )),
        ..IngestSettings::default()
    };
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas, &prefix, &[]);
    let service = IngestService::new(&CONTRACT, FILE_DESCRIPTOR_SET, producer, settings).unwrap();
    let address = common::serve_ingest(service).await;
    let mut client = IngestClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    for (token, expected) in [
        (None, Code::Unauthenticated),
        (Some("not-a-token-of-ours-at-all"), Code::Unauthenticated),
        (Some(CUSTOMERS_TOKEN), Code::PermissionDenied),
    ] {
        let status = client
            .publish(request(token, vec![common::ingest_order("refused")]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), expected, "{status}");
        assert_eq!(stream_code(&mut client, token).await, expected);
    }
    // A batch with one event the token may not publish is refused whole.
    let mixed = vec![
        common::ingest_order("mixed"),
        api::Event {
            r#type: CustomerRegistered::FULL_NAME.into(),
            payload: Some(Payload::Json(r#"{"customerId":"c-1"}"#.into())),
            ..api::Event::default()
        },
    ];
    let status = client
        .publish(request(Some(ORDERS_TOKEN), mixed))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("customers-writer") || status.message().contains("orders-writer")
    );

    let consumer: BaseConsumer = kafka.config().create().unwrap();
    let (_, written) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(written, 0, "a refused request wrote something");

    let response = client
        .publish(request(
            Some(ORDERS_TOKEN),
            vec![common::ingest_order("accepted")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(response.results[0].outcome, Some(Outcome::Ack(_))));
    assert_eq!(stream_code(&mut client, Some(ORDERS_TOKEN)).await, Code::Ok);

    let logged = logs.text();
    assert!(
        logged.contains("orders-writer") || logged.contains("customers-writer"),
        "refusals are logged by token name"
    );
    for secret in [ORDERS_TOKEN, CUSTOMERS_TOKEN, "not-a-token-of-ours-at-all"] {
        assert!(!logged.contains(secret), "a token reached the logs");
    }
    });
}
