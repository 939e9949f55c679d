//! The broker contract everything else relies on, checked against a real
//! Kafka: an idempotent producer loses and duplicates nothing, a consumer
//! group shares partitions and keeps per-partition order, and a new member
//! resumes exactly after the committed offsets.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{mpsc, watch};

const PARTITIONS: i32 = 6;
const MESSAGES: u64 = 10_000;
const KEYS: u64 = 97;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Consumed {
    member: usize,
    partition: i32,
    offset: i64,
    key: String,
    seq: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_producer_and_consumer_group_lose_nothing() {
    let kafka = common::kafka().await;
    let topic = common::unique_name("group-roundtrip");
    let group = common::unique_name("group");
    kafka.create_topic(&topic, PARTITIONS).await;

    // Two members join first, so that both own partitions before any record exists.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (records_tx, mut records_rx) = mpsc::unbounded_channel();
    let members: Vec<Arc<StreamConsumer>> = (0..2)
        .map(|_| {
            let consumer = kafka.manual_commit_consumer(&group);
            consumer.subscribe(&[&topic]).expect("subscribe");
            Arc::new(consumer)
        })
        .collect();
    let tasks: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(member, consumer)| {
            tokio::spawn(consume(
                member,
                consumer.clone(),
                records_tx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(records_tx);
    let owned = wait_for_assignment(&members, Duration::from_secs(60)).await;
    assert!(
        owned.iter().all(|&n| n > 0) && owned.iter().sum::<usize>() == PARTITIONS as usize,
        "both members should own partitions, got {owned:?}"
    );

    let producer = kafka.idempotent_producer();
    let produced = produce(&producer, &topic, 0..MESSAGES).await;

    let mut consumed = Vec::with_capacity(MESSAGES as usize);
    let deadline = Instant::now() + Duration::from_secs(120);
    while consumed.len() < MESSAGES as usize {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, records_rx.recv()).await {
            Ok(Some(record)) => consumed.push(record),
            _ => panic!("consumed only {} of {MESSAGES} records", consumed.len()),
        }
    }
    stop_tx.send(true).expect("stop members");
    for task in tasks {
        task.await.expect("member task");
    }
    // Anything beyond the 10 000 would be a duplicate.
    while let Ok(extra) = records_rx.try_recv() {
        consumed.push(extra);
    }

    // No loss, no duplicates: exactly the produced (partition, offset) pairs, each once.
    let consumed_positions: BTreeSet<(i32, i64)> =
        consumed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(
        consumed.len(),
        MESSAGES as usize,
        "duplicates were consumed"
    );
    assert_eq!(
        consumed_positions,
        produced.keys().copied().collect(),
        "consumed records differ from the produced ones"
    );
    for record in &consumed {
        assert_eq!(
            produced[&(record.partition, record.offset)],
            record.seq,
            "payload at {}/{} differs",
            record.partition,
            record.offset
        );
        assert_eq!(record.key, key_of(record.seq));
    }
    let seqs: BTreeSet<u64> = consumed.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (0..MESSAGES).collect(),
        "lost or duplicated sequence numbers"
    );

    // Per-partition order: offsets rise in delivery order, and so does each key's sequence.
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<&str, u64> = HashMap::new();
    for record in &consumed {
        if let Some(prev) = last_offset.insert(record.partition, record.offset) {
            assert!(
                record.offset > prev,
                "partition {} went from {prev} to {}",
                record.partition,
                record.offset
            );
        }
        if let Some(prev) = last_seq.insert(&record.key, record.seq) {
            assert!(record.seq > prev, "key {} reordered", record.key);
        }
    }

    // Both members did work, on disjoint partitions.
    let by_member: Vec<BTreeSet<i32>> = (0..2)
        .map(|m| {
            consumed
                .iter()
                .filter(|r| r.member == m)
                .map(|r| r.partition)
                .collect()
        })
        .collect();
    assert!(
        by_member.iter().all(|p| !p.is_empty()),
        "a member consumed nothing: {by_member:?}"
    );
    assert!(by_member[0].is_disjoint(&by_member[1]), "{by_member:?}");

    // The group committed the end of every partition.
    let mut end_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for &(partition, offset) in produced.keys() {
        let end = end_offsets.entry(partition).or_default();
        *end = (*end).max(offset + 1);
    }
    drop(members);
    assert_eq!(
        kafka.committed_offsets(&group, &topic, PARTITIONS),
        end_offsets
    );

    // A new member of the same group resumes after the committed offsets.
    let more = produce(&producer, &topic, MESSAGES..MESSAGES + 500).await;
    let newcomer = Arc::new(kafka.manual_commit_consumer(&group));
    newcomer.subscribe(&[&topic]).expect("subscribe");
    let (stop_tx, stop_rx) = watch::channel(false);
    let (records_tx, mut records_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(consume(0, newcomer.clone(), records_tx, stop_rx));
    let mut resumed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while resumed.len() < more.len() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, records_rx.recv()).await {
            Ok(Some(record)) => resumed.push(record),
            _ => panic!(
                "the new member got {} of {} new records",
                resumed.len(),
                more.len()
            ),
        }
    }
    // Give a wrongly rewound member time to show old records.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_tx.send(true).expect("stop");
    task.await.expect("newcomer task");
    while let Ok(extra) = records_rx.try_recv() {
        resumed.push(extra);
    }
    let resumed_positions: BTreeSet<(i32, i64)> =
        resumed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(resumed.len(), more.len(), "the new member re-read records");
    assert_eq!(resumed_positions, more.keys().copied().collect());
    for record in &resumed {
        assert!(
            record.offset >= end_offsets[&record.partition],
            "{record:?} was before the committed offset"
        );
    }
}

fn key_of(seq: u64) -> String {
    format!("key-{:02}", seq % KEYS)
}

/// Sends `seqs` keyed by `key_of`; returns where each landed: (partition, offset) → seq.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    seqs: std::ops::Range<u64>,
) -> BTreeMap<(i32, i64), u64> {
    let mut pending = Vec::new();
    for seq in seqs {
        let key = key_of(seq);
        let payload = seq.to_string();
        let record = FutureRecord::to(topic).key(&key).payload(&payload);
        let delivery = producer
            .send_result(record)
            .unwrap_or_else(|(err, _)| panic!("enqueue {seq}: {err}"));
        pending.push((seq, delivery));
    }
    let mut landed = BTreeMap::new();
    for (seq, delivery) in pending {
        let delivered = delivery
            .await
            .expect("producer dropped")
            .unwrap_or_else(|(err, _)| panic!("delivery of {seq} failed: {err}"));
        assert!(
            landed
                .insert((delivered.partition, delivered.offset), seq)
                .is_none(),
            "two records at one offset"
        );
    }
    landed
}

