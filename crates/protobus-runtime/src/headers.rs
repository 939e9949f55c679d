//! Kafka header names Protobus writes on every event.

/// A unique id per event (UUID v7), for de-duplication and tracing.
pub const EVENT_ID: &str = "protobus-event-id";
/// Ties together the events of one business operation.
pub const CORRELATION_ID: &str = "protobus-correlation-id";
/// The fully-qualified Protobuf type of the payload.
pub const EVENT_TYPE: &str = "protobus-event-type";
/// When the event was produced, in milliseconds since the Unix epoch.
pub const TIMESTAMP: &str = "protobus-timestamp";
