//! Support shared by the integration tests, by concern. Every test that
//! needs Kafka goes through [`kafka()`], which fails the test (never skips it)
//! when the broker cannot be reached.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod billing;
mod consumers;
mod faults;
mod files;
mod ingest;
mod kafka;
mod logs;
mod metrics;
pub mod pki;
mod processes;
mod registry;
mod toolchains;
mod waits;

pub use consumers::{Count, Recorder, RunningConsumer, start_consumer};
pub use faults::{Delivery, figure};
pub use files::copy_dir;
pub use ingest::{ingest_order, serve_ingest};
pub use kafka::{
    Kafka, OrdersTopic, Record, bootstrap_servers, event_id_copies, kafka, orders_topic,
    topic_configs, unique_name,
};
pub use logs::CapturedLogs;
pub use metrics::{scrape, series, value};
pub use processes::{Process, free_address, get_json, protobus, wait_for_http};
pub use registry::serve_registry;
pub use toolchains::{confluent_python, go_tools, node_modules};
pub use waits::wait_until;
