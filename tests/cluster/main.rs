//! Failover scenarios on a replicated cluster (`scripts/kafka.sh cluster
//! start`: a KRaft controller and three brokers; topics with replication
//! factor 3 and `min.insync.replicas` 2 from `protobus topics apply`). Each
//! kills, stalls or restarts brokers under load through the real binaries
//! and prints a figure line; none may lose an acknowledged event.
//!
//! A test binary of its own, not run by a plain `cargo test` (it needs the
//! cluster): `scripts/test.sh` starts the cluster and runs it after the
//! single-broker suite, or run `cargo test --test cluster` with the cluster up.

// A test binary has no public API: `pub` here means "for the scenarios".
#![allow(unreachable_pub)]

#[path = "../it/common/mod.rs"]
mod common;
mod harness;
mod load;

mod failover;
mod provisioning;
mod registry_failover;
