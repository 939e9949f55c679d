//! What the runtime reports through the [`metrics`] facade; the process
//! chooses the exporter (the `protobus` binary serves Prometheus). Install
//! the exporter before creating producers and consumers: handles for the hot
//! paths are made once per topic and event type, so recording an event is
//! an atomic add, and a handle made with no exporter installed stays a no-op.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

/// Events Kafka acknowledged, by `topic` and `event_type`.
pub const EVENTS_PRODUCED: &str = "protobus_events_produced_total";
/// Sends that failed (including outcome unknown), by `topic` and `event_type`.
pub const EVENTS_PRODUCE_FAILED: &str = "protobus_events_produce_failed_total";
/// Sends handed to librdkafka whose answer is still awaited (a dropped
/// `PendingDelivery` stops counting, its send going on; a `SendBatch`'s
/// events count from when it is awaited).
pub const PRODUCER_QUEUE_DEPTH: &str = "protobus_producer_queue_depth";
/// Events a handler took, by `topic` and `event_type`.
pub const EVENTS_CONSUMED: &str = "protobus_events_consumed_total";
/// Handler failures (each attempt), by `topic`, `event_type` and `retryable`.
pub const EVENTS_FAILED: &str = "protobus_events_failed_total";
/// Records written to a dead-letter topic, by `topic` and `reason`.
pub const EVENTS_DEAD_LETTERED: &str = "protobus_events_dead_lettered_total";
/// Time in the handler, by `topic` and `event_type`.
pub const HANDLER_DURATION: &str = "protobus_handler_duration_seconds";
/// Records after the group's committed offset, by `topic` and `partition`
/// (from librdkafka's statistics, every `statistics.interval.ms`).
pub const CONSUMER_LAG: &str = "protobus_consumer_lag";

/// A producer's handles for one event type, and the topic it writes to
/// (made once, not per send).
#[derive(Clone)]
pub(crate) struct Produced {
    pub(crate) topic: Arc<str>,
    pub(crate) event_type: &'static str,
    pub(crate) produced: Counter,
    pub(crate) failed: Counter,
    pub(crate) queued: Gauge,
}

impl Produced {
    /// Handles for `event_type` written to `topic` (the producer's prefix
    /// included).
    pub(crate) fn new(topic: Arc<str>, event_type: &'static str) -> Self {
        let labels = [
            ("topic", topic.to_string()),
            ("event_type", event_type.to_owned()),
        ];
        Produced {
            topic,
            event_type,
            produced: counter!(EVENTS_PRODUCED, &labels),
            failed: counter!(EVENTS_PRODUCE_FAILED, &labels),
            queued: gauge!(PRODUCER_QUEUE_DEPTH),
        }
    }
}

/// A consumer's handles for one topic and event type.
#[derive(Clone)]
pub(crate) struct Consumed {
    pub(crate) consumed: Counter,
    pub(crate) handler_seconds: Histogram,
}

/// Handles by event type.
type ByType = HashMap<Arc<str>, Consumed>;

/// A consumer's handles, by topic, then event type (looked up by `&str`).
#[derive(Default)]
pub(crate) struct ConsumerInstruments {
    by_event: Mutex<HashMap<Arc<str>, ByType>>,
}

impl ConsumerInstruments {
    pub(crate) fn get(&self, topic: &Arc<str>, event_type: &Arc<str>) -> Consumed {
        let mut by_event = self.by_event.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = by_event
            .get(&**topic)
            .and_then(|types| types.get(&**event_type))
        {
            return found.clone();
        }
        let labels = [
            ("topic", topic.to_string()),
            ("event_type", event_type.to_string()),
        ];
        let made = Consumed {
            consumed: counter!(EVENTS_CONSUMED, &labels),
            handler_seconds: histogram!(HANDLER_DURATION, &labels),
        };
        by_event
            .entry(topic.clone())
            .or_default()
            .insert(event_type.clone(), made.clone());
        made
    }
}

pub(crate) fn handler_failed(topic: &str, event_type: &str, retryable: bool) {
    counter!(
        EVENTS_FAILED,
        "topic" => topic.to_owned(),
        "event_type" => event_type.to_owned(),
        "retryable" => if retryable { "true" } else { "false" }
    )
    .increment(1);
}

pub(crate) fn dead_lettered(topic: &str, reason: &'static str) {
    counter!(EVENTS_DEAD_LETTERED, "topic" => topic.to_owned(), "reason" => reason).increment(1);
}

/// Which member of a consumer reports the lag of each (topic, partition).
/// The members of one consumer share the gauge's series (one process, one
/// group), so a member zeroes a partition it no longer fetches only while
/// no other member of its consumer has taken it.
pub(crate) type LagReporters = HashMap<(String, i32), usize>;

