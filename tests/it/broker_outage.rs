//! The broker dies (SIGKILL) while clients publish through the ingest service
//! and comes back on the same data: no client ever receives success for an
//! event that is not in Kafka. The broker freezes (SIGSTOP) while a member
//! closes: the close ends at its timeout. Each test uses a broker of its own
//! (scripts/kafka.sh on another port), so the shared test broker is not
//! disturbed.

use crate::common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET, ShopOrdersDispatcher};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::{IngestService, IngestSettings};
use protobus_registry::Registry;
use protobus_runtime::{
    ConsumerSettings, ErrorKind, Event, EventConsumer, EventProducer, SchemaRegistry,
};
use rdkafka::ClientConfig;

/// The outage tests take turns: two JVMs restarting at once on two cores can
/// take longer than the delivery timeout, which would test the machine.
static ONE_OUTAGE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A broker of one test's own, on its own port, stopped when dropped.
struct PrivateBroker {
    port: u16,
    state: tempfile::TempDir,
}

impl PrivateBroker {
    /// Starts a broker on `port` with state in a new temporary directory.
    fn start(port: u16) -> Self {
        let broker = PrivateBroker {
            port,
            state: tempfile::tempdir().unwrap(),
        };
        broker.script("start");
        broker
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn script(&self, command: &str) {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh"))
            .arg(command)
            .env("KAFKA_PORT", self.port.to_string())
            .env("PROTOBUS_KAFKA_STATE", self.state.path())
            .env("KAFKA_HEAP_OPTS", "-Xms256m -Xmx256m")
            .status()
            .expect("run scripts/kafka.sh");
        assert!(status.success(), "scripts/kafka.sh {command} failed");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.script("stop");
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
        idempotency_key: format!("outage-{i}"),
        ..api::Event::default()
    }
}

/// An ingest service writing to `bootstrap` (with an in-memory registry);
/// returns its address.
async fn ingest_on(bootstrap: &str, settings: &[(&str, &str)]) -> std::net::SocketAddr {
    let schemas = Arc::new(
        SchemaRegistry::new(&common::serve_registry(Registry::in_memory()).await).unwrap(),
    );
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let producer = EventProducer::new(&config, schemas).unwrap();
    let service = IngestService::new(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        producer,
        IngestSettings::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(protobus_ingest::serve(
        listener,
        service,
        std::future::pending(),
    ));
    address
}

/// How many copies of each event id the orders topic of `bootstrap` holds.
fn stored_event_ids(bootstrap: &str) -> std::collections::HashMap<String, u32> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    common::event_id_copies(&config, OrderPlaced::TOPIC)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_success_is_reported_for_an_event_kafka_does_not_have() {
    let _turn = ONE_OUTAGE_AT_A_TIME.lock().await;
    // The shared broker must answer, as for every test; this one adds its own.
    let _ = common::kafka().await;
    let broker = PrivateBroker::start(19192);
    let bootstrap = broker.bootstrap();

    let address = ingest_on(
        &bootstrap,
        &[
            ("message.timeout.ms", "4000"),
            ("request.timeout.ms", "2000"),
        ],
    )
    .await;

    // Clients publish batches of 20 without pause for about 12 seconds.
    let publishing = tokio::spawn(async move {
        let mut client = IngestClient::connect(format!("http://{address}"))
            .await
            .unwrap();
        let mut results = Vec::new();
        let started = Instant::now();
        let mut next = 0;
        while started.elapsed() < Duration::from_secs(12) {
            let events: Vec<api::Event> = (next..next + 20).map(order).collect();
            let ids: Vec<String> = events.iter().map(|e| e.idempotency_key.clone()).collect();
            next += 20;
            let response = client
                .publish(api::PublishRequest {
                    events,
                    request_id: next as u64,
                })
                .await
                .expect("the service answers even when Kafka is down")
                .into_inner();
            results.extend(ids.into_iter().zip(response.results));
        }
        results
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.script("kill");
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.script("resume");
    let results = publishing.await.unwrap();

    let mut acked = HashSet::new();
    let mut unknown = 0;
    let mut not_written = HashSet::new();
    for (id, result) in &results {
        match &result.outcome {
            Some(Outcome::Ack(ack)) => {
                assert_eq!(&ack.event_id, id);
                acked.insert(ack.event_id.clone());
            }
            Some(Outcome::Failure(f)) if f.outcome_unknown => unknown += 1,
            Some(Outcome::Failure(_)) => {
                not_written.insert(id.clone());
            }
            None => panic!("a result without an outcome"),
        }
    }
    assert!(!acked.is_empty(), "nothing was acknowledged");

    // Everything Kafka has, by event id (idempotency key).
    let stored: HashSet<String> = stored_event_ids(&bootstrap).into_keys().collect();
    let missing: Vec<_> = acked.difference(&stored).collect();
    println!(
        "outage: results={} acked={} outcome_unknown={} failed={} stored={} acked_missing={}",
        results.len(),
        acked.len(),
        unknown,
        not_written.len(),
        stored.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged but not in Kafka: {missing:?}"
    );
    let sent: HashSet<String> = results.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(sent.len(), results.len(), "every event id is sent once");
    assert!(
        unknown + not_written.len() > 0,
        "the broker kill hit no request in flight: every event was acknowledged"
    );
    let written_anyway: Vec<_> = not_written.intersection(&stored).collect();
    assert!(
        written_anyway.is_empty(),
        "answered \"not written\" but in Kafka: {written_anyway:?}"
    );
    let never_sent: Vec<_> = stored.difference(&sent).collect();
    assert!(
        never_sent.is_empty(),
        "in Kafka but never sent: {never_sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_thousand_events_through_a_broker_restart_every_acknowledged_one_is_consumed_once() {
    const EVENTS: usize = 50_000;
    let _turn = ONE_OUTAGE_AT_A_TIME.lock().await;
    let _ = common::kafka().await;
    let broker = PrivateBroker::start(19292);
    let bootstrap = broker.bootstrap();
    let address = ingest_on(&bootstrap, &[("message.timeout.ms", "20000")]).await;

    // 50 000 events in batches of 250 on one stream; the broker dies mid-way.
    let publishing = tokio::spawn(async move {
        let mut client = IngestClient::connect(format!("http://{address}"))
            .await
            .unwrap();
        // About 4 s of load: one batch every 20 ms.
        let (feed, requests) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for batch in 0..EVENTS / 250 {
                let request = api::PublishRequest {
                    events: (batch * 250..(batch + 1) * 250).map(order).collect(),
                    request_id: batch as u64,
                };
                if feed.send(request).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let requests = tokio_stream::wrappers::ReceiverStream::new(requests);
        let mut responses = client.publish_stream(requests).await.unwrap().into_inner();
        let mut results = Vec::new();
        while let Some(response) = responses.message().await.expect("stream") {
            // Results come in event order; a batch's events are known by its request id.
            let first = response.request_id as usize * 250;
            for (i, result) in response.results.into_iter().enumerate() {
                results.push((format!("outage-{}", first + i), result));
            }
        }
        results
    });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        !publishing.is_finished(),
        "the load ended before the broker was killed"
    );
    broker.script("kill");
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.script("resume");
    let results = publishing.await.unwrap();

    let acked: HashSet<String> = results
        .iter()
        .filter_map(|(id, r)| match &r.outcome {
            Some(Outcome::Ack(ack)) => {
                assert_eq!(&ack.event_id, id, "an ack for another event");
                Some(ack.event_id.clone())
            }
            _ => None,
        })
        .collect();
    let not_written: HashSet<&String> = results
        .iter()
        .filter(|(_, r)| matches!(&r.outcome, Some(Outcome::Failure(f)) if !f.outcome_unknown))
        .map(|(id, _)| id)
        .collect();
    let unknown = results
        .iter()
        .filter(|(_, r)| matches!(&r.outcome, Some(Outcome::Failure(f)) if f.outcome_unknown))
        .count();
    let sent: HashSet<String> = (0..EVENTS).map(|i| format!("outage-{i}")).collect();
    // Why events failed, with counts: what to look at when too few were acked.
    let mut failures: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, result) in &results {
        if let Some(Outcome::Failure(f)) = &result.outcome {
            *failures.entry(f.reason.as_str()).or_default() += 1;
        }
    }

    let copies = stored_event_ids(&bootstrap);
    let consumed: usize = copies.values().map(|&n| n as usize).sum();
    let duplicates: usize = copies.values().map(|&n| n as usize - 1).sum();
    let lost = acked.iter().filter(|id| !copies.contains_key(*id)).count();
    let never_sent = copies.keys().filter(|id| !sent.contains(*id)).count();
    common::figure(&format!(
        "broker killed during ingest: sent={EVENTS} acknowledged={} outcome_unknown={unknown} consumed={consumed} duplicates={duplicates} lost={lost}",
        acked.len()
    ));
    assert_eq!(lost, 0, "acknowledged events missing from Kafka");
    assert_eq!(never_sent, 0, "records that were never sent");
    assert_eq!(duplicates, 0, "the idempotent producer wrote duplicates");
    assert_eq!(results.len(), EVENTS, "every event gets a result");
    let written_anyway: Vec<_> = not_written
        .iter()
        .filter(|id| copies.contains_key(id.as_str()))
        .collect();
    assert!(
        written_anyway.is_empty(),
        "answered \"not written\" but in Kafka: {written_anyway:?}"
    );
    assert!(
        acked.len() > EVENTS / 2,
        "too few acknowledged: {}; failures: {failures:#?}",
        acked.len()
    );
}

/// A member told to stop while its broker is frozen (SIGSTOP: connections
/// stay open, nothing answers, as in a long GC pause) cannot commit or leave
/// the group: `run` gives up after `close_timeout` with `CloseTimedOut`,
/// naming the group, instead of holding the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_close_the_frozen_broker_never_answers_ends_after_the_close_timeout() {
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
    let _turn = ONE_OUTAGE_AT_A_TIME.lock().await;
    let broker = PrivateBroker::start(19392);
    let schemas = Arc::new(
        SchemaRegistry::new(&common::serve_registry(Registry::in_memory()).await).unwrap(),
    );
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", broker.bootstrap());
    let producer = EventProducer::new(&config, schemas.clone()).unwrap();
    let order = OrderPlaced {
        order_id: "order-1".into(),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    };
    producer.send(&order).await.expect("send");

    let group = common::unique_name("frozen");
    let mut settings = ConsumerSettings::new(&broker.bootstrap(), &group);
    settings.kafka.set("group.protocol", "consumer");
    settings.close_timeout = CLOSE_TIMEOUT;
    let handled = common::Count::default();
    let consumer =
        EventConsumer::new(settings, schemas, ShopOrdersDispatcher(handled.clone())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    // In the group and reading: the order was handled.
    let deadline = Instant::now() + Duration::from_secs(60);
    while handled.0.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the member never handled the order"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    broker.script("pause");
    let stopping = Instant::now();
    let _ = stop.send(());
    let ended = tokio::time::timeout(CLOSE_TIMEOUT + Duration::from_secs(15), running)
        .await
        .expect("run ends soon after its close timeout")
        .expect("the consumer task");
    let took = stopping.elapsed();
    broker.script("unpause");
    let err = ended.expect_err("a close that cannot finish is an error");
    let ErrorKind::CloseTimedOut {
        group: named,
        timeout,
        ..
    } = err.kind()
    else {
        panic!("expected CloseTimedOut, got {err}");
    };
    assert_eq!((named.as_str(), *timeout), (group.as_str(), CLOSE_TIMEOUT));
    assert!(
        took >= CLOSE_TIMEOUT,
        "run ended after {took:?}, before its close timeout: the broker was not needed?"
    );
}
