//! Compatibility: which versions a schema is checked against, the check
//! itself (on a worker), and Confluent's list of reasons.

use std::sync::Arc;

use protobus_compat::{CompatibilityLevel, check};

use crate::Error;
use crate::registry::{Registry, SchemaInput, VersionSpec, find_version, live_versions};
use crate::state::{Entry, State, Stored};

impl Registry {
    /// `POST /compatibility/subjects/{subject}/versions[/{version}]`: whether
    /// `input` could be registered, with the reasons when it could not.
    pub async fn test_compatibility(
        &self,
        subject: &str,
        version: Option<VersionSpec>,
        input: &SchemaInput,
    ) -> Result<(bool, Vec<String>), Error> {
        let candidate = self.compile(input).await?;
        let against = self.read(|state| Against::of(state, subject, version))?;
        match self.incompatibility(&candidate, &against).await? {
            None => Ok((true, Vec::new())),
            Some(details) => Ok((false, details)),
        }
    }

    /// Confluent's reasons why `candidate` may not follow `against`, checked
    /// on a worker; `None` when it may.
    pub(crate) async fn incompatibility(
        &self,
        candidate: &Arc<Stored>,
        against: &Against,
    ) -> Result<Option<Vec<String>>, Error> {
        if against.versions.is_empty() {
            return Ok(None);
        }
        let (candidate, versions, level) =
            (candidate.clone(), against.versions.clone(), against.level);
        self.workers()
            .run("checking compatibility", move || {
                let previous: Vec<_> = versions.iter().map(|(_, _, s)| &s.compiled).collect();
                let verdict = check(level, &candidate.compiled, &previous);
                if verdict.is_compatible() {
                    return Ok(None);
                }
                let (index, _) = verdict.by_version()[0];
                let (old_version, _, old) = &versions[index];
                Ok(Some(verdict_details(
                    &verdict,
                    level,
                    *old_version,
                    &old.schema,
                )))
            })
            .await
    }
}

/// The versions a schema is checked against, as they were when read, and
/// the level that applies.
#[derive(Debug)]
pub(crate) struct Against {
    versions: Arc<Vec<(i32, Entry, Arc<Stored>)>>,
    level: CompatibilityLevel,
}

impl Against {
    /// The live versions of `subject` (or the one `version` names, checked
    /// on its own whatever the level's depth).
    pub(crate) fn of(
        state: &State,
        subject: &str,
        version: Option<VersionSpec>,
    ) -> Result<Self, Error> {
        let entries: Vec<(i32, Entry)> = match version {
            Some(spec) => vec![find_version(state, subject, spec, false)?],
            None => live_versions(state, subject),
        };
        let versions = entries
            .into_iter()
            .filter_map(|(v, e)| Some((v, e, state.schemas.get(&e.id)?.clone())))
            .collect();
        let level = match (version, state.level(subject)) {
            (Some(_), CompatibilityLevel::BackwardTransitive) => CompatibilityLevel::Backward,
            (Some(_), CompatibilityLevel::ForwardTransitive) => CompatibilityLevel::Forward,
            (Some(_), CompatibilityLevel::FullTransitive) => CompatibilityLevel::Full,
            (_, level) => level,
        };
        Ok(Against {
            versions: Arc::new(versions),
            level,
        })
    }

    /// Whether `subject`'s live versions and level are still the ones checked.
    pub(crate) fn unchanged(&self, state: &State, subject: &str) -> bool {
        let live = live_versions(state, subject);
        state.level(subject) == self.level
            && live.len() == self.versions.len()
            && live
                .iter()
                .zip(self.versions.iter())
                .all(|((v, e), (v2, e2, _))| v == v2 && e == e2)
    }
}

/// Confluent's list of reasons: each incompatible difference, then the
/// version and schema it breaks, then the level.
fn verdict_details(
    verdict: &protobus_compat::Verdict,
    level: CompatibilityLevel,
    old_version: i32,
    old_schema: &str,
) -> Vec<String> {
    let mut details: Vec<String> = verdict
        .incompatibilities()
        .iter()
        .map(|d| {
            format!(
                "{{errorType:'{}', description:'At path '{}' in the new schema, {}'}}",
                d.kind.name(),
                d.path,
                d.kind.description()
            )
        })
        .collect();
    details.push(format!("{{oldSchemaVersion: {old_version}}}"));
    details.push(format!("{{oldSchema: '{old_schema}'}}"));
    details.push(format!("{{compatibility: '{}'}}", level.name()));
    details
}
