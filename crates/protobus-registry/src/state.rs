//! The registry's state, rebuilt by applying [`Record`]s in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use protobus_compat::{CompatibilityLevel, Dependency, Schema};

use crate::Error;
use crate::records::{Record, Reference, SchemaValue};

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) schemas: HashMap<i32, Arc<Stored>>,
    pub(crate) subjects: BTreeMap<String, Subject>,
    pub(crate) global: Option<CompatibilityLevel>,
    pub(crate) max_id: i32,
}

#[derive(Debug, Default)]
pub(crate) struct Subject {
    pub(crate) versions: BTreeMap<i32, Entry>,
    pub(crate) config: Option<CompatibilityLevel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: i32,
    pub(crate) deleted: bool,
}

/// A registered schema: the text as first registered, compiled once.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) id: i32,
    pub(crate) schema: String,
    pub(crate) references: Vec<Reference>,
    pub(crate) compiled: Schema,
    pub(crate) identity: Vec<u8>,
    pub(crate) normalized: Vec<u8>,
}

impl Stored {
    pub(crate) fn matches(&self, candidate: &Candidate) -> bool {
        let identity = if candidate.normalize {
            &self.normalized
        } else {
            &self.identity
        };
        *identity == candidate.identity && self.references == candidate.references
    }
}

/// A schema from a request, compiled against the registered references.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) schema: String,
    pub(crate) references: Vec<Reference>,
    pub(crate) compiled: Schema,
    pub(crate) identity: Vec<u8>,
    pub(crate) normalize: bool,
}

impl State {
    /// Compiles `schema` with its references resolved (recursively) from this state.
    pub(crate) fn compile(
        &self,
        schema: &str,
        references: &[Reference],
        normalize: bool,
    ) -> Result<Candidate, Error> {
        let mut dependencies = Vec::new();
        self.collect_dependencies(references, &mut dependencies, 0)?;
        let compiled = Schema::compile(schema, &dependencies)
            .map_err(|e| Error::invalid_schema(format!("Invalid schema: {e}")))?;
        Ok(Candidate {
            schema: schema.to_owned(),
            references: references.to_vec(),
            identity: compiled.identity(normalize),
            compiled,
            normalize,
        })
    }

    fn collect_dependencies(
        &self,
        references: &[Reference],
        out: &mut Vec<Dependency>,
        depth: usize,
    ) -> Result<(), Error> {
        if depth > 64 {
            return Err(Error::invalid_schema(
                "Invalid schema: references nest too deeply",
            ));
        }
        for reference in references {
            let stored = self.referenced(reference)?;
            self.collect_dependencies(&stored.references, out, depth + 1)?;
            if !out.iter().any(|d| d.name == reference.name) {
                out.push(Dependency {
                    name: reference.name.clone(),
                    source: stored.schema.clone(),
                    reference: Some((reference.subject.clone(), reference.version)),
                });
            }
        }
        Ok(())
    }

    fn referenced(&self, reference: &Reference) -> Result<&Arc<Stored>, Error> {
        let entry = self
            .subjects
            .get(&reference.subject)
            .and_then(|s| {
                if reference.version == -1 {
                    s.versions.values().rev().find(|e| !e.deleted)
                } else {
                    s.versions.get(&reference.version)
                }
            })
            .ok_or_else(|| {
                Error::invalid_schema(format!(
                    "Invalid schema: reference {} (subject '{}', version {}) is not registered",
                    reference.name, reference.subject, reference.version
                ))
            })?;
        self.schemas
            .get(&entry.id)
            .ok_or_else(|| Error::store(format!("schema id {} is missing", entry.id)))
    }

    /// The level that applies to `subject`: its own, else the global one, else BACKWARD.
    pub(crate) fn level(&self, subject: &str) -> CompatibilityLevel {
        self.subjects
            .get(subject)
            .and_then(|s| s.config)
            .or(self.global)
            .unwrap_or_default()
    }

    /// Ids of schemas whose live versions refer to `subject` version `version`.
    pub(crate) fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .subjects
            .values()
            .flat_map(|s| s.versions.values())
            .filter(|e| !e.deleted)
            .map(|e| e.id)
            .filter(|id| {
                self.schemas.get(id).is_some_and(|s| {
                    s.references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
                })
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(crate) fn apply(&mut self, record: Record) -> Result<(), Error> {
        match record {
            Record::Schema {
                subject,
                version,
                value: Some(value),
            } => {
                if !self.schemas.contains_key(&value.id) {
                    let stored = self.store(&value)?;
                    self.schemas.insert(value.id, Arc::new(stored));
                }
                self.max_id = self.max_id.max(value.id);
                self.subjects.entry(subject).or_default().versions.insert(
                    version,
                    Entry {
                        id: value.id,
                        deleted: value.deleted,
                    },
                );
            }
            Record::Schema {
                subject,
                version,
                value: None,
            } => {
                let Some(entry) = self.subjects.get_mut(&subject) else {
                    return Ok(());
                };
                let removed = entry.versions.remove(&version);
                if entry.versions.is_empty() && entry.config.is_none() {
                    self.subjects.remove(&subject);
                }
                if let Some(removed) = removed {
                    let still_used = self
                        .subjects
                        .values()
                        .any(|s| s.versions.values().any(|e| e.id == removed.id));
                    if !still_used {
                        self.schemas.remove(&removed.id);
                    }
                }
            }
            Record::Config {
                subject: None,
                level,
            } => self.global = level,
            Record::Config {
                subject: Some(subject),
                level,
            } => {
                let entry = self.subjects.entry(subject.clone()).or_default();
                entry.config = level;
                if entry.versions.is_empty() && entry.config.is_none() {
                    self.subjects.remove(&subject);
                }
            }
        }
        Ok(())
    }

    fn store(&self, value: &SchemaValue) -> Result<Stored, Error> {
        let candidate = self.compile(&value.schema, &value.references, false)?;
        Ok(Stored {
            id: value.id,
            schema: value.schema.clone(),
            references: value.references.clone(),
            normalized: candidate.compiled.identity(true),
            identity: candidate.identity,
            compiled: candidate.compiled,
        })
    }
}
