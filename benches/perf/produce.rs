//! The typed producer (`enqueue`, then await every delivery) next to the raw
//! `BaseProducer` loop, at 100 B and 1 KiB.

use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::{EventProducer, SendOptions};

use crate::{Bench, Row, alloc_count, kafka, median};

/// Acknowledged events per second, and allocations per event.
async fn typed(producer: &EventProducer, events: &[OrderPlaced]) -> (f64, f64) {
    let allocations = alloc_count::allocations();
    let started = Instant::now();
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
    let elapsed = started.elapsed().as_secs_f64();
    let per_event = (alloc_count::allocations() - allocations) as f64 / events.len() as f64;
    (events.len() as f64 / elapsed, per_event)
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
    for (size, target) in [(100, None), (1024, Some(0.90))] {
        let events: Vec<OrderPlaced> = (0..bench.per_round)
            .map(|i| kafka::event(i, size))
            .collect();
        let (mut raws, mut typeds) = (Vec::new(), Vec::new());
        for round in 0..bench.rounds {
            // Sides take turns going first: the second writer of a round
            // meets the broker still writing back the first one's data.
            let typed_first = round % 2 == 1;
            if typed_first {
                let (rate, per_event) = typed(&producer, &events).await;
                typeds.push(rate);
                allocations.push(per_event);
            }
            let (bootstrap, topic, batch) =
                (bench.bootstrap.clone(), topic.clone(), events.clone());
            raws.push(
                tokio::task::spawn_blocking(move || {
                    kafka::raw_produce(&bootstrap, &topic, schema_id, &batch)
                })
                .await
                .unwrap(),
            );
            if !typed_first {
                let (rate, per_event) = typed(&producer, &events).await;
                typeds.push(rate);
                allocations.push(per_event);
            }
        }
        rows.push(Row::throughput(
            format!("typed producer vs BaseProducer, {size} B"),
            &typeds,
            &raws,
            target,
        ));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let per_event = median(allocations);
    rows.push(Row::single(
        "heap allocations per sent event (enqueue + delivery)",
        "allocs",
        per_event,
        None,
    ));
    let extra = bench.schemas.requests() - requests;
    rows.push(Row::single(
        "registry requests while producing, after warm-up",
        "requests",
        extra as f64,
        Some(("= 0", extra == 0)),
    ));
    rows
}
