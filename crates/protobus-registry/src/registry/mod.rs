//! The registry's operations, with Confluent Schema Registry's rules for
//! ids, versions, deletes, references and compatibility.

use std::sync::{Arc, RwLock};

use std::time::Duration;

use tracing::debug;

use crate::Error;
use crate::compatibility::Against;
use crate::limits::Limits;
use crate::log::{KafkaLog, Log, MemoryLog};
use crate::records::Record;
use crate::state::{State, Stored};
use crate::workers::Workers;

mod api;
mod catalog;
mod levels;
mod modes;
mod versions;

pub use api::{PROTOBUF, SchemaById, SchemaFormat, SchemaInput, SubjectVersion, VersionSpec};
pub use modes::Mode;
use versions::{delete_record, live_match, stored, subject_version};
pub(crate) use versions::{find_version, live_versions};

/// How often a registration is decided again when its subject changed
/// while its compatibility was being checked.
const REGISTER_ATTEMPTS: usize = 5;
/// How often a write is decided again when another writer appended first.
const WRITE_ATTEMPTS: u32 = 6;

/// A Confluent-compatible schema registry for Protobuf schemas.
///
/// Cheap to clone: clones share one state.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The fold of `log`: read here, changed only by appending to `log`.
    state: Arc<RwLock<State>>,
    log: Arc<dyn Log>,
    limits: Limits,
    workers: Workers,
    /// One write at a time per instance; across instances the log fences.
    write_lock: tokio::sync::Mutex<()>,
}

impl Registry {
    /// A registry whose state lives only in this process, with the default [`Limits`].
    pub fn in_memory() -> Self {
        Self::in_memory_with(Limits::default())
    }

    /// [`in_memory`](Self::in_memory) with `limits`.
    pub fn in_memory_with(limits: Limits) -> Self {
        let state = Arc::default();
        let log = MemoryLog::new(Arc::clone(&state));
        Self::with_log(state, Arc::new(log), limits)
    }

    /// A registry whose state is the compacted Kafka `topic` on `bootstrap`:
    /// read whole at start-up, appended to on every change.
    pub async fn kafka(bootstrap: &str, topic: &str) -> Result<Self, Error> {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        Self::kafka_with(&config, topic, Limits::default()).await
    }

    /// [`kafka`](Self::kafka) with the caller's librdkafka settings
    /// (bootstrap servers, `security.protocol`, SASL, TLS…) for every client
    /// the registry makes, and `limits`.
    pub async fn kafka_with(
        config: &rdkafka::ClientConfig,
        topic: &str,
        limits: Limits,
    ) -> Result<Self, Error> {
        let state = Arc::new(RwLock::new(State::default()));
        let log = KafkaLog::start(config, topic, state.clone()).await?;
        Ok(Self::with_log(state, Arc::new(log), limits))
    }

