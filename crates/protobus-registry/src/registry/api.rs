//! What the registry's operations take and give, in Confluent's terms: a
//! schema as a request gives it, a subject version and a schema by id as
//! the API returns them, the text format, and version selectors.

use serde::Serialize;

use crate::Error;
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
}

/// A subject version, as `GET /subjects/{s}/versions/{v}` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
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
    /// The format a `format` query parameter asks for.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("serialized") => SchemaFormat::Serialized,
            _ => SchemaFormat::Text,
        }
    }

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

impl VersionSpec {
    /// Parses a version path segment: a number ≥ 1, `latest`, or -1.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "latest" | "-1" => Ok(VersionSpec::Latest),
            _ => match text.parse::<i32>() {
                Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
                _ => Err(Error::invalid_version(text)),
            },
        }
    }
}
