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

/// The golden contract of `protobus-build`'s snapshot test (nested event
/// types, nested and integer keys, two topics), compiled to prove its code builds.
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod golden {
    include!(concat!(env!("OUT_DIR"), "/golden/protobus_contract.rs"));
}