/// One group member: hands each record on, stores its offset only after that
/// (at-least-once), commits every so often and once more when stopped.
async fn consume(
    member: usize,
    consumer: Arc<StreamConsumer>,
    records: mpsc::UnboundedSender<Consumed>,
    mut stop: watch::Receiver<bool>,
) {
    let mut since_commit = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = consumer.recv() => {
                let message = message.expect("consume");
                let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key");
                let seq = std::str::from_utf8(message.payload().expect("payload"))
                    .expect("utf-8 payload")
                    .parse()
                    .expect("numeric payload");
                let record = Consumed { member, partition: message.partition(), offset: message.offset(), key, seq };
                if records.send(record).is_err() {
                    break;
                }
                consumer.store_offset_from_message(&message).expect("store offset");
                since_commit += 1;
                if since_commit >= 500 {
                    commit(&consumer, CommitMode::Async);
                    since_commit = 0;
                }
            }
        }
    }
    commit(&consumer, CommitMode::Sync);
}

fn commit(consumer: &StreamConsumer, mode: CommitMode) {
    match consumer.commit_consumer_state(mode) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(err) => panic!("commit failed: {err}"),
    }
}

/// Drives nothing itself (the member tasks poll); waits until the group has
/// assigned every partition. Returns how many partitions each member owns.
async fn wait_for_assignment(members: &[Arc<StreamConsumer>], within: Duration) -> Vec<usize> {
    let deadline = Instant::now() + within;
    loop {
        let owned: Vec<usize> = members
            .iter()
            .map(|m| m.assignment().map(|a| a.count()).unwrap_or(0))
            .collect();
        if owned.iter().all(|&n| n > 0) && owned.iter().sum::<usize>() == PARTITIONS as usize {
            return owned;
        }
        if Instant::now() > deadline {
            return owned;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
