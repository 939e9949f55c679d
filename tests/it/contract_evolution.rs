//! A consumer built against version 1 of a contract reads the events of a
//! version-2 producer (a new field, a new event type), and a version-2
//! consumer reads version-1 events; against the real broker and registry.

use crate::common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protobus_fixtures::{v1, v2};
use protobus_runtime::dead_letter::headers as dlq;
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, HandlerError, UnknownEventPolicy,
};
use tokio::sync::watch;

#[derive(Clone, Default)]
struct V1Reader(Arc<Mutex<Vec<v1::evo::accounts::AccountOpened>>>);

impl v1::EvoAccountsHandler for V1Reader {
    async fn account_opened(
        &self,
        event: v1::evo::accounts::AccountOpened,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
}

#[derive(Clone, Default)]
struct V2Reader {
    opened: Arc<Mutex<Vec<v2::evo::accounts::AccountOpened>>>,
    closed: Arc<Mutex<Vec<v2::evo::accounts::AccountClosed>>>,
}

impl v2::EvoAccountsHandler for V2Reader {
    async fn account_opened(
        &self,
        event: v2::evo::accounts::AccountOpened,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.opened.lock().unwrap().push(event);
        Ok(())
    }

    async fn account_closed(
        &self,
        event: v2::evo::accounts::AccountClosed,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.closed.lock().unwrap().push(event);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_of_either_version_read_events_of_the_other() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("evolution"));
    let topic = format!("{prefix}{}", v1::evo::accounts::AccountOpened::TOPIC);
    kafka.create_topic(&topic, 3).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);

