//! Where a contract's types are and what reaches them: the files events
//! import, and the events and types that moved to another file, each
//! compared with its old definition by full name.

use std::collections::{BTreeMap, BTreeSet};

use super::{ConfluentFinding, Contract, FileReport, Subject};
use crate::{CompatibilityLevel, Difference, Finding, check};
use protobus_contract::OPTIONS_PROTO_NAME;

/// Events defined in another file than before: each subject checked as the
/// registry would check it (the new file against the old one) and the
/// event's type against its old definition, by full name.
pub(super) fn moved(baseline: &Contract, current: &Contract) -> Vec<FileReport> {
    let before: BTreeMap<&str, &Subject> = baseline
        .subjects
        .iter()
        .map(|s| (s.full_name.as_str(), s))
        .collect();
    let mut reports = Vec::new();
    for subject in &current.subjects {
        let Some(old) = before.get(subject.full_name.as_str()) else {
            continue;
        };
        if old.file == subject.file {
            continue;
        }
        let (Some(new_file), Some(old_file)) =
            (current.file(&subject.file), baseline.file(&old.file))
        else {
            continue;
        };
        let confluent: Vec<ConfluentFinding> = check(subject.level, new_file, &[old_file])
            .incompatibilities()
            .into_iter()
            .cloned()
            .collect::<BTreeSet<Difference>>()
            .into_iter()
            .map(|difference| ConfluentFinding::locate_in(difference, new_file, current))
            .collect();
        let wire = if subject.level == CompatibilityLevel::None {
            Vec::new()
        } else {
            crate::moved_type_findings(old_file, new_file, &subject.full_name)
        };
        reports.push(FileReport {
            file: subject.file.clone(),
            moved_from: Some(old.file.clone()),
            moved_event: Some(subject.full_name.clone()),
            subjects: vec![subject.clone()],
            confluent,
            wire,
        });
    }
    reports
}

/// Every file the events of `current` import, directly or not, except the
/// event files themselves and the built-in ones, with the events reaching it.
pub(super) fn imported<'a>(
    current: &'a Contract,
    event_files: &BTreeSet<&'a str>,
) -> BTreeMap<&'a str, Vec<Subject>> {
    let mut reached: BTreeMap<&str, Vec<Subject>> = BTreeMap::new();
    // One walk per event file; its events all reach what it imports.
    for &file in event_files {
        let events: Vec<&Subject> = current.subjects.iter().filter(|s| s.file == file).collect();
        let mut walk = protobus_contract::Closure::new(usize::MAX);
        let _ = walk.push(file, file);
        while let Some(name) = walk.pop() {
            let Some(schema) = current.file(name) else {
                continue;
            };
            for import in &schema.file().dependency {
                let _ = walk.push(import.as_str(), import.as_str());
            }
            let builtin = name.starts_with("google/protobuf/") || name == OPTIONS_PROTO_NAME;
            if !builtin && !event_files.contains(name) {
                reached
                    .entry(name)
                    .or_default()
                    .extend(events.iter().map(|s| (*s).clone()));
            }
        }
    }
    for subjects in reached.values_mut() {
        subjects.sort();
    }
    reached
}

/// The top-level messages and enums of every file of `contract` (except
/// the built-in ones), by full name, with the file that defines them.
fn types_by_file(contract: &Contract) -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    for (name, schema) in &contract.files {
        let file = schema.file();
        let names = file
            .message_type
            .iter()
            .map(|m| m.name())
            .chain(file.enum_type.iter().map(|e| e.name()));
        for type_name in names {
            types.insert(
                protobus_contract::qualify(file.package(), type_name),
                name.clone(),
            );
        }
    }
    types
}

/// Types that are not events and moved to another file: compared with
/// their old definitions by full name, reported at the new file's lines
/// for the events that reach the new file.
pub(super) fn moved_types(baseline: &Contract, current: &Contract) -> Vec<FileReport> {
    let before = types_by_file(baseline);
    let events: BTreeSet<&str> = current
        .subjects
        .iter()
        .map(|s| s.full_name.as_str())
        .collect();
    let event_files: BTreeSet<&str> = current.subjects.iter().map(|s| s.file.as_str()).collect();
    let reaching = imported(current, &event_files);
    let mut by_file: BTreeMap<(String, String), Vec<Finding>> = BTreeMap::new();
    for (type_name, new_file) in types_by_file(current) {
        let Some(old_file) = before.get(&type_name) else {
            continue;
        };
        if *old_file == new_file || events.contains(type_name.as_str()) {
            continue;
        }
        let (Some(old), Some(new)) = (baseline.file(old_file), current.file(&new_file)) else {
            continue;
        };
        by_file
            .entry((new_file, old_file.clone()))
            .or_default()
            .extend(crate::moved_type_findings(old, new, &type_name));
    }
    by_file
        .into_iter()
        .filter(|(_, wire)| !wire.is_empty())
        .map(|((file, moved_from), wire)| FileReport {
            subjects: reaching.get(file.as_str()).cloned().unwrap_or_else(|| {
                current
                    .subjects
                    .iter()
                    .filter(|s| s.file == file)
                    .cloned()
                    .collect()
            }),
            file,
            moved_from: Some(moved_from),
            moved_event: None,
            confluent: Vec::new(),
            wire,
        })
        .collect()
}
