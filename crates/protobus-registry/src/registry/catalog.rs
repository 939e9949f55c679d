//! The event catalog of what the registry holds: the latest version of
//! every subject that declares events, with the files it references, as
//! `protobus ingest --contract-from-registry` reads them. Compiled on a
//! worker, within the registry's limits.

use std::sync::Arc;

use protobus_catalog::Catalog;
use protobus_contract::{Closure, RegisteredContract, declares_events};

use super::{Registry, find_version, stored};
use crate::Error;
use crate::registry::VersionSpec;

/// The catalog's title.
const TITLE: &str = "Protobus events";

impl Registry {
    /// The catalog of the registry's event subjects (empty when none); its
    /// version is the highest schema id among them.
    pub async fn catalog(&self) -> Result<Catalog, Error> {
        let limits = self.limits().clone();
        let (files, newest) = self.read(|state| {
            // What the registry holds is bounded by `max_total_bytes` already.
            let mut files = RegisteredContract::new(limits.max_total_bytes, usize::MAX);
            let mut newest = 0;
            for subject in state.subjects.keys() {
                let Ok((_, entry)) = find_version(state, subject, VersionSpec::Latest, false)
                else {
                    continue;
                };
                let root = stored(state, entry.id)?;
                if !declares_events(subject, Some(super::PROTOBUF), &root.schema) {
                    continue;
                }
                newest = newest.max(entry.id);
                let mut walk = Closure::new(limits.max_references);
                for reference in &root.references {
                    walk.push(reference.name.clone(), reference.clone())
                        .map_err(|e| Error::invalid_schema(e.to_string()))?;
                }
                while let Some(reference) = walk.pop() {
                    let version = VersionSpec::Number(reference.version);
                    let (_, imported) = find_version(state, &reference.subject, version, true)?;
                    let imported = stored(state, imported.id)?;
                    for next in &imported.references {
                        walk.push(next.name.clone(), next.clone())
                            .map_err(|e| Error::invalid_schema(e.to_string()))?;
                    }
                    files
                        .add_import(&reference.name, imported.schema.to_string(), subject)
                        .map_err(|e| Error::invalid_schema(e.to_string()))?;
                }
                files
                    .add_subject(subject, root.schema.to_string())
                    .map_err(|e| Error::invalid_schema(e.to_string()))?;
            }
            Ok::<_, Error>((files, newest))
        })?;
        let version = newest.to_string();
        if files.is_empty() {
            return Ok(Catalog {
                title: TITLE.into(),
                version,
                topics: Vec::new(),
            });
        }
        self.workers()
            .run("building the catalog", move || {
                let sources = Arc::new(files.into_sources());
                let descriptors = protobus_contract::compile::compile(Arc::clone(&sources))
                    .map_err(|e| Error::invalid_schema(e.to_string()))?;
                Catalog::new(&descriptors, &sources, TITLE, &version)
                    .map_err(|e| Error::invalid_schema(e.to_string()))
            })
            .await
    }
}
