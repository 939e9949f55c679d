//! The Protobus gRPC ingest service: clients in any language send events
//! (binary Protobuf or proto3 JSON) over gRPC; each is validated against the
//! contract, framed in Confluent's wire format and written to Kafka by the
//! idempotent producer. A success result means Kafka acknowledged the event;
//! a delivery that timed out is reported as "outcome unknown", never as success.
//!
//! The API is `proto/protobus/ingest/v1/ingest.proto` ([`api`]); the server
//! also answers `grpc.health.v1` and server reflection ([`serve`]).

#![warn(missing_docs)]

pub mod api {
    //! The generated ingest API: messages, [`ingest_server`] and [`ingest_client`].
    #![allow(
        missing_docs,
        missing_debug_implementations,
        unreachable_pub,
        clippy::all
    )]
    tonic::include_proto!("protobus.ingest.v1");

    /// The import path of the API's `.proto` file.
    pub const PROTO_NAME: &str = "protobus/ingest/v1/ingest.proto";

    /// The API's `.proto` source, for clients in other languages
    /// (`protobus contract export` writes it next to the contract).
    pub const PROTO: &str = include_str!("../../../proto/protobus/ingest/v1/ingest.proto");

    /// The encoded `FileDescriptorSet` of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/ingest_descriptors.bin"));
}

pub mod auth;
mod budget;
pub mod codec;
mod contracts;
mod error;
pub mod instruments;
mod server;
mod service;
pub mod types;
mod wire_check;

pub use budget::{Charged, ChargedBody};
pub use contracts::{ContractSource, Loaded, MAX_CONTRACT_BYTES, MAX_CONTRACT_FILES};
pub use error::Error;
pub use server::{serve, serve_tls, tls};
pub use service::{EVENT_OVERHEAD_BYTES, IngestService, IngestSettings};

/// The Kafka key the service would give a binary `payload` of event type
/// `full_name` (for tests and tools; the service itself does this per event).
pub fn key_of(
    contract: &'static protobus_runtime::Contract,
    descriptors: &[u8],
    full_name: &str,
    payload: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    let types = types::EventTypes::new(contract, descriptors)?;
    let event_type = types.get(full_name).map_err(Error::rejected)?;
    event_type.check_binary(payload).map_err(Error::rejected)
}
