//! The event catalog of a Protobus contract, for people who would rather
//! browse than read `.proto` files: every topic with its settings, and every
//! event type with its description (the `.proto` comments), key, headers,
//! subject, compatibility level, fields and schema. Rendered as an AsyncAPI
//! 3.0 document ([`Catalog::asyncapi`]), a Markdown page per topic
//! ([`Catalog::markdown`]) and one HTML page ([`Catalog::html`]); the
//! `protobus catalog` command writes the first two and the registry serves
//! the first and the last.

#![warn(missing_docs)]

mod asyncapi;
mod html;
mod markdown;
mod model;

pub use model::{Catalog, CatalogError, EventEntry, FieldEntry, TopicEntry};

/// The record headers Protobus writes, with what each holds: the same for
/// every event, so every rendering lists them from here.
pub const HEADERS: [(&str, &str); 3] = [
    (
        "protobus-event-id",
        "A UUID v7 per event, or the ingest caller's idempotency key: what consumers deduplicate by.",
    ),
    (
        "protobus-event-type",
        "The event's full Protobuf name: which type to decode the record as.",
    ),
    (
        "protobus-correlation-id",
        "The correlation id the sender gave, if any.",
    ),
];
