//! The registry's failures, each with the `error_code` Confluent Schema
//! Registry gives the same situation: the codes are the registry's error
//! contract, for in-process callers as for REST clients.

/// A registry failure: Confluent's `error_code` and message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: u32,
    message: String,
}

impl Error {
    fn new(code: u32, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// Confluent's `error_code`, e.g. 40401.
    pub fn code(&self) -> u32 {
        self.code
    }

    /// The HTTP status the code implies: its first three digits (40401 is
    /// a 404), or the code itself when it has three.
    pub fn status(&self) -> u16 {
        let status = if self.code >= 1000 {
            self.code / 100
        } else {
            self.code
        };
        u16::try_from(status).unwrap_or(500)
    }

    pub(crate) fn subject_not_found(subject: &str) -> Self {
        Self::new(40401, format!("Subject '{subject}' not found."))
    }
    pub(crate) fn version_not_found(subject: &str, version: i32) -> Self {
        Self::new(
            40402,
            format!("Version {version} not found for subject '{subject}'."),
        )
    }
    pub(crate) fn schema_not_found(what: impl std::fmt::Display) -> Self {
        Self::new(40403, format!("Schema {what} not found"))
    }
    pub(crate) fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            40404,
            format!(
                "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
            ),
        )
    }
    pub(crate) fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }
    pub(crate) fn version_soft_deleted(subject: &str, version: i32) -> Self {
        Self::new(
            40406,
            format!(
                "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
            ),
        )
    }
    pub(crate) fn version_not_soft_deleted(subject: &str, version: i32) -> Self {
        Self::new(
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
            ),
        )
    }
    pub(crate) fn subject_config_not_found(subject: &str) -> Self {
        Self::new(
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }
    pub(crate) fn incompatible(message: String) -> Self {
        Self::new(409, message)
    }
    pub(crate) fn invalid_schema(message: impl Into<String>) -> Self {
        Self::new(42201, message)
    }
    pub(crate) fn invalid_version(version: &str) -> Self {
        Self::new(
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }
    pub(crate) fn invalid_compatibility(level: &str) -> Self {
        Self::new(
            42203,
            format!(
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive; got '{level}'"
            ),
        )
    }
    pub(crate) fn still_referenced(subject: &str, version: i32, by: &[i32]) -> Self {
        Self::new(
            42206,
            format!(
                "One or more references exist to the schema {{subject={subject},version={version}}}: schema ids {by:?} refer to it"
            ),
        )
    }
    pub(crate) fn too_many_references(count: usize, limit: usize) -> Self {
        Self::new(
            42201,
            format!(
                "Invalid schema: it imports {count} or more files through references, more than the limit of {limit}"
            ),
        )
    }
    pub(crate) fn schema_too_large(what: &str, bytes: usize, limit: usize) -> Self {
        Self::new(
            42201,
            format!(
                "Invalid schema: its {what} takes {bytes} bytes, more than the limit of {limit}"
            ),
        )
    }
    pub(crate) fn registry_full(stored: usize, adding: usize, limit: usize) -> Self {
        Self::new(
            42205,
            format!(
                "Operation not permitted: registered schemas take {stored} bytes and this one {adding} more, beyond the registry's limit of {limit}; delete unused versions permanently or raise the limit"
            ),
        )
    }
    pub(crate) fn operation_not_permitted(message: String) -> Self {
        Self::new(42205, message)
    }
    pub(crate) fn invalid_mode(mode: &str) -> Self {
        Self::new(
            42204,
            format!(
                "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT; got '{mode}'"
            ),
        )
    }
    pub(crate) fn subject_mode_not_found(subject: &str) -> Self {
        Self::new(
            40409,
            format!("Subject '{subject}' does not have subject-level mode configured"),
        )
    }
    pub(crate) fn timed_out(what: &str, limit: std::time::Duration) -> Self {
        Self::new(
            50002,
            format!("Operation timed out: {what} took longer than {limit:?}"),
        )
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, format!("Internal Server Error: {}", message.into()))
    }
    pub(crate) fn store(message: impl Into<String>) -> Self {
        Self::new(50001, message)
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(413, format!("Request body is larger than {limit} bytes"))
    }
    pub(crate) fn not_found_path(path: &str) -> Self {
        Self::new(404, format!("HTTP 404 Not Found: {path}"))
    }
}
