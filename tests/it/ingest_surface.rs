//! The standard gRPC surface of the ingest service and its edges: health,
//! reflection, request metadata into Kafka headers, a full producer queue
//! answered with RESOURCE_EXHAUSTED (never a false success), graceful shutdown.

use crate::common;

use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::{IngestService, IngestSettings};
use protobus_runtime::Event;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use tokio::sync::oneshot;

struct Running {
    address: std::net::SocketAddr,
    prefix: String,
    kafka: common::Kafka,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), protobus_ingest::Error>>,
}

async fn start(producer_settings: &[(&str, &str)]) -> Running {
    start_with(producer_settings, IngestSettings::default()).await
}

async fn start_with(producer_settings: &[(&str, &str)], settings: IngestSettings) -> Running {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("surface"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 1)
        .await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas, &prefix, producer_settings);
    let service = IngestService::new(&CONTRACT, FILE_DESCRIPTOR_SET, producer, settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let served = tokio::spawn(protobus_ingest::serve(listener, service, async {
        let _ = stopped.await;
    }));
    Running {
        address,
        prefix,
        kafka,
        stop: Some(stop),
        served,
    }
}

fn order(i: usize) -> api::Event {
    let event = OrderPlaced {
        order_id: format!("order-{i}"),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    };
    api::Event {
        r#type: OrderPlaced::FULL_NAME.into(),
        payload: Some(Payload::Binary(event.encode_to_vec().into())),
        ..api::Event::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    let running = start(&[]).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.address))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "protobus.ingest.v1.Ingest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"protobus.ingest.v1.Ingest".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metadata_becomes_kafka_headers() {
    let running = start(&[]).await;
    let mut client = IngestClient::connect(format!("http://{}", running.address))
        .await
        .unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut request = tonic::Request::new(api::PublishRequest {
        events: vec![
            order(1),
            api::Event {
                correlation_id: "from-the-event".into(),
                headers: vec![api::Header {
                    key: "tenant".into(),
                    value: b"acme".to_vec(),
                }],
                ..order(2)
            },
        ],
        request_id: 1,
    });
    request
        .metadata_mut()
        .insert("x-correlation-id", "from-metadata".parse().unwrap());
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let response = client.publish(request).await.unwrap().into_inner();
    let acks: Vec<&api::Ack> = response
        .results
        .iter()
        .map(|r| match &r.outcome {
            Some(Outcome::Ack(ack)) => ack,
            other => panic!("{other:?}"),
        })
        .collect();

    let consumer: BaseConsumer = running
        .kafka
        .config()
        .set("group.id", common::unique_name("headers"))
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(&acks[0].topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut headers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while headers.len() < 2 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let all: Vec<(String, Vec<u8>)> = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            headers.push(all);
        }
    }
    let get = |headers: &Vec<(String, Vec<u8>)>, name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    assert_eq!(
        get(&headers[0], "protobus-correlation-id").as_deref(),
        Some("from-metadata")
    );
    assert_eq!(
        get(&headers[0], "traceparent").as_deref(),
        Some(traceparent)
    );
    assert_eq!(
        get(&headers[1], "protobus-correlation-id").as_deref(),
        Some("from-the-event")
    );
    assert_eq!(get(&headers[1], "tenant").as_deref(), Some("acme"));
    assert_eq!(
        get(&headers[1], "protobus-event-id").as_deref(),
        Some(acks[1].event_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_is_resource_exhausted_and_never_a_false_success() {
    // A queue of 5 messages: a batch of 300 overflows it.
    let running = start(&[("queue.buffering.max.messages", "5"), ("linger.ms", "50")]).await;
    let mut client = IngestClient::connect(format!("http://{}", running.address))
        .await
        .unwrap();
    let response = client
        .publish(api::PublishRequest {
            events: (0..300).map(order).collect(),
            request_id: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let mut acked = 0;
    let mut exhausted = 0;
    for result in &response.results {
        match &result.outcome {
            Some(Outcome::Ack(_)) => acked += 1,
            Some(Outcome::Failure(f)) => {
                assert_eq!(f.code, tonic::Code::ResourceExhausted as i32, "{f:?}");
                assert!(!f.outcome_unknown);
                exhausted += 1;
            }
            None => panic!("no outcome"),
        }
    }
    assert!(exhausted > 0, "the queue never filled ({acked} acked)");
    assert!(acked > 0);
    let consumer: BaseConsumer = running.kafka.config().create().unwrap();
    let topic = format!("{}{}", running.prefix, OrderPlaced::TOPIC);
    let (_, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        high, acked,
        "every acked event, and only those, is in Kafka"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_then_stops() {
    let mut running = start(&[]).await;
    let mut client = IngestClient::connect(format!("http://{}", running.address))
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move {
        client
            .publish(api::PublishRequest {
                events: (0..500).map(order).collect(),
                request_id: 1,
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    running.stop.take().unwrap().send(()).unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes")
        .into_inner();
    assert!(
        response
            .results
            .iter()
            .all(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
    );
    tokio::time::timeout(Duration::from_secs(30), running.served)
        .await
        .expect("the server stops")
        .unwrap()
        .expect("cleanly");
    assert!(
        IngestClient::connect(format!("http://{}", running.address))
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_many_bytes_in_flight_is_resource_exhausted_and_writes_nothing() {
    let settings = IngestSettings {
        max_request_bytes: 64 * 1024,
        max_in_flight_bytes: 64 * 1024,
        ..IngestSettings::default()
    };
    let running = start_with(&[("linger.ms", "100")], settings).await;
    let client = IngestClient::connect(format!("http://{}", running.address))
        .await
        .unwrap();
    // Twenty requests of ~40 KiB at once: only one fits in 64 KiB at a time.
    let calls = (0..20).map(|r| {
        let mut client = client.clone();
        let events = (0..400)
            .map(|i| {
                let event = OrderPlaced {
                    order_id: format!("order-{r}-{i}"),
                    coupon_code: "x".repeat(100),
                    ..OrderPlaced::default()
                };
                api::Event {
                    r#type: OrderPlaced::FULL_NAME.into(),
                    payload: Some(Payload::Binary(event.encode_to_vec().into())),
                    ..api::Event::default()
                }
            })
            .collect();
        tokio::spawn(async move {
            client
                .publish(api::PublishRequest {
                    events,
                    request_id: r as u64,
                })
                .await
        })
    });
    let mut acked = 0;
    let mut refused = 0;
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            Ok(response) => {
                acked += response
                    .into_inner()
                    .results
                    .iter()
                    .filter(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
                    .count() as i64
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no request was refused");
    let consumer: BaseConsumer = running.kafka.config().create().unwrap();
    let topic = format!("{}{}", running.prefix, OrderPlaced::TOPIC);
    let (_, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(high, acked, "refused requests wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_request_charged_more_than_the_whole_budget_still_runs_alone() {
    // 100 small events are charged ~100 KiB of in-flight state, more than
    // the 64 KiB budget; each request must then take all of it, not wait forever.
    let settings = IngestSettings {
        max_request_bytes: 64 * 1024,
        max_in_flight_bytes: 64 * 1024,
        ..IngestSettings::default()
    };
    let running = start_with(&[], settings).await;
    let mut client = IngestClient::connect(format!("http://{}", running.address))
        .await
        .unwrap();
    let requests = (0..3).map(|r| api::PublishRequest {
        events: (0..100).map(|i| order(r * 100 + i)).collect(),
        request_id: r as u64,
    });
    let mut responses = tokio::time::timeout(Duration::from_secs(30), async {
        client
            .publish_stream(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner()
    })
    .await
    .expect("stream opened");
    let mut acked = 0;
    while let Some(response) = tokio::time::timeout(Duration::from_secs(30), responses.message())
        .await
        .expect("a request was never run")
        .unwrap()
    {
        acked += response
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
            .count();
    }
    assert_eq!(acked, 300);
}
