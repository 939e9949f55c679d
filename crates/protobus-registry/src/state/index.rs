//! Indexes the state keeps beside its subjects, so that no request scans
//! every stored schema or every subject version.

use std::collections::hash_map::{self, HashMap, RandomState};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher as _;

use super::Stored;
use crate::records::Reference;

/// Schema ids by a hash of their identity, as registered and normalized
/// (keyed by a random hasher: ids behind a colliding hash are compared in
/// full anyway).
#[derive(Debug, Default)]
pub(super) struct Identities {
    hasher: RandomState,
    exact: HashMap<u64, Vec<i32>>,
    normalized: HashMap<u64, Vec<i32>>,
}

impl Identities {
    fn keys(&self, stored: &Stored) -> [u64; 2] {
        [
            self.hasher.hash_one(&stored.identity),
            self.hasher.hash_one(&stored.normalized),
        ]
    }

    pub(super) fn insert(&mut self, id: i32, stored: &Stored) {
        let [exact, normalized] = self.keys(stored);
        self.exact.entry(exact).or_default().push(id);
        self.normalized.entry(normalized).or_default().push(id);
    }

    pub(super) fn remove(&mut self, id: i32, stored: &Stored) {
        let [exact, normalized] = self.keys(stored);
        for (map, key) in [(&mut self.exact, exact), (&mut self.normalized, normalized)] {
            if let hash_map::Entry::Occupied(mut ids) = map.entry(key) {
                ids.get_mut().retain(|&other| other != id);
                if ids.get().is_empty() {
                    ids.remove();
                }
            }
        }
    }

    /// The ids that may equal `candidate`.
    pub(super) fn candidates(&self, candidate: &Stored, normalize: bool) -> &[i32] {
        let [exact, normalized] = self.keys(candidate);
        let found = if normalize {
            self.normalized.get(&normalized)
        } else {
            self.exact.get(&exact)
        };
        found.map_or(&[], Vec::as_slice)
    }
}

/// The subject versions that name each schema id, in subject then version
/// order, as `GET /schemas/ids/{id}/versions` lists them. Most ids have one
/// or two: a sorted `Vec` holds them in a fraction of a B-tree node.
#[derive(Debug, Default)]
pub(super) struct Holders(HashMap<i32, Vec<(String, i32)>>);

impl Holders {
    pub(super) fn add(&mut self, id: i32, subject: &str, version: i32) {
        let held = self.0.entry(id).or_default();
        if let Err(at) = held.binary_search_by(|(s, v)| (s.as_str(), *v).cmp(&(subject, version))) {
            held.insert(at, (subject.to_owned(), version));
        }
    }

    /// Takes `subject` `version` off `id`'s holders; true when none is left.
    pub(super) fn remove(&mut self, id: i32, subject: &str, version: i32) -> bool {
        let hash_map::Entry::Occupied(mut held) = self.0.entry(id) else {
            return false;
        };
        let found = held
            .get()
            .binary_search_by(|(s, v)| (s.as_str(), *v).cmp(&(subject, version)));
        if let Ok(at) = found {
            held.get_mut().remove(at);
        }
        if held.get().is_empty() {
            held.remove();
            return true;
        }
        false
    }

    pub(super) fn of(&self, id: i32) -> impl Iterator<Item = (&str, i32)> {
        self.0
            .get(&id)
            .into_iter()
            .flatten()
            .map(|(subject, version)| (subject.as_str(), *version))
    }
}

/// The stored schemas that refer to each subject version (references are
/// stored resolved to a concrete version).
#[derive(Debug, Default)]
pub(super) struct Referrers(HashMap<String, BTreeMap<i32, BTreeSet<i32>>>);

impl Referrers {
    pub(super) fn insert(&mut self, id: i32, references: &[Reference]) {
        for r in references {
            let versions = self.0.entry(r.subject.clone()).or_default();
            versions.entry(r.version).or_default().insert(id);
        }
    }

    pub(super) fn remove(&mut self, id: i32, references: &[Reference]) {
        for r in references {
            let Some(versions) = self.0.get_mut(&r.subject) else {
                continue;
            };
            if let Some(ids) = versions.get_mut(&r.version) {
                ids.remove(&id);
                if ids.is_empty() {
                    versions.remove(&r.version);
                }
            }
            if versions.is_empty() {
                self.0.remove(&r.subject);
            }
        }
    }

    /// Ids of stored schemas that refer to `subject` `version`, ascending.
    pub(super) fn of(&self, subject: &str, version: i32) -> impl Iterator<Item = i32> {
        self.0
            .get(subject)
            .and_then(|versions| versions.get(&version))
            .into_iter()
            .flatten()
            .copied()
    }
}
