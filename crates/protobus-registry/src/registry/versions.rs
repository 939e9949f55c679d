//! Subject versions read out of the state: live ones, one by its selector,
//! as the API returns it, and the record that deletes it.

use std::sync::Arc;

use super::{PROTOBUF, SchemaFormat, SubjectVersion, VersionSpec};
use crate::Error;
use crate::records::Record;
use crate::state::{Entry, State, Stored};

/// The id of a live version of `subject` that already holds `candidate`.
pub(super) fn live_match(
    state: &State,
    subject: &str,
    candidate: &Stored,
    normalize: bool,
) -> Option<i32> {
    live_versions(state, subject)
        .iter()
        .rev()
        .find(|(_, e)| {
            state
                .schemas
                .get(&e.id)
                .is_some_and(|s| s.matches(candidate, normalize))
        })
        .map(|(_, e)| e.id)
}

pub(crate) fn live_versions(state: &State, subject: &str) -> Vec<(i32, Entry)> {
    state
        .subjects
        .get(subject)
        .map(|s| {
            s.versions
                .iter()
                .filter(|(_, e)| !e.deleted)
                .map(|(v, e)| (*v, *e))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn find_version(
    state: &State,
    subject: &str,
    version: VersionSpec,
    deleted: bool,
) -> Result<(i32, Entry), Error> {
    let found = state
        .subjects
        .get(subject)
        .filter(|s| s.versions.values().any(|e| deleted || !e.deleted))
        .ok_or_else(|| Error::subject_not_found(subject))?;
    match version {
        VersionSpec::Latest => found
            .versions
            .iter()
            .rev()
            .find(|(_, e)| deleted || !e.deleted)
            .map(|(v, e)| (*v, *e))
            .ok_or_else(|| Error::subject_not_found(subject)),
        VersionSpec::Number(n) => found
            .versions
            .get(&n)
            .filter(|e| deleted || !e.deleted)
            .map(|e| (n, *e))
            .ok_or_else(|| Error::version_not_found(subject, n)),
    }
}

pub(super) fn subject_version(
    state: &State,
    subject: &str,
    version: i32,
    entry: &Entry,
    format: SchemaFormat,
) -> Result<SubjectVersion, Error> {
    let stored = stored(state, entry.id)?;
    Ok(SubjectVersion {
        subject: subject.to_owned(),
        version,
        id: entry.id,
        schema_type: PROTOBUF,
        references: stored.references.clone(),
        schema: format.render(stored),
    })
}

pub(super) fn delete_record(
    state: &State,
    subject: &str,
    version: i32,
    entry: Entry,
    permanent: bool,
) -> Result<Record, Error> {
    if permanent {
        return Ok(Record::Schema {
            subject: subject.to_owned(),
            version,
            value: None,
        });
    }
    let stored = stored(state, entry.id)?;
    let references = stored.references.clone();
    Ok(Record::version(
        subject,
        version,
        entry.id,
        &stored.schema,
        references,
        true,
    ))
}

/// The stored schema with `id`, which the state must hold.
pub(super) fn stored(state: &State, id: i32) -> Result<&Arc<Stored>, Error> {
    state
        .schemas
        .get(&id)
        .ok_or_else(|| Error::store(format!("schema id {id} is missing")))
}
