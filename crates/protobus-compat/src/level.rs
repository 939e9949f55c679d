use serde::{Deserialize, Serialize};

use crate::{Difference, Schema, diff};

/// Which earlier versions a new schema must stay compatible with, and in
/// which direction (Confluent's compatibility levels).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// Readers of the new schema read data of the latest version.
    #[default]
    Backward,
    /// Readers of the new schema read data of every earlier version.
    BackwardTransitive,
    /// Readers of the latest version read data of the new schema.
    Forward,
    /// Readers of every earlier version read data of the new schema.
    ForwardTransitive,
    /// Backward and forward, against the latest version.
    Full,
    /// Backward and forward, against every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, for parsing and listing.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The name Confluent's REST API uses, e.g. `BACKWARD_TRANSITIVE`.
    pub fn name(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Parses a level name as the REST API spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether every earlier version is checked, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn directions(self) -> (bool, bool) {
        match self {
            CompatibilityLevel::None => (false, false),
            CompatibilityLevel::Backward | CompatibilityLevel::BackwardTransitive => (true, false),
            CompatibilityLevel::Forward | CompatibilityLevel::ForwardTransitive => (false, true),
            CompatibilityLevel::Full | CompatibilityLevel::FullTransitive => (true, true),
        }
    }
}

/// The outcome of [`check`]: the incompatible differences, with the earlier
/// version (by position in the list given to `check`) each was found against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    found: Vec<(usize, Difference)>,
}

impl Verdict {
    /// No incompatible difference.
    pub fn is_compatible(&self) -> bool {
        self.found.is_empty()
    }

    /// The incompatible differences, each once.
    pub fn incompatibilities(&self) -> Vec<&Difference> {
        let mut seen = std::collections::BTreeSet::new();
        self.found
            .iter()
            .map(|(_, d)| d)
            .filter(|d| seen.insert(*d))
            .collect()
    }

    /// Incompatible differences with the index (into `previous`) of the version they break.
    pub fn by_version(&self) -> &[(usize, Difference)] {
        &self.found
    }
}

/// Checks `new` against `previous` (oldest first, latest last) under `level`.
pub fn check(level: CompatibilityLevel, new: &Schema, previous: &[&Schema]) -> Verdict {
    let (backward, forward) = level.directions();
    let against: Vec<usize> = match previous.len() {
        0 => Vec::new(),
        n if level.is_transitive() => (0..n).rev().collect(),
        n => vec![n - 1],
    };
    let mut found = Vec::new();
    for index in against {
        let old = previous[index];
        let mut differences = Vec::new();
        if backward {
            differences.extend(diff(old, new));
        }
        if forward {
            differences.extend(diff(new, old));
        }
        differences.sort();
        differences.dedup();
        found.extend(
            differences
                .into_iter()
                .filter(|d| !d.kind.is_compatible())
                .map(|d| (index, d)),
        );
    }
    Verdict { found }
}
