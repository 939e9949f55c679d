//! Joining and leaving on librdkafka's mock cluster, and settings refused when built.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;

use super::*;
use crate::error::HandlerError;
use crate::retry::RetryPolicy;

/// Takes nothing: these tests only join and leave.
struct NoEvents;

impl Dispatch for NoEvents {
    fn topics(&self) -> Vec<&'static str> {
        vec!["events"]
    }

    fn handles(&self, topic: &str) -> bool {
        topic == "events"
    }

    async fn dispatch<'a>(&'a self, event: RawEvent<'a>) -> Result<Dispatched, HandlerError> {
        panic!("no event was sent, yet {} came", event.full_name)
    }
}

/// Runs a member of a fresh group on `cluster` for 2 s (it joins in about
/// 0.1 s), lets `before_stop` act on the cluster, stops the member with a
/// close timeout of 2 s and returns how `run` ended.
async fn join_then_stop(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    before_stop: impl FnOnce(),
) -> Result<(), Error> {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers(), "closing");
    settings
        .kafka
        .set("group.protocol", "consumer")
        .set("statistics.interval.ms", "200");
    settings.close_timeout = Duration::from_secs(2);
    let registry = Arc::new(SchemaRegistry::new("http://127.0.0.1:9").unwrap());
    let consumer = EventConsumer::new(settings, registry, NoEvents).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(2)).await;
    before_stop();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("run returns within its close timeout")
        .expect("the consumer task")
}

#[test]
fn a_retry_policy_that_cannot_work_is_refused_when_the_consumer_is_built() {
    let registry = Arc::new(SchemaRegistry::new("http://127.0.0.1:9").unwrap());
    let mut settings = ConsumerSettings::new("127.0.0.1:9", "refusing");
    settings.retry.jitter = f64::NAN;
    let err = EventConsumer::new(settings, registry.clone(), NoEvents)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Config(reason) if reason.contains("jitter")),
        "{err}"
    );
    let mut settings = ConsumerSettings::new("127.0.0.1:9", "refusing");
    settings.retry_by_topic.insert(
        "events".into(),
        RetryPolicy {
            jitter: -0.5,
            ..RetryPolicy::default()
        },
    );
    let err = EventConsumer::new(settings, registry, NoEvents)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("retry policy of events"), "{err}");
}

#[test]
fn a_consumer_of_no_members_is_refused_when_built() {
    let registry = Arc::new(SchemaRegistry::new("http://127.0.0.1:9").unwrap());
    let mut settings = ConsumerSettings::new("127.0.0.1:9", "refusing");
    settings.members = 0;
    let err = EventConsumer::new(settings, registry, NoEvents)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Config(reason) if reason == "members must be at least 1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_member_closes_within_its_close_timeout() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("events", 2, 1).unwrap();
    join_then_stop(&cluster, || {})
        .await
        .expect("a clean close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_close_that_cannot_finish_ends_run_after_the_close_timeout() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("events", 2, 1).unwrap();
    // Every answer from the broker now takes longer than the close may.
    let slow = || {
        cluster
            .broker_round_trip_time(1, Duration::from_secs(20))
            .unwrap()
    };
    let err = join_then_stop(&cluster, slow).await.unwrap_err();
    let ErrorKind::CloseTimedOut {
        group,
        timeout,
        state,
    } = err.kind()
    else {
        panic!("expected a close timeout, got {err}");
    };
    assert_eq!(
        (group.as_str(), *timeout),
        ("closing", Duration::from_secs(2))
    );
    assert!(state.contains("join state"), "{err}");
    cluster.broker_round_trip_time(1, Duration::ZERO).unwrap();
}
