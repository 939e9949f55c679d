//! What the registry's operations take and give: a schema to register or
//! look up, a subject version, a schema by id, the form a schema's text is
//! given in, and version selectors.

use crate::records::Reference;
use crate::state::Stored;

/// The only schema type this registry serves.
pub const PROTOBUF: &str = "PROTOBUF";

/// A schema as a request gives it.
#[derive(Debug, Clone, Default)]
pub struct SchemaInput {
    /// The `.proto` source.
    pub schema: String,
    /// `schemaType`; `None` when the request had none (Confluent then means AVRO).
    pub schema_type: Option<String>,
    /// Registered schemas it imports.
    pub references: Vec<Reference>,
    /// The id to register it under (`IMPORT` mode only).
    pub id: Option<i32>,
    /// The version to register it as (`IMPORT` mode only).
    pub version: Option<i32>,
}

/// A subject version, as `GET /subjects/{s}/versions/{v}` returns it.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// Its version number.
    pub version: i32,
    /// The registry-wide id of its schema.
    pub id: i32,
    /// Always `PROTOBUF`.
    pub schema_type: &'static str,
    /// The registered schemas it imports.
    pub references: Vec<Reference>,
    /// The schema text as first registered.
    pub schema: String,
}

/// A schema by id, as `GET /schemas/ids/{id}` returns it.
#[derive(Debug, Clone)]
pub struct SchemaById {
    /// The schema text as first registered.
    pub schema: String,
    /// Always `PROTOBUF`.
    pub schema_type: &'static str,
    /// The registered schemas it imports.
    pub references: Vec<Reference>,
}

/// How a schema's text is returned (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaFormat {
    /// As registered.
    #[default]
    Text,
    /// A base64-encoded `FileDescriptorProto` (`format=serialized`), as
    /// Confluent's Python and Go deserializers ask for it.
    Serialized,
}

impl SchemaFormat {
    pub(super) fn render(self, stored: &Stored) -> String {
        match self {
            SchemaFormat::Text => stored.schema.to_string(),
            SchemaFormat::Serialized => stored.compiled.serialized(),
        }
    }
}

/// Which version(s) a compatibility check is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The latest live version.
    Latest,
    /// A version number.
    Number(i32),
}
