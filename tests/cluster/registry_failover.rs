//! Two `protobus registry` instances share one schemas log on the cluster;
//! the broker leading it is killed while both take registrations. Every id
//! handed out belongs to one schema only, and every acknowledged
//! registration is there when a third instance reads the log afterwards.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{common, harness};

/// The schema of registration `i`: a message of its own.
fn schema(i: usize) -> String {
    format!("syntax = \"proto3\";\npackage failover;\nmessage Event{i} {{ string id = 1; }}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_through_two_instances_survive_the_log_leaders_death() {
    const REGISTRATIONS: usize = 200;
    let cluster = harness::cluster().await;
    let topic = common::unique_name("_schemas-failover");
    let (_a, a) = cluster.registry(&topic).await;
    let (_b, b) = cluster.registry(&topic).await;
    let started = Instant::now();

    let registering = tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // Subject -> (id, schema index), for what was acknowledged.
        let mut acked: HashMap<String, (i64, usize)> = HashMap::new();
        let mut failed = 0;
        for i in 0..REGISTRATIONS {
            // Runs of ten per instance: each switch makes the other take over
            // the log's one transactional writer.
            let url = if (i / 10) % 2 == 0 { &a } else { &b };
            let subject = format!("failover-{i}-value");
            let answer = http
                .post(format!("{url}/subjects/{subject}/versions"))
                .json(&json!({ "schema": schema(i), "schemaType": "PROTOBUF" }))
                .send()
                .await;
            let body: Option<Value> = match answer {
                Ok(response) if response.status().is_success() => response.json().await.ok(),
                _ => None,
            };
            match body.and_then(|b| b["id"].as_i64()) {
                Some(id) => {
                    acked.insert(subject, (id, i));
                }
                None => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        (acked, failed)
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader = cluster.partitions(&topic)[0].leader;
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.restart(leader);
    let (acked, failed) = registering.await.unwrap();
    cluster
        .wait_in_sync(&[topic.as_str()], Duration::from_secs(120))
        .await;

    // One id per schema: two schemas never share one.
    let mut by_id: HashMap<i64, usize> = HashMap::new();
    for (id, schema) in acked.values() {
        if let Some(other) = by_id.insert(*id, *schema) {
            assert_eq!(other, *schema, "id {id} handed out for two schemas");
        }
    }

    // A third instance reads the log from the start: every acknowledged
    // registration is there, under its id.
    let (_c, c) = cluster.registry(&topic).await;
    let mut lost = Vec::new();
    for (subject, (id, schema_index)) in &acked {
        let found = common::get_json(&format!("{c}/subjects/{subject}/versions/latest")).await;
        if found["id"].as_i64() != Some(*id) || found["schema"] != schema(*schema_index) {
            lost.push((subject.clone(), found));
        }
    }
    common::figure(&format!(
        "cluster: schemas log leader (broker {leader}) killed during registrations: sent={REGISTRATIONS} acknowledged={} failed={failed} distinct_ids={} lost={} seconds={:.1}",
        acked.len(),
        by_id.len(),
        lost.len(),
        started.elapsed().as_secs_f64()
    ));
    assert!(lost.is_empty(), "acknowledged registrations lost: {lost:?}");
    assert!(
        acked.len() > REGISTRATIONS / 2,
        "most registrations went through"
    );
}
