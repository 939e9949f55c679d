//! Load for the failover scenarios: events through the ingest service or
//! the typed producer, what was acknowledged, what a group of two typed
//! members handled, what the topic holds, and the figure line.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use protobus::contract::ShopOrdersDispatcher;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_runtime::{
    ConsumerSettings, ErrorKind, Event, EventConsumer, EventProducer, ProcessingOrder,
    SchemaRegistry, SendOptions,
};

use crate::common;

/// What the senders were told, by event id.
#[derive(Debug, Default)]
pub struct Outcomes {
    pub sent: Vec<String>,
    pub acked: HashSet<String>,
    /// Timed out or otherwise unknown: the event may or may not be written.
    pub unknown: HashSet<String>,
    /// Refused: not written.
    pub refused: HashSet<String>,
    /// The first refusal's words, to say why.
    pub first_refusal: Option<String>,
}

impl Outcomes {
    fn record(&mut self, id: String, outcome: Result<(), (bool, String)>) {
        self.sent.push(id.clone());
        match outcome {
            Ok(()) => {
                self.acked.insert(id);
            }
            Err((true, _)) => {
                self.unknown.insert(id);
            }
            Err((false, why)) => {
                self.first_refusal.get_or_insert(why);
                self.refused.insert(id);
            }
        }
    }
}

fn order(run: &str, i: usize) -> OrderPlaced {
    OrderPlaced {
        // 600 orders: every partition gets its share, keyed as in production.
        order_id: format!("{run}-order-{}", i % 600),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    }
}

/// Publishes `events` through the ingest service at `address`, `batch` per
/// request on one `PublishStream`, one request every `pace`.
pub fn through_ingest(
    address: std::net::SocketAddr,
    run: &str,
    events: usize,
    batch: usize,
    pace: Duration,
) -> tokio::task::JoinHandle<Outcomes> {
    let run = run.to_owned();
    tokio::spawn(async move {
        let mut client = IngestClient::connect(format!("http://{address}"))
            .await
            .expect("connect to ingest");
        let (feed, requests) = tokio::sync::mpsc::channel(4);
        let feeding = run.clone();
        tokio::spawn(async move {
            for first in (0..events).step_by(batch) {
                let request = api::PublishRequest {
                    events: (first..(first + batch).min(events))
                        .map(|i| api::Event {
                            r#type: OrderPlaced::FULL_NAME.into(),
                            payload: Some(Payload::Binary(
                                order(&feeding, i).encode_to_vec().into(),
                            )),
                            idempotency_key: format!("{feeding}-{i}"),
                            ..api::Event::default()
                        })
                        .collect(),
                    request_id: first as u64,
                };
                if feed.send(request).await.is_err() {
                    break;
                }
                tokio::time::sleep(pace).await;
            }
        });
        let requests = tokio_stream::wrappers::ReceiverStream::new(requests);
        let mut responses = client
            .publish_stream(requests)
            .await
            .expect("open the stream")
            .into_inner();
        let mut outcomes = Outcomes::default();
        while let Some(response) = responses.message().await.expect("the stream answers") {
            let first = response.request_id as usize;
            for (i, result) in response.results.into_iter().enumerate() {
                let id = format!("{run}-{}", first + i);
                let outcome = match result.outcome {
                    Some(Outcome::Ack(ack)) => {
                        assert_eq!(ack.event_id, id, "an ack for another event");
                        Ok(())
                    }
                    Some(Outcome::Failure(f)) => Err((f.outcome_unknown, f.reason)),
                    None => panic!("a result without an outcome"),
                };
                outcomes.record(id, outcome);
            }
        }
        outcomes
    })
}

/// Sends `events` with the typed producer, `in_flight` at a time, pausing
/// `pace` after each group.
pub fn through_producer(
    producer: EventProducer,
    run: &str,
    events: usize,
    in_flight: usize,
    pace: Duration,
) -> tokio::task::JoinHandle<Outcomes> {
    let run = run.to_owned();
    tokio::spawn(async move {
        let mut outcomes = Outcomes::default();
        for first in (0..events).step_by(in_flight) {
            let mut pending = Vec::new();
            for i in first..(first + in_flight).min(events) {
                let id = format!("{run}-{i}");
                let options = SendOptions {
                    event_id: Some(id.clone()),
                    ..SendOptions::default()
                };
                pending.push((id, producer.enqueue(&order(&run, i), options).await));
            }
            for (id, queued) in pending {
                let delivered = match queued {
                    Ok(delivery) => delivery.await,
                    Err(err) => Err(err),
                };
                let outcome = delivered.map(drop).map_err(|err| {
                    let unknown = matches!(
                        err.kind(),
                        ErrorKind::OutcomeUnknown(_) | ErrorKind::ProducerFatal(_)
                    );
                    (unknown, err.to_string())
                });
                outcomes.record(id, outcome);
            }
            tokio::time::sleep(pace).await;
        }
        outcomes
    })
}

/// A consumer group of two typed members reading the orders topic behind
/// `prefix`, recording what they handle.
pub fn group_of_two(
    bootstrap: &str,
    registry: &Arc<SchemaRegistry>,
    prefix: &str,
) -> (common::Recorder, Vec<common::RunningConsumer>) {
    let recorder = common::Recorder::default();
    let group = common::unique_name("cluster-group");
    let members = (0..2)
        .map(|member| {
            let mut settings = ConsumerSettings::new(bootstrap, &group);
            settings.topic_prefix = prefix.to_owned();
            settings.order = ProcessingOrder::Key;
            settings.kafka.set("client.id", format!("member-{member}"));
            let consumer = EventConsumer::new(
                settings,
                registry.clone(),
                ShopOrdersDispatcher(recorder.clone()),
            )
            .expect("a member");
            common::start_consumer(consumer)
        })
        .collect();
    (recorder, members)
}

