//! A whole contract (a directory of `.proto` files) as the registry will see
//! it: one subject per event type, and a comparison of two versions of the
//! contract that reports, per subject, what breaks readers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

mod moves;

use crate::rules::{Accepted, ContractFinding};
use crate::schema::{Compiled, compiler};
use crate::{
    CompatibilityLevel, Dependency, Difference, Error, Finding, Location, Schema, check,
    wire_findings,
};

use protobus_contract::{OPTIONS_PROTO, OPTIONS_PROTO_NAME};

/// One event type: its subject, the level that protects it, and where its
/// events go and how they are keyed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Subject {
    /// The registry subject (`<topic>-<type>` by default).
    pub subject: String,
    /// The event type.
    pub full_name: String,
    /// The file that defines it.
    pub file: String,
    /// Its compatibility level (`(protobus.event).compatibility`, default BACKWARD).
    pub level: CompatibilityLevel,
    /// Its topic.
    pub topic: String,
    /// Its key field path.
    pub key: String,
    /// The key field's type (`string`, `int64`, an enum's full name…);
    /// empty when the path does not resolve.
    pub key_type: String,
    /// How its subject is named (`TOPIC_RECORD_NAME`…).
    pub strategy: &'static str,
    /// Where its `(protobus.event)` option is.
    pub location: Option<Location>,
}

/// The compiled files of a contract and its subjects.
#[derive(Debug)]
pub struct Contract {
    sources: BTreeMap<String, String>,
    files: BTreeMap<String, Schema>,
    subjects: Vec<Subject>,
}

impl Contract {
    /// Every `.proto` file below `root` (except Protobus's own under `protobus/`).
    pub fn load(root: &Path) -> Result<Self, std::io::Error> {
        let mut sources = BTreeMap::new();
        for name in protobus_contract::proto_files(root).map_err(std::io::Error::other)? {
            let source = std::fs::read_to_string(root.join(&name))?;
            sources.insert(name, source);
        }
        Ok(Self::from_sources(sources))
    }

    /// A contract from file names and sources, compiled together (shared
    /// imports once). Files that do not compile are left out of
    /// [`file`](Self::file) and reported by [`errors`](Self::errors).
    pub fn from_sources(sources: BTreeMap<String, String>) -> Self {
        let mut all: HashMap<String, Arc<str>> = sources
            .iter()
            .map(|(name, source)| (name.clone(), source.as_str().into()))
            .collect();
        all.entry(OPTIONS_PROTO_NAME.to_owned())
            .or_insert_with(|| OPTIONS_PROTO.into());
        let mut compiler = compiler(Arc::new(all), true);
        let opened: Vec<&String> = sources
            .keys()
            .filter(|name| compiler.open_file(name.as_str()).is_ok())
            .collect();
        let compiled = Compiled::of(&compiler, true);
        let mut contract = Contract {
            files: BTreeMap::new(),
            subjects: Vec::new(),
            sources: BTreeMap::new(),
        };
        for name in opened {
            if let Some(schema) = compiled.schema(name) {
                contract.subjects.extend(subjects_of(compiled.pool(), name));
                contract.files.insert(name.clone(), schema);
            }
        }
        contract.sources = sources;
        contract.subjects.sort();
        contract
    }

    fn compile(&self, name: &str) -> Result<Schema, Error> {
        let mut dependencies: Vec<Dependency> = self
            .sources
            .iter()
            .filter(|(other, _)| *other != name)
            .map(|(other, source)| Dependency {
                name: other.clone(),
                source: source.as_str().into(),
                reference: None,
            })
            .collect();
        if !self.sources.contains_key(OPTIONS_PROTO_NAME) {
            dependencies.push(Dependency {
                name: OPTIONS_PROTO_NAME.into(),
                source: OPTIONS_PROTO.into(),
                reference: None,
            });
        }
        Schema::compile_named(name, &self.sources[name], &dependencies)
    }

    /// Why files did not compile, as the compiler said (with file:line:column).
    pub fn errors(&self) -> Vec<String> {
        self.sources
            .keys()
            .filter(|name| !self.files.contains_key(*name))
            .filter_map(|name| self.compile(name).err().map(|e| e.to_string()))
            .collect()
    }

    /// The subjects (one per event type), sorted.
    pub fn subjects(&self) -> &[Subject] {
        &self.subjects
    }

    /// The compiled file `name`.
    pub fn file(&self, name: &str) -> Option<&Schema> {
        self.files.get(name)
    }

