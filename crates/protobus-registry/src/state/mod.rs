//! The registry's state, rebuilt by applying [`Record`]s in order.

mod index;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use protobus_compat::{CompatibilityLevel, Dependency, Schema};
use protobus_contract::Closure;

use crate::Error;
use crate::records::{Record, Reference};
use crate::registry::Mode;
use index::{Holders, Identities, Referrers};

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) schemas: HashMap<i32, Arc<Stored>>,
    /// The ids in `schemas` by what they are compared by: a registration
    /// finds an equal schema without a scan of them all.
    identities: Identities,
    /// The subject versions naming each id: a permanent delete frees a
    /// schema no version names any more without a scan of every subject.
    holders: Holders,
    /// The schemas referring to each subject version.
    referrers: Referrers,
    pub(crate) subjects: BTreeMap<String, Subject>,
    pub(crate) global: Option<CompatibilityLevel>,
    /// The global mode.
    pub(crate) mode: Option<Mode>,
    pub(crate) max_id: i32,
    /// What every stored schema takes, by [`Stored::cost`].
    pub(crate) total_bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Subject {
    pub(crate) versions: BTreeMap<i32, Entry>,
    pub(crate) config: Option<CompatibilityLevel>,
    pub(crate) mode: Option<Mode>,
}

impl Subject {
    /// Nothing left: no version, no config, no mode.
    fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.config.is_none() && self.mode.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: i32,
    pub(crate) deleted: bool,
}

/// A compiled schema: the text as registered, its references (each to a
/// concrete version), and what it is compared by.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) schema: Arc<str>,
    pub(crate) references: Vec<Reference>,
    pub(crate) compiled: Schema,
    identity: Vec<u8>,
    normalized: Vec<u8>,
    /// Bytes it takes in memory, about.
    pub(crate) cost: usize,
}

impl Stored {
    /// Compiles `schema` with its resolved imports (slow: never on an async
    /// worker, never under the state's lock); refuses a result that would
    /// take more than `max_bytes`.
    pub(crate) fn compile(
        schema: Arc<str>,
        resolved: Resolved,
        max_bytes: usize,
    ) -> Result<Self, Error> {
        let compiled = Schema::compile_compact(&schema, &resolved.dependencies)
            .map_err(|e| Error::invalid_schema(format!("Invalid schema: {e}")))?;
        let identity = compiled.identity(false);
        let normalized = compiled.identity(true);
        let cost = schema.len() + identity.len() + normalized.len() + compiled.footprint();
        if cost > max_bytes {
            return Err(Error::schema_too_large("compiled form", cost, max_bytes));
        }
        Ok(Stored {
            schema,
            references: resolved.references,
            compiled,
            identity,
            normalized,
            cost,
        })
    }

    /// Whether `candidate` defines the same thing with the same references.
    pub(crate) fn matches(&self, candidate: &Stored, normalize: bool) -> bool {
        let (mine, theirs) = if normalize {
            (&self.normalized, &candidate.normalized)
        } else {
            (&self.identity, &candidate.identity)
        };
        mine == theirs && self.references == candidate.references
    }
}

/// A schema's references resolved against the state: each to a concrete
/// version (`-1` is the latest live one at this moment, as Confluent
/// resolves it), and every file they import, transitively, once.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) references: Vec<Reference>,
    pub(crate) dependencies: Vec<Dependency>,
}

impl State {
    /// Resolves `references` and everything they import, each import name
    /// expanded once (see [`Closure`]), so shared imports cost nothing twice.
    /// A schema's own import names come first; a name met again later keeps
    /// its first file.
    pub(crate) fn resolve(&self, references: &[Reference], max: usize) -> Result<Resolved, Error> {
        if references.len() > max {
            return Err(Error::too_many_references(references.len(), max));
        }
        let too_many = |_| Error::too_many_references(max + 1, max);
        let mut concrete = Vec::with_capacity(references.len());
        let mut walk = Closure::new(max);
        for reference in references {
            let (version, stored) = self.referenced(reference)?;
            let reference = Reference {
                version,
                ..reference.clone()
            };
            concrete.push(reference.clone());
            walk.push(reference.name.clone(), (reference, stored))
                .map_err(too_many)?;
        }
        let mut dependencies = Vec::with_capacity(walk.len());
        while let Some((reference, stored)) = walk.pop() {
            // Stored references are concrete, so the walk cannot loop.
            for next in &stored.references {
                let (version, imported) = self.referenced(next)?;
                let next = Reference {
                    version,
                    ..next.clone()
                };
                walk.push(next.name.clone(), (next, imported))
                    .map_err(too_many)?;
            }
            dependencies.push(Dependency {
                name: reference.name,
                source: stored.schema.clone(),
                reference: Some((reference.subject, reference.version)),
            });
        }
        Ok(Resolved {
            references: concrete,
            dependencies,
        })
    }