/// Waits until `recorder` holds every acknowledged event, or `within` passes.
pub async fn wait_consumed(recorder: &common::Recorder, acked: &HashSet<String>, within: Duration) {
    let deadline = Instant::now() + within;
    while !recorder.has_all(acked.iter()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A scenario's figure line and what it got wrong.
#[derive(Debug)]
pub struct Verdict {
    pub line: String,
    pub problems: Vec<String>,
}

/// Judges a scenario: every acknowledged event handled and in the topic,
/// no event in the topic twice (no producer duplicates), nothing answered
/// "not written" in the topic, nothing in the topic that was never sent.
/// Members may handle an event more than once (redelivery of work not yet
/// committed): that is counted, not a problem.
pub fn verdict(
    label: &str,
    outcomes: &Outcomes,
    handled: &[String],
    stored: &HashMap<String, u32>,
    seconds: f64,
) -> Verdict {
    let delivery = common::Delivery::check(
        outcomes.acked.iter().map(String::as_str),
        handled.iter().map(String::as_str),
    );
    let sample = |ids: Vec<&String>| -> String {
        let mut ids: Vec<&String> = ids;
        ids.sort();
        format!("{} (e.g. {:?})", ids.len(), &ids[..ids.len().min(3)])
    };
    let mut problems = Vec::new();
    if !delivery.lost.is_empty() {
        problems.push(format!(
            "acknowledged but never handled: {}",
            sample(delivery.lost.iter().collect())
        ));
    }
    let not_stored: Vec<&String> = outcomes
        .acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    let lost = delivery.lost.len().max(not_stored.len());
    if !not_stored.is_empty() {
        problems.push(format!(
            "acknowledged but not in the topic: {}",
            sample(not_stored)
        ));
    }
    let doubled: Vec<&String> = stored
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let producer_duplicates = doubled.len();
    if !doubled.is_empty() {
        problems.push(format!("in the topic twice: {}", sample(doubled)));
    }
    let written_anyway: Vec<&String> = outcomes
        .refused
        .iter()
        .filter(|id| stored.contains_key(*id))
        .collect();
    if !written_anyway.is_empty() {
        problems.push(format!(
            "answered \"not written\" but in the topic: {}",
            sample(written_anyway)
        ));
    }
    let sent: HashSet<&String> = outcomes.sent.iter().collect();
    let never_sent: Vec<&String> = stored.keys().filter(|id| !sent.contains(id)).collect();
    if !never_sent.is_empty() {
        problems.push(format!(
            "in the topic but never sent: {}",
            sample(never_sent)
        ));
    }
    let line = format!(
        "{label}: sent={} acknowledged={} outcome_unknown={} refused={} consumed={} duplicates={} producer_duplicates={producer_duplicates} lost={lost} seconds={seconds:.1}",
        outcomes.sent.len(),
        outcomes.acked.len(),
        outcomes.unknown.len(),
        outcomes.refused.len(),
        handled.len(),
        delivery.extra_copies,
    );
    Verdict { line, problems }
}

/// Prints the scenario's figure line, then fails on any problem.
pub fn settle(
    label: &str,
    outcomes: &Outcomes,
    recorder: &common::Recorder,
    stored: &HashMap<String, u32>,
    started: Instant,
) {
    let verdict = verdict(
        label,
        outcomes,
        &recorder.handled(),
        stored,
        started.elapsed().as_secs_f64(),
    );
    common::figure(&verdict.line);
    assert!(
        verdict.problems.is_empty(),
        "{}",
        verdict.problems.join("; ")
    );
}

/// The checker itself: a green figure line means something only if an
/// event removed from, or doubled in, what was consumed or stored is caught.
#[test]
fn the_checker_reports_an_event_lost_or_doubled() {
    let ids = |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
    let outcomes = Outcomes {
        sent: ids(&["a", "b", "c", "d"]),
        acked: ids(&["a", "b", "c"]).into_iter().collect(),
        refused: ids(&["d"]).into_iter().collect(),
        ..Outcomes::default()
    };
    let stored: HashMap<String, u32> = [("a", 1), ("b", 1), ("c", 1)]
        .into_iter()
        .map(|(id, n)| (id.to_owned(), n))
        .collect();
    let clean = verdict("t", &outcomes, &ids(&["a", "b", "c", "b"]), &stored, 1.0);
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert!(
        clean
            .line
            .contains("duplicates=1 producer_duplicates=0 lost=0"),
        "{}",
        clean.line
    );

    let removed = verdict("t", &outcomes, &ids(&["a", "c"]), &stored, 1.0);
    assert!(removed.line.contains("lost=1"), "{}", removed.line);
    assert!(
        removed.problems[0].starts_with("acknowledged but never handled: 1"),
        "{:?}",
        removed.problems
    );

    let mut doubled = stored.clone();
    doubled.insert("b".into(), 2);
    let twice = verdict("t", &outcomes, &ids(&["a", "b", "c"]), &doubled, 1.0);
    assert!(
        twice.line.contains("producer_duplicates=1"),
        "{}",
        twice.line
    );
    assert_eq!(twice.problems, ["in the topic twice: 1 (e.g. [\"b\"])"]);

    let mut leaked = stored;
    leaked.insert("d".into(), 1);
    leaked.insert("x".into(), 1);
    let wrong = verdict("t", &outcomes, &ids(&["a", "b", "c"]), &leaked, 1.0);
    assert_eq!(wrong.problems.len(), 2, "{:?}", wrong.problems);
}
