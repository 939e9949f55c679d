//! The runtime of Protobus: what generated code and services call.
//!
//! - [`wire`]: Confluent's wire format for Protobuf, byte for byte.
//! - [`Event`]: implemented by generated code for every message marked as an
//!   event in the contract (topic, key, subject, message indexes).
//! - [`SchemaRegistry`]: registers each event type once and caches ids and
//!   writer types, so no message costs a registry request after warm-up.
//! - [`EventProducer`]: `send(&event)` → partition and offset, idempotent, `acks=all`.
//! - [`EventConsumer`]: runs generated handler traits ([`Dispatch`]) in a
//!   consumer group, committing only what was handled.

#![warn(missing_docs)]
mod answer_groups;
mod consumer;
pub mod dead_letter;
mod delivery_reports;
mod error;
mod event;
mod event_id;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
pub mod headers;
pub mod instruments;
mod kafka_producer;
mod pending_delivery;
mod producer;
mod producer_settings;
mod producer_types;
mod registration;
mod registry_rest;
mod registry_tls;
mod retry;
mod schemas;
mod send_batch;
mod topic_handles;
pub mod traceparent;
pub mod wire;

pub use consumer::{
    Batched, ConsumerSettings, ConsumerStats, Dispatch, Dispatched, EventConsumer, EventContext,
    ProcessingOrder, RawEvent, UnknownEventPolicy,
};
pub use error::{Error, ErrorKind, HandlerError};
pub use event::{
    Contract, Event, EventInfo, ProtoFile, SubjectNameStrategy, TopicInfo, TopicSettings,
};
pub use pending_delivery::PendingDelivery;
pub use producer::{Delivery, EventProducer, SendOptions};
pub use registration::Registration;
pub use registry_rest::{
    RegisteredFiles, RegisteredImport, RegisteredReference, RegisteredVersion,
};
pub use registry_tls::RegistryTls;
pub use retry::RetryPolicy;
pub use schemas::{DEFAULT_TIMEOUT, RegistryUrl, SchemaRegistry, unreachable};
pub use send_batch::{Deliveries, SendBatch};

/// Re-exported for generated code.
#[doc(hidden)]
pub use prost;
