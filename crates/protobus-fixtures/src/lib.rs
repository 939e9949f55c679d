//! Contracts compiled for tests of generated code.
//!
//! [`v1`] and [`v2`] are two versions of one contract (same package, same
//! topic): v2 adds a field to `AccountOpened` and a new event type
//! `AccountClosed`, so tests can pair a producer of one version with a
//! consumer of the other.

/// Version 1 of the `evo.accounts` contract.
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/v1/protobus_contract.rs"));
}

/// Version 2 of the `evo.accounts` contract.
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod v2 {
    include!(concat!(env!("OUT_DIR"), "/v2/protobus_contract.rs"));
}

/// The project's contract (`proto/`) plus the `shop.returns` event types
/// of `proto/returns`: the Rust side of a contract an ingest service loads
/// at run time.
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod extended {
    include!(concat!(env!("OUT_DIR"), "/extended/protobus_contract.rs"));
}

/// The directory of the extra event types of [`extended`], to copy next
/// to a copy of `proto/`.
pub const EXTENSION_PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/returns");

/// The golden contract of `protobus-build`'s snapshot test (nested event
/// types, nested and integer keys, two topics), compiled to prove its code builds.
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod golden {
    include!(concat!(env!("OUT_DIR"), "/golden/protobus_contract.rs"));
}