/// Publishes the lag of the partitions the consumer's member `member`
/// fetches.
pub(crate) fn consumer_lag(
    group: &Arc<str>,
    statistics: &rdkafka::Statistics,
    reporters: &mut LagReporters,
    member: usize,
) {
    let fetched = statistics.topics.iter().flat_map(|(topic, stats)| {
        stats
            .partitions
            .iter()
            // -1 is librdkafka's internal partition; an undesired partition
            // belongs to another member now.
            .filter(|(partition, p)| **partition >= 0 && p.desired)
            // Negative: not known yet (no fetch answered).
            .map(move |(partition, p)| {
                (
                    topic.as_str(),
                    *partition,
                    (p.consumer_lag >= 0).then_some(p.consumer_lag),
                )
            })
    });
    publish_lag(group, fetched, reporters, member);
}

/// Sets the lag gauge of each (topic, partition, lag) that `member` fetched
/// (a lag not known yet keeps the last value); a partition it reported
/// before and no longer fetches (moved to another member) reads 0 here,
/// unless another member of its consumer reports it now, so that the lag
/// summed over the group's members stays true.
fn publish_lag<'a>(
    group: &Arc<str>,
    fetched: impl Iterator<Item = (&'a str, i32, Option<i64>)>,
    reporters: &mut LagReporters,
    member: usize,
) {
    let gauge = |topic: &str, partition: i32| gauge!(CONSUMER_LAG, "group" => group.to_string(), "topic" => topic.to_owned(), "partition" => partition.to_string());
    let mut now = HashSet::new();
    for (topic, partition, lag) in fetched {
        if let Some(lag) = lag {
            gauge(topic, partition).set(lag as f64);
        }
        reporters.insert((topic.to_owned(), partition), member);
        now.insert((topic, partition));
    }
    reporters.retain(|(topic, partition), by| {
        let moved = *by == member && !now.contains(&(topic.as_str(), *partition));
        if moved {
            gauge(topic, *partition).set(0.0);
        }
        !moved
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lag gauge lines of `text`, as (partition, value).
    fn lags(text: &str) -> Vec<(String, String)> {
        let mut lags: Vec<(String, String)> = text
            .lines()
            .filter(|l| l.starts_with(CONSUMER_LAG))
            .map(|l| {
                let partition = l.split("partition=\"").nth(1).unwrap();
                let partition = partition.split('"').next().unwrap().to_owned();
                (partition, l.rsplit(' ').next().unwrap().to_owned())
            })
            .collect();
        lags.sort();
        lags
    }

    /// A member, and the (topic, partition, lag) it fetched.
    type Tick<'a> = (usize, &'a [(&'a str, i32, Option<i64>)]);

    /// The lag gauge as rendered, by partition, and who reports what, after
    /// the consumer of group `billing` published each of `ticks` in turn.
    fn after(ticks: &[Tick<'_>]) -> (Vec<(String, String)>, LagReporters) {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let group: Arc<str> = Arc::from("billing");
        let mut reporters = LagReporters::new();
        metrics::with_local_recorder(&recorder, || {
            for &(member, fetched) in ticks {
                publish_lag(&group, fetched.iter().copied(), &mut reporters, member);
            }
        });
        (lags(&recorder.handle().render()), reporters)
    }

    #[test]
    fn a_partition_that_moved_to_another_member_reads_zero_here() {
        let before = [("orders", 0, Some(7)), ("orders", 1, Some(3))];
        // Partition 1 moved away; partition 0's lag is not known this time.
        let (lags, reporters) = after(&[(0, &before), (0, &[("orders", 0, None)])]);
        assert_eq!(lags, [("0".into(), "7".into()), ("1".into(), "0".into())]);
        assert_eq!(reporters, LagReporters::from([(("orders".into(), 0), 0)]));
    }

    #[test]
    fn a_partition_that_moved_to_another_member_of_the_consumer_keeps_its_lag() {
        let before = [("orders", 0, Some(7)), ("orders", 1, Some(3))];
        // Partition 1 moved to member 1, which reports it first.
        let (lags, reporters) = after(&[
            (0, &before),
            (1, &[("orders", 1, Some(5))]),
            (0, &[("orders", 0, Some(6))]),
        ]);
        assert_eq!(lags, [("0".into(), "6".into()), ("1".into(), "5".into())]);
        assert_eq!(
            reporters,
            LagReporters::from([(("orders".into(), 0), 0), (("orders".into(), 1), 1)])
        );
    }
}
