//! One module per command of the `protobus` binary, each holding its
//! arguments and its `run`; flag groups several share live in [`flags`].

pub mod catalog;
pub mod contract;
pub mod dev;
pub mod dlq;
pub mod flags;
pub mod ingest;
pub mod lag;
pub mod publish;
pub mod registry;
pub mod schema;
pub mod tail;
pub mod topics;

mod kafka_client;
mod progress;
mod records;