    /// The source of file `name`.
    pub fn source(&self, name: &str) -> Option<&str> {
        self.sources.get(name).map(String::as_str)
    }

    /// The files that define events, with their sources: what a baseline keeps.
    pub fn event_files(&self) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        let mut pending: Vec<String> = self.subjects.iter().map(|s| s.file.clone()).collect();
        // Keep what they import too, so that the baseline compiles on its own.
        while let Some(name) = pending.pop() {
            if files.contains_key(&name) {
                continue;
            }
            if let Some(source) = self.sources.get(&name) {
                if let Some(schema) = self.files.get(&name) {
                    pending.extend(schema.file().dependency.iter().cloned());
                }
                files.insert(name, source.clone());
            }
        }
        files
    }
}

fn subjects_of(pool: &prost_reflect::DescriptorPool, file: &str) -> Vec<Subject> {
    protobus_contract::event_options(pool, &[file])
        .into_iter()
        .map(|(message, option)| Subject {
            subject: option.strategy.subject(&option.topic, message.full_name()),
            full_name: message.full_name().to_owned(),
            file: file.to_owned(),
            level: CompatibilityLevel::from_name(option.compatibility).unwrap_or_default(),
            key_type: key_type(&message, &option.key),
            topic: option.topic,
            key: option.key,
            strategy: option.strategy.option_name(),
            location: Location::of_event(&message),
        })
        .collect()
}

/// The type of the field `path` leads to in `message`, as `.proto` spells it.
fn key_type(message: &prost_reflect::MessageDescriptor, path: &str) -> String {
    use prost_reflect::Kind;
    let Ok(key) = protobus_contract::KeyPath::resolve(message, path) else {
        return String::new();
    };
    let Some(field) = key.fields().last() else {
        return String::new();
    };
    match field.kind() {
        Kind::Enum(e) => e.full_name().to_owned(),
        Kind::Message(m) => m.full_name().to_owned(),
        scalar => format!("{scalar:?}").to_lowercase(),
    }
}

/// A Confluent difference, located in the new file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ConfluentFinding {
    /// Where, in the new schema.
    pub location: Option<Location>,
    /// Confluent's difference.
    pub difference: Difference,
}

impl ConfluentFinding {
    /// `difference`, located in `schema` (the new version): in its own
    /// file, or in the import that defines the type its path names.
    pub fn locate(difference: Difference, schema: &Schema) -> Self {
        Self::locate_with(difference, schema, None)
    }

    /// [`locate`](Self::locate), or where `contract` now defines the type
    /// when neither the file nor its imports do (a type moved to another
    /// file).
    pub fn locate_in(difference: Difference, schema: &Schema, contract: &Contract) -> Self {
        Self::locate_with(difference, schema, Some(contract))
    }

    fn locate_with(difference: Difference, schema: &Schema, contract: Option<&Contract>) -> Self {
        // The path's first segment is a top-level type (`#/Money/2`).
        let top = difference
            .path
            .trim_start_matches("#/")
            .split('/')
            .next()
            .unwrap_or_default();
        let defines = |f: &&prost_types::FileDescriptorProto| {
            f.message_type.iter().any(|m| m.name() == top)
                || f.enum_type.iter().any(|e| e.name() == top)
        };
        // Moved within its package: another file of the contract defines it.
        let moved = || {
            let mut files = contract?.files.values().map(Schema::file);
            files.find(|f| f.package() == schema.file().package() && defines(f))
        };
        let file = Some(schema.file())
            .filter(defines)
            .or_else(|| schema.files().iter().find(defines))
            .or_else(moved)
            .unwrap_or(schema.file());
        let location = crate::wire::locate(file, &difference.path);
        ConfluentFinding {
            location,
            difference,
        }
    }
}

/// What breaks one file's subjects.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// For types that moved here: the file they left, where their old
    /// definitions are.
    pub moved_from: Option<String>,
    /// For an event that moved here, its full name: its subject is checked
    /// against the file it left.
    pub moved_event: Option<String>,
    /// The subjects it carries, with their levels.
    pub subjects: Vec<Subject>,
    /// Confluent's incompatible differences under the subjects' levels.
    pub confluent: Vec<ConfluentFinding>,
    /// Wire-level findings (checked unless every subject's level is NONE).
    pub wire: Vec<Finding>,
}

/// The comparison of a contract with its baseline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Files whose changes break readers.
    pub files: Vec<FileReport>,
    /// Changes to events' keys, topics, subjects, presence and levels.
    pub contract: Vec<ContractFinding>,
    /// Files of the contract that do not compile.
    pub errors: Vec<String>,
}

