//! The service's limits and windows.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Tokens;

/// Limits and windows of the ingest service.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Largest payload of one event.
    pub max_event_bytes: usize,
    /// Largest request (one batch).
    pub max_request_bytes: usize,
    /// Memory that requests being published may hold at once: their bytes
    /// plus [`EVENT_OVERHEAD_BYTES`] per event. Beyond it unary calls get
    /// RESOURCE_EXHAUSTED and streams stop being read until it drains.
    pub max_in_flight_bytes: usize,
    /// How long an idempotency key's result is remembered.
    pub idempotency_window: Duration,
    /// How many idempotency keys are remembered at most.
    pub idempotency_capacity: usize,
    /// How many bytes remembered idempotency results may take at most.
    pub idempotency_max_bytes: usize,
    /// Longest idempotency key accepted, in bytes.
    pub max_idempotency_key_bytes: usize,
    /// Bearer tokens callers must send; `None`: no authentication.
    pub tokens: Option<Arc<Tokens>>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_event_bytes: 1024 * 1024,
            max_request_bytes: 16 * 1024 * 1024,
            max_in_flight_bytes: 16 * 1024 * 1024,
            idempotency_window: Duration::from_secs(600),
            idempotency_capacity: 1_000_000,
            idempotency_max_bytes: 64 * 1024 * 1024,
            max_idempotency_key_bytes: 256,
            tokens: None,
        }
    }
}

/// What an event holds while in flight besides its bytes: its task, the
/// Kafka message and its ack. Charging it keeps small events from filling
/// memory: 16 MiB of 100-byte events would otherwise be 120 000 at once,
/// which the heap profile showed as 58 MiB of task state alone.
pub const EVENT_OVERHEAD_BYTES: usize = 1024;
/// Batches of one `PublishStream` being published or waiting to be read by
/// the client; the stream is not read beyond them (the in-flight budget also
/// bounds their bytes). What is in flight when a broker dies may time out
/// (outcome unknown): more batches cover Kafka's acknowledgement latency
/// better and expose more events to an outage.
pub(super) const STREAM_BATCHES_IN_FLIGHT: usize = 32;