    // Version 1 was deployed first, then version 2.
    for i in 0..50 {
        let event = v1::evo::accounts::AccountOpened {
            account_id: format!("v1-{i}"),
            owner: format!("owner {i}"),
            opening_balance: i,
        };
        producer.send(&event).await.expect("v1 send");
    }
    for i in 0..50 {
        let event = v2::evo::accounts::AccountOpened {
            account_id: format!("v2-{i}"),
            owner: format!("owner {i}"),
            opening_balance: 100 + i,
            currency: "EUR".into(),
        };
        producer.send(&event).await.expect("v2 send");
    }
    // Where each AccountClosed (unknown to v1) lands: partition -> first offset.
    let mut first_closed: std::collections::BTreeMap<i32, i64> = Default::default();
    for i in 0..10 {
        let event = v2::evo::accounts::AccountClosed {
            account_id: format!("v2-{i}"),
            reason: "moved".into(),
        };
        let delivery = producer.send(&event).await.expect("v2 send");
        first_closed
            .entry(delivery.partition)
            .or_insert(delivery.offset);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopper = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|&s| s).await;
    };
    let settings = |group: &str| {
        let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name(group));
        settings.topic_prefix = prefix.clone();
        settings
    };

    let old = V1Reader::default();
    let consumer = EventConsumer::new(
        settings("v1"),
        schemas.clone(),
        v1::EvoAccountsDispatcher(old.clone()),
    )
    .unwrap();
    let old_stats = consumer.stats();
    let old_run = tokio::spawn(consumer.run(stopper(stop_rx.clone())));

    let new = V2Reader::default();
    let consumer = EventConsumer::new(
        settings("v2"),
        schemas.clone(),
        v2::EvoAccountsDispatcher(new.clone()),
    )
    .unwrap();
    let new_stats = consumer.stats();
    let new_run = tokio::spawn(consumer.run(stopper(stop_rx)));

    common::wait_until("the v1 consumer", || {
        old.0.lock().unwrap().len() == 100 && old_stats.unknown.load(Ordering::Relaxed) == 10
    })
    .await;
    common::wait_until("the v2 consumer", || {
        new.opened.lock().unwrap().len() == 100 && new.closed.lock().unwrap().len() == 10
    })
    .await;
    stop_tx.send(true).unwrap();
    old_run.await.unwrap().unwrap();
    new_run.await.unwrap().unwrap();

    // v1 reads v2's AccountOpened without the field it does not know;
    // AccountClosed has no v1 handler: counted as unknown and skipped.
    let mut old_seen = old.0.lock().unwrap().clone();
    old_seen.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let from_v2 = old_seen.iter().find(|e| e.account_id == "v2-7").unwrap();
    assert_eq!(
        (from_v2.owner.as_str(), from_v2.opening_balance),
        ("owner 7", 107)
    );
    assert_eq!(old_stats.poison.load(Ordering::Relaxed), 0);

    // v2 reads v1's events with the new field at its default.
    let new_seen = new.opened.lock().unwrap().clone();
    let from_v1 = new_seen.iter().find(|e| e.account_id == "v1-7").unwrap();
    assert_eq!(
        (from_v1.opening_balance, from_v1.currency.as_str()),
        (7, "")
    );
    let from_v2 = new_seen.iter().find(|e| e.account_id == "v2-7").unwrap();
    assert_eq!(from_v2.currency, "EUR");
    assert_eq!(new_stats.unknown.load(Ordering::Relaxed), 0);

    // The default policy dead-letters each unknown event, with its key and
    // the reason `unknown-type`.
    let dead_letter_topic = format!("{topic}.dlq");
    let letters = kafka.records(&dead_letter_topic);
    let mut keys: Vec<String> = letters
        .iter()
        .map(|l| String::from_utf8_lossy(l.0.as_deref().unwrap_or_default()).into_owned())
        .collect();
    keys.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("v2-{i}")).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(keys, expected_sorted, "one dead letter per unknown event");
    assert!(
        letters.iter().all(|l| l.2[dlq::REASON] == "unknown-type"),
        "{:?}",
        letters
            .iter()
            .map(|l| &l.2[dlq::REASON])
            .collect::<Vec<_>>()
    );

    // Skip commits past unknown events and writes no dead letter.
    let mut skipping = settings("skip");
    skipping.unknown_events = UnknownEventPolicy::Skip;
    let skip_group = skipping.group.clone();
    let skipper = V1Reader::default();
    let consumer = EventConsumer::new(
        skipping,
        schemas.clone(),
        v1::EvoAccountsDispatcher(skipper.clone()),
    )
    .unwrap();
    let skip_stats = consumer.stats();
    let (stop_skip, skip_stopped) = watch::channel(false);
    let skip_run = tokio::spawn(consumer.run(stopper(skip_stopped)));
    common::wait_until("the skipping consumer", || {
        skipper.0.lock().unwrap().len() == 100 && skip_stats.unknown.load(Ordering::Relaxed) == 10
    })
    .await;
    stop_skip.send(true).unwrap();
    skip_run.await.unwrap().unwrap();
    assert_eq!(
        kafka.committed_offsets(&skip_group, &topic, 3),
        kafka.end_offsets(&topic, 3),
        "Skip commits past the unknown events"
    );
    assert_eq!(
        kafka.records(&dead_letter_topic).len(),
        10,
        "Skip writes no dead letter"
    );

    // With UnknownEventPolicy::Stop, a v1 consumer stops at the first event
    // type it does not know, and says which one, instead of skipping it.
    let mut strict = settings("strict");
    strict.unknown_events = UnknownEventPolicy::Stop;
    let strict_group = strict.group.clone();
    let consumer = EventConsumer::new(
        strict,
        schemas,
        v1::EvoAccountsDispatcher(V1Reader::default()),
    )
    .unwrap();
    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        consumer.run(std::future::pending()),
    )
    .await
    .expect("the consumer stops by itself");
    let error = stopped
        .expect_err("an unknown event type stops it")
        .to_string();
    assert!(error.contains("evo.accounts.AccountClosed"), "{error}");
    // ...leaving the event uncommitted: no partition is committed past its
    // first unknown event (-1 or less: nothing committed).
    let committed = kafka.committed_offsets(&strict_group, &topic, 3);
    for (partition, first) in &first_closed {
        assert!(
            committed[partition] <= *first,
            "partition {partition} committed to {} past its unknown event at {first}",
            committed[partition]
        );
    }
}