impl Report {
    /// Whether anything breaks readers (accepted contract changes do not).
    pub fn is_breaking(&self) -> bool {
        !self.files.is_empty()
            || self.contract.iter().any(|f| !f.accepted)
            || !self.errors.is_empty()
    }

    /// The report for people: one block per problem, file:line:column first.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for error in &self.errors {
            out.push_str(&format!("error: {error}\n\n"));
        }
        for finding in &self.contract {
            out.push_str(&format!("{finding}\n\n"));
        }
        for file in &self.files {
            let names: Vec<String> = file
                .subjects
                .iter()
                .map(|s| format!("{} ({})", s.subject, s.level.name()))
                .collect();
            out.push_str(&format!("{} — subjects {}\n", file.file, names.join(", ")));
            match (&file.moved_from, &file.moved_event) {
                (Some(left), Some(event)) => out.push_str(&format!(
                    "  {event} moved here from {left}: the registry judges each subject by its whole \
                     file, so its subject sees the types left behind as removed, and theirs see {event} \
                     removed\n  fix: keep the event where it is; to reorganise, define it under a new \
                     name (e.g. a new package version) in the new file, produce both for a while, and \
                     retire the old one with its topic\n"
                )),
                (Some(left), None) => out.push_str(&format!(
                    "  types moved here from {left}, compared with their definitions there\n"
                )),
                _ => {}
            }
            for finding in &file.wire {
                out.push_str(&format!("{finding}\n"));
            }
            for found in &file.confluent {
                let at = found
                    .location
                    .as_ref()
                    .map_or(file.file.clone(), ToString::to_string);
                out.push_str(&format!(
                    "{at}: {} (Confluent): {}\n  fix: {}\n",
                    found.difference,
                    found.difference.kind.description(),
                    found.difference.kind.hint()
                ));
            }
            out.push('\n');
        }
        if !self.is_breaking() {
            out.push_str("no breaking changes\n");
        }
        out
    }
}

/// What in `current` breaks readers of `baseline`: per file, under each
/// subject's level, and the contract-level rules, with the changes in
/// `accepted` reported as accepted.
pub fn compare(baseline: &Contract, current: &Contract, accepted: &Accepted) -> Report {
    let mut report = Report {
        errors: current.errors(),
        contract: crate::rules::findings(&baseline.subjects, &current.subjects, accepted),
        ..Report::default()
    };
    let files: BTreeSet<&str> = current.subjects.iter().map(|s| s.file.as_str()).collect();
    // The files events reach through imports: their types are read as part
    // of the events, so the wire rules apply to them too, once per file,
    // naming the events they affect.
    for (name, subjects) in moves::imported(current, &files) {
        if subjects.iter().all(|s| s.level == CompatibilityLevel::None) {
            continue;
        }
        let (Some(new), Some(old)) = (current.file(name), baseline.file(name)) else {
            continue;
        };
        let wire = wire_findings(old, new);
        if !wire.is_empty() {
            report.files.push(FileReport {
                file: name.to_owned(),
                moved_from: None,
                moved_event: None,
                subjects,
                confluent: Vec::new(),
                wire,
            });
        }
    }
    for name in files {
        let (Some(new), Some(old)) = (current.file(name), baseline.file(name)) else {
            continue; // a new file: nothing to break
        };
        let subjects: Vec<Subject> = current
            .subjects
            .iter()
            .filter(|s| s.file == name)
            .cloned()
            .collect();
        let mut confluent: BTreeSet<Difference> = BTreeSet::new();
        for subject in &subjects {
            let verdict = check(subject.level, new, &[old]);
            confluent.extend(verdict.incompatibilities().into_iter().cloned());
        }
        let wire = if subjects.iter().all(|s| s.level == CompatibilityLevel::None) {
            Vec::new()
        } else {
            wire_findings(old, new)
        };
        if !confluent.is_empty() || !wire.is_empty() {
            let confluent = confluent
                .into_iter()
                .map(|difference| ConfluentFinding::locate_in(difference, new, current))
                .collect();
            report.files.push(FileReport {
                file: name.to_owned(),
                moved_from: None,
                moved_event: None,
                subjects,
                confluent,
                wire,
            });
        }
    }
    report.files.extend(moves::moved(baseline, current));
    report.files.extend(moves::moved_types(baseline, current));
    report
}
