//! Brokers fail under load: the leader of the busiest partition is killed,
//! a broker stalls (SIGSTOP) for 20 s, all three restart one by one, two of
//! three go down. Every acknowledged event is handled, no event is written
//! twice, and nothing is acknowledged that `min.insync.replicas` brokers
//! do not hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protobus_runtime::{EventProducer, SchemaRegistry};

use crate::harness::Cluster;
use crate::load::{self, Outcomes};
use crate::{common, harness};

/// A scenario's parts: contract topics behind a fresh prefix, a registry
/// and an ingest service on the cluster, and a group of two members.
struct Stage {
    prefix: String,
    topic: String,
    registry_url: String,
    schemas: Arc<SchemaRegistry>,
    _registry: common::Process,
    recorder: common::Recorder,
    members: Vec<common::RunningConsumer>,
}

async fn stage(cluster: &Cluster, label: &str) -> Stage {
    let prefix = format!("{}.", common::unique_name(label));
    cluster.apply_topics(&prefix);
    let (registry, registry_url) = cluster.registry(&common::unique_name("_schemas")).await;
    let schemas = Arc::new(SchemaRegistry::new(&registry_url).unwrap());
    let (recorder, members) = load::group_of_two(cluster.bootstrap(), &schemas, &prefix);
    Stage {
        topic: format!("{prefix}shop.orders"),
        prefix,
        registry_url,
        schemas,
        _registry: registry,
        recorder,
        members,
    }
}

impl Stage {
    /// Waits for the acknowledged events to be handled, stops the members,
    /// and settles the scenario.
    async fn finish(self, cluster: &Cluster, label: &str, outcomes: &Outcomes, started: Instant) {
        load::wait_consumed(&self.recorder, &outcomes.acked, Duration::from_secs(120)).await;
        for member in self.members {
            member.stop().await;
        }
        let stored = common::event_id_copies(&cluster.config(), &self.topic);
        load::settle(label, outcomes, &self.recorder, &stored, started);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_of_the_busiest_partition_killed_during_ingest_loses_nothing() {
    let cluster = harness::cluster().await;
    let stage = stage(&cluster, "leader-killed").await;
    let (_ingest, address) = cluster
        .ingest(&stage.registry_url, &stage.prefix, &[])
        .await;
    let started = Instant::now();
    let run = common::unique_name("killed");
    let publishing = load::through_ingest(address, &run, 50_000, 250, Duration::from_millis(40));

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(!publishing.is_finished(), "the load ended before the kill");
    let victim = cluster.busiest_partition(&stage.topic);
    cluster.kill(victim.leader);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.restart(victim.leader);
    let outcomes = publishing.await.unwrap();
    cluster
        .wait_in_sync(&[stage.topic.as_str()], Duration::from_secs(120))
        .await;
    let label = format!(
        "cluster: leader of partition {} (broker {}) killed during ingest",
        victim.id, victim.leader
    );
    stage.finish(&cluster, &label, &outcomes, started).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_stalled_for_twenty_seconds_loses_nothing() {
    let cluster = harness::cluster().await;
    let stage = stage(&cluster, "stalled").await;
    let producer = EventProducer::new(&cluster.config(), stage.schemas.clone())
        .unwrap()
        .with_topic_prefix(&stage.prefix);
    let started = Instant::now();
    let run = common::unique_name("stalled");
    // About 30 s of load: 100 events every 100 ms.
    let sending = load::through_producer(producer, &run, 30_000, 100, Duration::from_millis(100));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let stalled = cluster.busiest_partition(&stage.topic).leader;
    cluster.pause(stalled);
    tokio::time::sleep(Duration::from_secs(20)).await;
    cluster.resume(stalled);
    let outcomes = sending.await.unwrap();
    cluster
        .wait_in_sync(&[stage.topic.as_str()], Duration::from_secs(120))
        .await;
    let label = format!("cluster: broker {stalled} stalled 20 s during produce and consume");
    stage.finish(&cluster, &label, &outcomes, started).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_all_three_brokers_loses_nothing() {
    let cluster = harness::cluster().await;
    let stage = stage(&cluster, "rolling").await;
    let (_ingest, address) = cluster
        .ingest(&stage.registry_url, &stage.prefix, &[])
        .await;
    let started = Instant::now();
    let run = common::unique_name("rolling");
    // About 60 s of load: 250 events every 250 ms.
    let publishing = load::through_ingest(address, &run, 60_000, 250, Duration::from_millis(250));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for broker in 1..=3 {
        cluster.restart(broker);
        cluster
            .wait_in_sync(&[stage.topic.as_str()], Duration::from_secs(120))
            .await;
    }
    let outcomes = publishing.await.unwrap();
    stage
        .finish(
            &cluster,
            "cluster: rolling restart of brokers 1, 2, 3 under ingest load",
            &outcomes,
            started,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_two_of_three_brokers_down_nothing_is_acknowledged() {
    let cluster = harness::cluster().await;
    let stage = stage(&cluster, "two-down").await;
    // Sends give up after 10 s, so the answers come while the brokers are down.
    let (_ingest, address) = cluster
        .ingest(
            &stage.registry_url,
            &stage.prefix,
            &["message.timeout.ms=10000"],
        )
        .await;
    let started = Instant::now();
    let before = load::through_ingest(
        address,
        &common::unique_name("before"),
        2_000,
        250,
        Duration::from_millis(20),
    )
    .await
    .unwrap();
    assert_eq!(
        before.acked.len(),
        2_000,
        "all brokers up: every event acknowledged"
    );

    let survivor = cluster.busiest_partition(&stage.topic).leader;
    let down: Vec<i32> = (1..=3).filter(|b| *b != survivor).collect();
    for broker in &down {
        cluster.kill(*broker);
    }
    // The controller fences them once their sessions expire (9 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let during = load::through_ingest(
        address,
        &common::unique_name("during"),
        1_000,
        250,
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    for broker in &down {
        cluster.restart(*broker);
    }
    cluster
        .wait_in_sync(&[stage.topic.as_str()], Duration::from_secs(120))
        .await;
    common::figure(&format!(
        "cluster: brokers {down:?} down: sent={} acknowledged={} outcome_unknown={} refused={} first_refusal={:?}",
        during.sent.len(),
        during.acked.len(),
        during.unknown.len(),
        during.refused.len(),
        during.first_refusal
    ));
    assert!(
        during.acked.is_empty(),
        "acknowledged with one broker in sync: {:?}",
        during.acked.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(
        during.unknown.len() + during.refused.len(),
        1_000,
        "every event got an answer"
    );
    let mut outcomes = before;
    outcomes.sent.extend(during.sent);
    outcomes.unknown.extend(during.unknown);
    outcomes.refused.extend(during.refused);
    stage
        .finish(
            &cluster,
            "cluster: before, during and after two brokers down",
            &outcomes,
            started,
        )
        .await;
}
