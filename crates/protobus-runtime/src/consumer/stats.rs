//! Counters of a running consumer, shared with whoever watches it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a running consumer, its members' added up.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events a handler took.
    pub handled: AtomicU64,
    /// Events of types this build has no handler for.
    pub unknown: AtomicU64,
    /// Handler failures (each attempt).
    pub failed: AtomicU64,
    /// Records that are not readable events (not framed, unknown schema id, undecodable).
    pub poison: AtomicU64,
    /// Records written to a dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Times an event was set aside to be retried later (its key or
    /// partition waits meanwhile, as the processing order requires).
    pub retried: AtomicU64,
    /// Events set aside now, waiting to be retried (an event of a partition
    /// revoked meanwhile no longer counts: its new owner reads it again).
    pub waiting_to_retry: AtomicU64,
    /// Batches a batch handler took.
    pub batches: AtomicU64,
    /// Times a failing batch was split in two to find the events at fault
    /// (each event left alone then gets the retry policy and, if it keeps
    /// failing, the dead-letter topic; the others are handled).
    pub batch_splits: AtomicU64,
    /// Handler calls in progress now.
    pub in_flight: AtomicU64,
    /// Records fetched and not yet taken by the run loop: librdkafka's
    /// prefetch, bounded for each member as a whole by `queued.min.messages`
    /// and `queued.max.messages.kbytes`, and the loop's read batch (at most
    /// 256). Refreshed every `commit_interval`.
    pub prefetched: AtomicU64,
    /// Partitions paused now because they reached
    /// `max_outstanding_per_partition` or wait for a retry in partition order.
    pub paused: AtomicU64,
}

/// One member's part of a gauge that the members of a consumer add up to
/// (`in_flight`, `prefetched`, `waiting_to_retry`).
#[derive(Debug, Default)]
pub(crate) struct Share(u64);

impl Share {
    /// Makes this member's part of `gauge` `now`.
    pub(crate) fn set(&mut self, gauge: &AtomicU64, now: u64) {
        if now > self.0 {
            gauge.fetch_add(now - self.0, Ordering::Relaxed);
        } else if now < self.0 {
            gauge.fetch_sub(self.0 - now, Ordering::Relaxed);
        }
        self.0 = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parts_of_a_gauge_add_up() {
        let gauge = AtomicU64::new(0);
        let (mut a, mut b) = (Share::default(), Share::default());
        a.set(&gauge, 3);
        b.set(&gauge, 5);
        assert_eq!(gauge.load(Ordering::Relaxed), 8);
        a.set(&gauge, 1);
        b.set(&gauge, 5);
        assert_eq!(gauge.load(Ordering::Relaxed), 6);
        a.set(&gauge, 0);
        b.set(&gauge, 0);
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }
}
