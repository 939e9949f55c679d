//! A contract as a registry holds it: the latest version of every subject
//! whose schema declares events, with the files it references. One rule set
//! for every reader of a registry's contract (the ingest service, the
//! registry's catalog).

use std::collections::{BTreeMap, HashSet};

use crate::OPTIONS_PROTO_NAME;

/// Whether a subject's latest version is a file that declares events: a
/// Protobuf schema that imports Protobus's options. Subjects named like a
/// file (`….proto`) hold imported files, reached through references.
pub fn declares_events(subject: &str, schema_type: Option<&str>, schema: &str) -> bool {
    !subject.ends_with(".proto")
        && schema_type == Some("PROTOBUF")
        && schema.contains(OPTIONS_PROTO_NAME)
}

/// Why a registry's files do not make one contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegisteredError(String);

/// The files of a registry's contract by import path, gathered subject by
/// subject within limits on their number and size.
#[derive(Debug)]
pub struct RegisteredContract {
    sources: BTreeMap<String, String>,
    /// The subject each file was first found through.
    found_through: BTreeMap<String, String>,
    texts: HashSet<String>,
    bytes: usize,
    max_bytes: usize,
    max_files: usize,
}

impl RegisteredContract {
    /// An empty contract of at most `max_files` files and `max_bytes` bytes.
    pub fn new(max_bytes: usize, max_files: usize) -> Self {
        RegisteredContract {
            sources: BTreeMap::new(),
            found_through: BTreeMap::new(),
            texts: HashSet::new(),
            bytes: 0,
            max_bytes,
            max_files,
        }
    }

    /// A file `subject` references under the import path `name`. Two
    /// subjects that need different texts of one file are refused: they
    /// would not compile together.
    pub fn add_import(
        &mut self,
        name: &str,
        source: String,
        subject: &str,
    ) -> Result<(), RegisteredError> {
        if let Some(known) = self.sources.get(name) {
            if *known != source {
                return Err(RegisteredError(format!(
                    "subjects {} and {subject} hold different versions of {name}; \
                     register the contract's current files under every subject (`protobus schema register`)",
                    self.found_through[name]
                )));
            }
            return Ok(());
        }
        self.bytes += source.len();
        if self.bytes > self.max_bytes || self.sources.len() >= self.max_files {
            return Err(RegisteredError(format!(
                "the registry's contract is larger than {} bytes or {} files",
                self.max_bytes, self.max_files
            )));
        }
        self.texts.insert(source.clone());
        self.sources.insert(name.to_owned(), source);
        self.found_through
            .insert(name.to_owned(), subject.to_owned());
        Ok(())
    }

    /// The latest schema of `subject` itself: a file already known by its
    /// text keeps its name, another is named after the subject
    /// (`<subject>.proto`; a schema's own file name is not registered).
    pub fn add_subject(&mut self, subject: &str, source: String) -> Result<(), RegisteredError> {
        if self.texts.contains(&source) {
            return Ok(());
        }
        self.add_import(&format!("{subject}.proto"), source, subject)
    }

    /// Whether no file was added.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The files by import path.
    pub fn into_sources(self) -> BTreeMap<String, String> {
        self.sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_files_are_told_from_imported_files_and_other_formats() {
        let event = "import \"protobus/options.proto\";";
        assert!(declares_events("shop.orders-x.Y", Some("PROTOBUF"), event));
        assert!(!declares_events(
            "shop/common/v1/money.proto",
            Some("PROTOBUF"),
            event
        ));
        assert!(!declares_events("shop.orders-value", None, event), "Avro");
        assert!(!declares_events("plain", Some("PROTOBUF"), "message A {}"));
    }

    #[test]
    fn files_are_kept_once_and_conflicting_versions_refused() {
        let mut files = RegisteredContract::new(1_000, 10);
        files.add_import("m.proto", "v1".into(), "a").unwrap();
        files.add_import("m.proto", "v1".into(), "b").unwrap();
        let err = files.add_import("m.proto", "v2".into(), "c").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("subjects a and c hold different versions of m.proto")
        );
        files.add_subject("s", "v1".into()).unwrap();
        files.add_subject("t", "root".into()).unwrap();
        assert_eq!(
            files.into_sources().into_iter().collect::<Vec<_>>(),
            [
                ("m.proto".into(), "v1".into()),
                ("t.proto".into(), "root".into())
            ]
        );
        let mut small = RegisteredContract::new(3, 10);
        assert!(small.add_import("a", "1234".into(), "s").is_err());
    }
}
