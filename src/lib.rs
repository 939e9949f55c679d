//! Protobus: schema-first Protobuf events on Kafka.
//!
//! The `protobus` binary is the entry point for people; this library exposes
//! the pieces it is made of, so that tests (and users embedding Protobus)
//! share one definition of them.

pub mod cli;
pub mod commands;
#[cfg(feature = "otel")]
pub mod otlp;
pub mod prometheus;
mod shutdown;

/// This repository's example contract (`proto/`), generated at build time:
/// prost message types, `Event` implementations, and per topic a handler
/// trait (`ShopOrdersHandler`) with its dispatcher (`ShopOrdersDispatcher`).
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod contract {
    include!(concat!(env!("OUT_DIR"), "/protobus_contract.rs"));
}
