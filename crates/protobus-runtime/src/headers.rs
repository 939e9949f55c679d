//! Kafka header names Protobus writes on every event. When it was sent is
//! the record's own timestamp (`CreateTime`, set by the producer), which
//! every Kafka client reads, so no header repeats it.

/// A unique id per event (UUID v7), for de-duplication and tracing.
pub const EVENT_ID: &str = "protobus-event-id";
/// Ties together the events of one business operation.
pub const CORRELATION_ID: &str = "protobus-correlation-id";
/// The fully-qualified Protobuf type of the payload.
pub const EVENT_TYPE: &str = "protobus-event-type";