    /// A registry whose `state` is the fold of `log`.
    pub(crate) fn with_log(state: Arc<RwLock<State>>, log: Arc<dyn Log>, limits: Limits) -> Self {
        Registry {
            inner: Arc::new(Inner {
                state,
                log,
                workers: Workers::new(&limits),
                limits,
                write_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Where compiles and checks run.
    pub(crate) fn workers(&self) -> &Workers {
        &self.inner.workers
    }

    /// The limits this registry applies.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.inner.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `decide` on a state that includes every write made before,
    /// appends the records it returns to the log, and returns once they are
    /// applied here. `compiled` is the schema of a record that brings a new
    /// id. `decide` runs under the state's read lock, so it must be quick.
    async fn write<T>(
        &self,
        compiled: Option<Arc<Stored>>,
        decide: impl Fn(&State) -> Result<(Vec<Record>, T), Error>,
    ) -> Result<T, Error> {
        let _one_writer = self.inner.write_lock.lock().await;
        let log = &self.inner.log;
        let mut last = String::new();
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            log.take_over().await?;
            let (records, out) = self.read(&decide)?;
            if records.is_empty() {
                return Ok(out);
            }
            match log.append(records, compiled.clone()).await? {
                Ok(()) => return Ok(out),
                Err(not_appended) => {
                    debug!(reason = %not_appended.0, attempt, "registry write not appended");
                    last = not_appended.0;
                }
            }
        }
        Err(Error::store(format!(
            "Error while writing the schemas log: nothing appended after {WRITE_ATTEMPTS} attempts; last error: {last}"
        )))
    }

    /// Compiles `input` on a worker, its references resolved (each to a
    /// concrete version) under the read lock, which is not held while compiling.
    pub(crate) async fn compile(&self, input: &SchemaInput) -> Result<Arc<Stored>, Error> {
        match input.schema_type.as_deref() {
            Some(PROTOBUF) => {}
            Some(other) => {
                return Err(Error::invalid_schema(format!(
                    "Invalid schema type {other}: this registry serves {PROTOBUF} schemas only"
                )));
            }
            None => {
                return Err(Error::invalid_schema(format!(
                    "No schemaType given, which means AVRO: this registry serves {PROTOBUF} schemas only; send \"schemaType\": \"{PROTOBUF}\""
                )));
            }
        }
        let limits = &self.inner.limits;
        if input.schema.len() > limits.max_schema_bytes {
            return Err(Error::schema_too_large(
                "text",
                input.schema.len(),
                limits.max_schema_bytes,
            ));
        }
        let resolved =
            self.read(|state| state.resolve(&input.references, limits.max_references))?;
        let schema: Arc<str> = input.schema.as_str().into();
        let max_bytes = limits.max_compiled_bytes;
        let stored = self
            .inner
            .workers
            .run("compiling the schema", move || {
                Stored::compile(schema, resolved, max_bytes)
            })
            .await?;
        Ok(Arc::new(stored))
    }

    /// `POST /subjects/{subject}/versions`: the id of `input` under `subject`,
    /// registering it as a new version if the subject does not have it yet.
    pub async fn register(
        &self,
        subject: &str,
        input: &SchemaInput,
        normalize: bool,
    ) -> Result<i32, Error> {
        let importing = input.id.is_some();
        self.read(|state| state.check_register(subject, importing))?;
        let candidate = self.compile(input).await?;
        for _ in 0..REGISTER_ATTEMPTS {
            // Checked without a lock; written only if the subject is as checked.
            let against = self.read(|state| Against::of(state, subject, None))?;
            if let Some(id) = self.read(|state| live_match(state, subject, &candidate, normalize)) {
                return Ok(id);
            }
            // Imports keep what another registry accepted, as Confluent's do.
            if !importing && let Some(details) = self.incompatibility(&candidate, &against).await? {
                return Err(Error::incompatible(format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                    details.join(", ")
                )));
            }
            let limit = self.inner.limits.max_total_bytes;
            let decided = self
                .write(Some(candidate.clone()), |state| {
                    state.check_register(subject, importing)?;
                    if !against.unchanged(state, subject) {
                        return Ok((Vec::new(), None));
                    }
                    if let Some(id) = live_match(state, subject, &candidate, normalize) {
                        return Ok((Vec::new(), Some(id)));
                    }
                    let existing = state.same_schema(&candidate, normalize);
                    if existing.is_none() && state.total_bytes + candidate.cost > limit {
                        return Err(Error::registry_full(
                            state.total_bytes,
                            candidate.cost,
                            limit,
                        ));
                    }
                    let versions = state.subjects.get(subject).map(|s| &s.versions);
                    let id = match input.id {
                        Some(id) => imported_id(state, id, &candidate)?,
                        None => existing.unwrap_or(state.max_id + 1),
                    };
                    let version = match input.version {
                        Some(version) if versions.is_some_and(|v| v.contains_key(&version)) => {
                            return Err(Error::operation_not_permitted(format!(
                                "Subject {subject} already has a version {version}"
                            )));
                        }
                        Some(version) => version,
                        None => {
                            versions
                                .and_then(|v| v.keys().next_back().copied())
                                .unwrap_or(0)
                                + 1
                        }
                    };
                    let record = Record::version(
                        subject,
                        version,
                        id,
                        &candidate.schema,
                        candidate.references.clone(),
                        false,
                    );
                    Ok((vec![record], Some(id)))
                })
                .await?;
            if let Some(id) = decided {
                return Ok(id);
            }
        }
        Err(Error::internal(format!(
            "subject \"{subject}\" kept changing while this registration was checked; retry"
        )))
    }

    /// `POST /subjects/{subject}`: the version of `subject` that holds `input`.
    pub async fn lookup(
        &self,
        subject: &str,
        input: &SchemaInput,
        normalize: bool,
        deleted: bool,
    ) -> Result<SubjectVersion, Error> {
        let candidate = self.compile(input).await?;
        self.read(|state| {
            let versions = &state
                .subjects
                .get(subject)
                .filter(|s| deleted || s.versions.values().any(|e| !e.deleted))
                .ok_or_else(|| Error::subject_not_found(subject))?
                .versions;
            versions
                .iter()
                .rev()
                .filter(|(_, e)| deleted || !e.deleted)
                .find(|(_, e)| {
                    state
                        .schemas
                        .get(&e.id)
                        .is_some_and(|s| s.matches(&candidate, normalize))
                })
                .map(|(&version, entry)| {
                    subject_version(state, subject, version, entry, SchemaFormat::Text)
                })
                .ok_or_else(|| Error::schema_not_found("not found in this subject"))?
        })
    }

    /// `GET /schemas/ids/{id}`. Ids are global: a `?subject=` only names
    /// the client's context, as in Confluent's registry, and changes nothing.
    pub fn schema_by_id(&self, id: i32, format: SchemaFormat) -> Result<SchemaById, Error> {
        self.read(|state| {
            let stored = state
                .schemas
                .get(&id)
                .ok_or_else(|| Error::schema_not_found(id))?;
            Ok(SchemaById {
                schema: format.render(stored),
                schema_type: PROTOBUF,
                references: stored.references.clone(),
            })
        })
    }

    /// `GET /schemas/ids/{id}/versions`: every (subject, version) with that id.
    pub fn versions_of_id(&self, id: i32, deleted: bool) -> Result<Vec<(String, i32)>, Error> {
        self.read(|state| {
            if !state.schemas.contains_key(&id) {
                return Err(Error::schema_not_found(id));
            }
            Ok(state.versions_of_id(id, deleted))
        })
    }

    /// `GET /subjects`.
    pub fn subjects(&self, deleted: bool, prefix: &str) -> Vec<String> {
        self.read(|state| {
            state
                .subjects
                .iter()
                .filter(|(name, s)| {
                    name.starts_with(prefix) && s.versions.values().any(|e| deleted || !e.deleted)
                })
                .map(|(name, _)| name.clone())
                .collect()
        })
    }

    /// `GET /subjects/{subject}/versions`.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, Error> {
        self.read(|state| {
            let versions: Vec<i32> = state
                .subjects
                .get(subject)
                .map(|s| {
                    s.versions
                        .iter()
                        .filter(|(_, e)| deleted || !e.deleted)
                        .map(|(v, _)| *v)
                        .collect()
                })
                .unwrap_or_default();
            if versions.is_empty() {
                return Err(Error::subject_not_found(subject));
            }
            Ok(versions)
        })
    }

    /// `GET /subjects/{subject}/versions/{version}`.
    pub fn version(
        &self,
        subject: &str,
        version: VersionSpec,
        deleted: bool,
        format: SchemaFormat,
    ) -> Result<SubjectVersion, Error> {
        self.read(|state| {
            let (number, entry) = find_version(state, subject, version, deleted)?;
            subject_version(state, subject, number, &entry, format)
        })
    }

    /// `GET /subjects/{subject}/versions/{version}/referencedby`.
    pub fn referenced_by(&self, subject: &str, version: VersionSpec) -> Result<Vec<i32>, Error> {
        self.read(|state| {
            let (number, _) = find_version(state, subject, version, true)?;
            Ok(state.referenced_by(subject, number))
        })
    }

    /// `DELETE /subjects/{subject}/versions/{version}`: soft, then permanent.
    pub async fn delete_version(
        &self,
        subject: &str,
        version: VersionSpec,
        permanent: bool,
    ) -> Result<i32, Error> {
        self.write(None, |state| {
            state.check_writable(Some(subject))?;
            let (number, entry) = find_version(state, subject, version, true)?;
            if !permanent && entry.deleted {
                return Err(Error::version_soft_deleted(subject, number));
            }
            if permanent && !entry.deleted {
                return Err(Error::version_not_soft_deleted(subject, number));
            }
            let by = state.referenced_by(subject, number);
            if !by.is_empty() {
                return Err(Error::still_referenced(subject, number, &by));
            }
            let record = delete_record(state, subject, number, entry, permanent)?;
            Ok((vec![record], number))
        })
        .await
    }

    /// `DELETE /subjects/{subject}`: soft-deletes every version, or permanently
    /// removes a soft-deleted subject. Returns the versions deleted.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>, Error> {
        self.write(None, |state| {
            state.check_writable(Some(subject))?;
            let found = state
                .subjects
                .get(subject)
                .filter(|s| !s.versions.is_empty())
                .ok_or_else(|| Error::subject_not_found(subject))?;
            let all_deleted = found.versions.values().all(|e| e.deleted);
            if !permanent && all_deleted {
                return Err(Error::subject_soft_deleted(subject));
            }
            if permanent && !all_deleted {
                return Err(Error::subject_not_soft_deleted(subject));
            }
            let mut records = Vec::new();
            let mut versions = Vec::new();
            for (&number, &entry) in &found.versions {
                if !permanent && entry.deleted {
                    continue;
                }
                let by = state.referenced_by(subject, number);
                if !by.is_empty() {
                    return Err(Error::still_referenced(subject, number, &by));
                }
                records.push(delete_record(state, subject, number, entry, permanent)?);
                versions.push(number);
            }
            if permanent && found.config.is_some() {
                records.push(Record::Config {
                    subject: Some(subject.to_owned()),
                    level: None,
                });
            }
            Ok((records, versions))
        })
        .await
    }
}

/// The id an import asks for: free, or already holding the same schema.
fn imported_id(state: &State, id: i32, candidate: &Stored) -> Result<i32, Error> {
    if id < 1 {
        return Err(Error::invalid_schema(format!(
            "Invalid schema: id {id} is not a schema id (1 or more)"
        )));
    }
    match state.schemas.get(&id) {
        Some(held) if !held.matches(candidate, false) => Err(Error::operation_not_permitted(
            format!("Overwrite new schema with id {id} is not permitted: another schema holds it"),
        )),
        _ => Ok(id),
    }
}
