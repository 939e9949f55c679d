//! A contract from a registry: the latest version of every Protobuf subject
//! that declares events, with the files it references at the versions it
//! references. Files registered under their import path (the subjects of
//! imported files) are reached through those references only.

use std::collections::BTreeMap;

use protobus_contract::OPTIONS_PROTO_NAME;
use protobus_runtime::SchemaRegistry;

use super::{MAX_CONTRACT_FILES, check_size};
use crate::Error;

/// Most subjects read from a registry.
const MAX_SUBJECTS: usize = 100_000;

/// The sources of the registry's event files and their imports, by import
/// path; an event file registered under no import path is named after its
/// subject (`<subject>.proto`).
pub(super) async fn sources(client: &SchemaRegistry) -> Result<BTreeMap<String, String>, Error> {
    let registry = |e: protobus_runtime::Error| Error::contract(e.to_string());
    let subjects = client.subjects().await.map_err(registry)?;
    if subjects.len() > MAX_SUBJECTS {
        return Err(Error::contract(format!(
            "{} has more than {MAX_SUBJECTS} subjects",
            client.url()
        )));
    }
    let mut files = Files::default();
    for subject in subjects.iter().filter(|s| !s.ends_with(".proto")) {
        let Some(latest) = client.version(subject, -1).await.map_err(registry)? else {
            continue; // deleted since the listing
        };
        // Events are declared with Protobus's options, which a file must import.
        if latest.schema_type.as_deref() != Some("PROTOBUF")
            || !latest.schema.contains(OPTIONS_PROTO_NAME)
        {
            continue;
        }
        let imports = client
            .imports(latest.references, MAX_CONTRACT_FILES)
            .await
            .map_err(|e| Error::contract(format!("subject {subject}: {e}")))?;
        for import in imports {
            files.add(&import.reference.name, import.schema, subject)?;
        }
        files.add_root(subject, latest.schema)?;
    }
    if files.sources.is_empty() {
        return Err(Error::contract(format!(
            "{} has no Protobuf subject that declares events",
            client.url()
        )));
    }
    Ok(files.sources)
}

#[derive(Default)]
struct Files {
    sources: BTreeMap<String, String>,
    /// The subject each file was first found through.
    found_through: BTreeMap<String, String>,
    bytes: usize,
}

impl Files {
    fn add(&mut self, name: &str, source: String, subject: &str) -> Result<(), Error> {
        if let Some(known) = self.sources.get(name) {
            if *known != source {
                return Err(Error::contract(format!(
                    "subjects {} and {subject} hold different versions of {name}; \
                     register the contract's current files under every subject (`protobus schema register`)",
                    self.found_through[name]
                )));
            }
            return Ok(());
        }
        self.bytes += source.len();
        check_size(
            self.bytes,
            self.sources.len() + 1,
            "the registry's contract",
        )?;
        self.sources.insert(name.to_owned(), source);
        self.found_through
            .insert(name.to_owned(), subject.to_owned());
        Ok(())
    }

    /// A subject's own file: one already known by its text keeps its name.
    fn add_root(&mut self, subject: &str, source: String) -> Result<(), Error> {
        if self.sources.values().any(|known| *known == source) {
            return Ok(());
        }
        self.add(&format!("{subject}.proto"), source, subject)
    }
}