    /// The version a reference names (the latest live one for `-1`) and its schema.
    fn referenced(&self, reference: &Reference) -> Result<(i32, Arc<Stored>), Error> {
        let found = self.subjects.get(&reference.subject).and_then(|s| {
            if reference.version == -1 {
                s.versions.iter().rev().find(|(_, e)| !e.deleted)
            } else {
                s.versions.get_key_value(&reference.version)
            }
        });
        let (&version, entry) = found.ok_or_else(|| {
            Error::invalid_schema(format!(
                "Invalid schema: reference {} (subject '{}', version {}) is not registered",
                reference.name, reference.subject, reference.version
            ))
        })?;
        let stored = self
            .schemas
            .get(&entry.id)
            .ok_or_else(|| Error::store(format!("schema id {} is missing", entry.id)))?;
        Ok((version, stored.clone()))
    }

    /// What applying `record` needs compiled first, resolved under the
    /// state's read lock: the text and imports of a schema id it does not
    /// hold yet.
    pub(crate) fn to_compile(
        &self,
        record: &Record,
        max_references: usize,
    ) -> Result<Option<(Arc<str>, Resolved)>, Error> {
        match record {
            Record::Schema {
                value: Some(value), ..
            } if !self.schemas.contains_key(&value.id) => {
                let resolved = self.resolve(&value.references, max_references)?;
                Ok(Some((value.schema.as_str().into(), resolved)))
            }
            _ => Ok(None),
        }
    }

    /// The lowest id of a stored schema equal to `candidate` (both
    /// normalized when `normalize`), whichever subjects hold it.
    pub(crate) fn same_schema(&self, candidate: &Stored, normalize: bool) -> Option<i32> {
        self.identities
            .candidates(candidate, normalize)
            .iter()
            .copied()
            .filter(|id| {
                self.schemas
                    .get(id)
                    .is_some_and(|s| s.matches(candidate, normalize))
            })
            .min()
    }

    /// The level that applies to `subject`: its own, else the global one, else BACKWARD.
    pub(crate) fn level(&self, subject: &str) -> CompatibilityLevel {
        self.subjects
            .get(subject)
            .and_then(|s| s.config)
            .or(self.global)
            .unwrap_or_default()
    }

    /// Ids of schemas whose live versions refer to `subject` version
    /// `version`, ascending.
    pub(crate) fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        self.referrers
            .of(subject, version)
            .filter(|&id| self.holders.of(id).any(|(s, v)| self.is_live(s, v)))
            .collect()
    }

    /// Every (subject, version) naming `id`, soft-deleted ones when `deleted`.
    pub(crate) fn versions_of_id(&self, id: i32, deleted: bool) -> Vec<(String, i32)> {
        self.holders
            .of(id)
            .filter(|&(s, v)| deleted || self.is_live(s, v))
            .map(|(s, v)| (s.to_owned(), v))
            .collect()
    }

    fn is_live(&self, subject: &str, version: i32) -> bool {
        self.subjects
            .get(subject)
            .and_then(|s| s.versions.get(&version))
            .is_some_and(|e| !e.deleted)
    }

    /// Applies `record`; `compiled` is the schema of a record that brings
    /// a new id (see [`to_compile`](Self::to_compile)).
    pub(crate) fn apply(
        &mut self,
        record: Record,
        compiled: Option<Arc<Stored>>,
    ) -> Result<(), Error> {
        match record {
            Record::Schema {
                subject,
                version,
                value: Some(value),
            } => {
                if !self.schemas.contains_key(&value.id) {
                    let stored = compiled.ok_or_else(|| {
                        Error::store(format!("schema id {} was not compiled", value.id))
                    })?;
                    self.total_bytes += stored.cost;
                    self.identities.insert(value.id, &stored);
                    self.referrers.insert(value.id, &stored.references);
                    self.schemas.insert(value.id, stored);
                }
                self.max_id = self.max_id.max(value.id);
                let entry = Entry {
                    id: value.id,
                    deleted: value.deleted,
                };
                let versions = &mut self.subjects.entry(subject.clone()).or_default().versions;
                if let Some(replaced) = versions.insert(version, entry) {
                    // A version written again (a soft delete, an import)
                    // leaves the schema it named stored; only a permanent
                    // delete frees one.
                    self.holders.remove(replaced.id, &subject, version);
                }
                self.holders.add(value.id, &subject, version);
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
                if entry.is_empty() {
                    self.subjects.remove(&subject);
                }
                if let Some(removed) = removed
                    && self.holders.remove(removed.id, &subject, version)
                    && let Some(gone) = self.schemas.remove(&removed.id)
                {
                    self.identities.remove(removed.id, &gone);
                    self.referrers.remove(removed.id, &gone.references);
                    self.total_bytes -= gone.cost;
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
                if entry.is_empty() {
                    self.subjects.remove(&subject);
                }
            }
            Record::Mode {
                subject: None,
                mode,
            } => self.mode = mode,
            Record::Mode {
                subject: Some(subject),
                mode,
            } => {
                let entry = self.subjects.entry(subject.clone()).or_default();
                entry.mode = mode;
                if entry.is_empty() {
                    self.subjects.remove(&subject);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
