//! A schema registry for Protobuf that speaks Confluent Schema Registry's
//! REST API, closely enough that Confluent's own clients cannot tell.
//!
//! The state is either in memory ([`Registry::in_memory`], for the embedded
//! default and tests) or in a compacted Kafka topic ([`Registry::kafka`]),
//! kept in Confluent's `_schemas` record format. Compatibility verdicts come
//! from [`protobus_compat`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = protobus_registry::Registry::kafka("127.0.0.1:9092", "_schemas").await?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:8081")?;
//! let app = protobus_registry::router(registry);
//! protobus_registry::serve(listener, app, None, std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
mod compatibility;
mod error;
mod limits;
mod log;
mod records;
mod registry;
mod rest;
mod state;
mod workers;

pub use error::Error;
pub use limits::Limits;
pub use records::Reference;
pub use registry::{
    Mode, PROTOBUF, Registry, SchemaById, SchemaFormat, SchemaInput, SubjectVersion, VersionSpec,
};
pub use rest::{
    CONTENT_TYPE, MAX_BODY_BYTES, REQUEST_DURATION, REQUESTS, TlsConfig, basic_auth, router, serve,
};
