//! The typed producer (`enqueue`, then await every delivery) next to the
//! three raw producers, at 100 B and 1 KiB.

use std::sync::Arc;
use std::time::Duration;

use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{EventProducer, SendOptions};

use crate::kafka::{Measure, Produced, RawProducer, RawRuns, figures};
use crate::{Bench, Row, Target, cost, kafka};

/// The round's rates and CPU time, and allocations per event.
pub(crate) async fn typed(producer: &EventProducer, events: &[OrderPlaced]) -> (Produced, f64) {
    let allocations = cost::allocations();
    let measure = Measure::start();
    let mut pending = Vec::with_capacity(events.len());
    for event in events {
        pending.push(
            producer
                .enqueue(event, SendOptions::default())
                .await
                .expect("enqueue"),
        );
    }
    for delivery in pending {
        delivery.await.expect("delivery");
    }
    let produced = measure.end(events.len());
    let per_event = (cost::allocations() - allocations) as f64 / events.len() as f64;
    (produced, per_event)
}

pub(crate) async fn run(bench: &Bench) -> Vec<Row> {
    let (prefix, topic) = kafka::topic(&bench.bootstrap, "produce").await;
    let producer = EventProducer::new(&kafka::settings(&bench.bootstrap), bench.schemas.clone())
        .expect("producer")
        .with_topic_prefix(&prefix);
    let schema_id = bench.schemas.id_of::<OrderPlaced>().await.unwrap();
    producer.send(&kafka::event(0, 100)).await.expect("warm-up");
    let requests = bench.schemas.requests();
    let mut rows = Vec::new();
    let mut allocations = Vec::new();
    for (size, label) in [(100, "100 B"), (1024, "1 KiB")] {
        let events: Arc<Vec<OrderPlaced>> = Arc::new(
            (0..bench.per_round)
                .map(|i| kafka::event(i, size))
                .collect(),
        );
        let mut typeds = Vec::new();
        let mut raws = RawRuns::new();
        let clients = kafka::raw_clients(&bench.bootstrap, &topic, schema_id).await;
        for round in 0..bench.rounds {
            // Each side goes first in turn: the side after another meets the
            // broker still writing back the previous side's data.
            let sides = RawProducer::ALL.len() + 1;
            for k in 0..sides {
                match (round + k) % sides {
                    0 => {
                        let (produced, per_event) = typed(&producer, &events).await;
                        typeds.push(produced);
                        allocations.push(per_event);
                    }
                    side => {
                        let raw = RawProducer::ALL[side - 1];
                        let produced = clients[side - 1]
                            .produce(&topic, schema_id, events.clone())
                            .await;
                        raws.push(raw, produced);
                    }
                }
            }
        }
        rows.push(Row::throughput(
            format!("typed producer vs {{raw}}, {label}"),
            figures(&typeds, |p| p.rate),
            raws.rates(),
            Some(0.95),
        ));
        rows.push(raws.cpu_row(
            format!("sending thread CPU per event, typed producer vs {{raw}}, {label}"),
            figures(&typeds, |p| p.cpu_us),
            RawProducer::Future,
            |p| p.cpu_us,
        ));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    rows.push(Row::single(
        "heap allocations per sent event (enqueue + delivery)",
        "allocs",
        allocations,
        None,
    ));
    let extra = (bench.schemas.requests() - requests) as f64;
    rows.push(Row::single(
        "registry requests while producing, after warm-up",
        "requests",
        vec![extra],
        Some(Target::Equals(0.0)),
    ));
    rows
}
