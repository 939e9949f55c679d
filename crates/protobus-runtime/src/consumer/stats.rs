//! Counters of a running consumer, shared with whoever watches it.

use std::sync::atomic::AtomicU64;

/// Counters of a running consumer.
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
    /// prefetch, bounded for the member as a whole by `queued.min.messages`
    /// and `queued.max.messages.kbytes`, and the loop's read batch (at most
    /// 256). Refreshed every `commit_interval`.
    pub prefetched: AtomicU64,
    /// Partitions paused now because they reached
    /// `max_outstanding_per_partition` or wait for a retry in partition order.
    pub paused: AtomicU64,
}
