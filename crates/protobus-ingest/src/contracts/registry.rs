//! A contract from a registry, over its REST API: the latest version of
//! every subject that declares events, with the files it references at the
//! versions it references ([`RegisteredContract`] says which and names them).

use std::collections::BTreeMap;

use protobus_contract::{RegisteredContract, declares_events};
use protobus_runtime::SchemaRegistry;

use super::{MAX_CONTRACT_BYTES, MAX_CONTRACT_FILES};
use crate::Error;

/// Most subjects read from a registry.
const MAX_SUBJECTS: usize = 100_000;

/// The sources of the registry's event files and their imports, by import path.
pub(super) async fn sources(client: &SchemaRegistry) -> Result<BTreeMap<String, String>, Error> {
    let registry = |e: protobus_runtime::Error| Error::contract(e.to_string());
    let subjects = client.subjects().await.map_err(registry)?;
    if subjects.len() > MAX_SUBJECTS {
        return Err(Error::contract(format!(
            "{} has more than {MAX_SUBJECTS} subjects",
            client.url()
        )));
    }
    let mut files = RegisteredContract::new(MAX_CONTRACT_BYTES, MAX_CONTRACT_FILES);
    for subject in &subjects {
        if subject.ends_with(".proto") {
            continue; // imported files, reached through references
        }
        let Some(latest) = client.version(subject, -1).await.map_err(registry)? else {
            continue; // deleted since the listing
        };
        if !declares_events(subject, latest.schema_type.as_deref(), &latest.schema) {
            continue;
        }
        let imports = client
            .imports(latest.references, MAX_CONTRACT_FILES)
            .await
            .map_err(|e| Error::contract(format!("subject {subject}: {e}")))?;
        for import in imports {
            files
                .add_import(&import.reference.name, import.schema, subject)
                .map_err(Error::contract)?;
        }
        files
            .add_subject(subject, latest.schema)
            .map_err(Error::contract)?;
    }
    if files.is_empty() {
        return Err(Error::contract(format!(
            "{} has no Protobuf subject that declares events",
            client.url()
        )));
    }
    Ok(files.into_sources())
}
