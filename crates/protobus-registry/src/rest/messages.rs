//! Confluent's request and response bodies, query parameters and path
//! segments, turned into the registry's terms and back.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use protobus_compat::CompatibilityLevel;
use serde::{Deserialize, Serialize};

use super::MAX_BODY_BYTES;
use crate::Error;
use crate::records::Reference;
use crate::registry::{Mode, SchemaById, SchemaFormat, SchemaInput, SubjectVersion, VersionSpec};

/// A request's query parameters.
pub(super) type Params = Query<HashMap<String, String>>;

/// Whether the query sets `name=true`.
pub(super) fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `?format=serialized` asks for a base64-encoded `FileDescriptorProto`.
pub(super) fn format(params: &Params) -> SchemaFormat {
    match params.get("format") {
        Some(v) if v.eq_ignore_ascii_case("serialized") => SchemaFormat::Serialized,
        _ => SchemaFormat::Text,
    }
}

/// A schema id path segment; one that is not a number names no schema.
pub(super) fn schema_id(id: &str) -> Result<i32, Error> {
    id.parse().map_err(|_| Error::schema_not_found(id))
}

/// A version path segment: a number ≥ 1, `latest`, or -1.
pub(super) fn version(text: &str) -> Result<VersionSpec, Error> {
    match text {
        "latest" | "-1" => Ok(VersionSpec::Latest),
        _ => match text.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
            _ => Err(Error::invalid_version(text)),
        },
    }
}

/// The request body as JSON, whatever content type the client declared.
pub(super) fn body<T: for<'de> Deserialize<'de>>(
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, Error> {
    let bytes = bytes.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::too_large(MAX_BODY_BYTES),
        _ => Error::bad_request(rejection.body_text()),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("Malformed JSON request body: {e}")))
}

/// The body of a registration, lookup or compatibility test.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<Reference>>,
    /// `IMPORT` mode: the id and version to register under.
    id: Option<i32>,
    version: Option<i32>,
}

impl SchemaRequest {
    pub(super) fn into_input(self) -> Result<SchemaInput, Error> {
        let schema = self
            .schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::invalid_schema("Empty schema"))?;
        Ok(SchemaInput {
            schema,
            schema_type: self.schema_type,
            references: self.references.unwrap_or_default(),
            id: self.id,
            version: self.version,
        })
    }
}

/// The body of `PUT /config[/{subject}]`: either spelling of the level.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConfigRequest {
    compatibility: Option<String>,
    compatibility_level: Option<String>,
}

impl ConfigRequest {
    pub(super) fn level(self) -> Result<CompatibilityLevel, Error> {
        let name = self
            .compatibility
            .or(self.compatibility_level)
            .unwrap_or_default();
        CompatibilityLevel::from_name(&name.to_ascii_uppercase())
            .ok_or_else(|| Error::invalid_compatibility(&name))
    }
}

/// The body of `PUT /mode[/{subject}]`.
#[derive(Debug, Deserialize)]
pub(super) struct ModeRequest {
    mode: Option<String>,
}

impl ModeRequest {
    pub(super) fn mode(self) -> Result<Mode, Error> {
        let name = self.mode.unwrap_or_default();
        Mode::from_name(&name.to_ascii_uppercase()).ok_or_else(|| Error::invalid_mode(&name))
    }
}

/// A subject version as `GET /subjects/{s}/versions/{v}` returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SubjectVersionBody<'a> {
    subject: &'a str,
    version: i32,
    id: i32,
    schema_type: &'a str,
    references: &'a [Reference],
    schema: &'a str,
}

impl<'a> From<&'a SubjectVersion> for SubjectVersionBody<'a> {
    fn from(v: &'a SubjectVersion) -> Self {
        SubjectVersionBody {
            subject: &v.subject,
            version: v.version,
            id: v.id,
            schema_type: v.schema_type,
            references: &v.references,
            schema: &v.schema,
        }
    }
}

/// A schema as `GET /schemas/ids/{id}` returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SchemaByIdBody<'a> {
    schema: &'a str,
    schema_type: &'a str,
    references: &'a [Reference],
}

impl<'a> From<&'a SchemaById> for SchemaByIdBody<'a> {
    fn from(s: &'a SchemaById) -> Self {
        SchemaByIdBody {
            schema: &s.schema,
            schema_type: s.schema_type,
            references: &s.references,
        }
    }
}
