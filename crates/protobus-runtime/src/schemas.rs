//! The schema registry as the runtime needs it: each event type registered
//! once (with its imports as references), schema ids and writer types cached,
//! so that after warm-up no message costs a registry request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SuppliedReference, SuppliedSchema,
};

use crate::error::{Error, ErrorKind};
use crate::event::{Contract, Event, EventInfo};
use crate::registration::Registration;
use crate::registry_tls::RegistryTls;

/// Imports the registry resolves itself (Confluent's built-ins), never registered.
pub(crate) fn is_builtin(import: &str) -> bool {
    import.starts_with("google/protobuf/") || import.starts_with("confluent/")
}

/// How long a registry request may take unless configured: as long as
/// Confluent's clients wait by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Writer types by (schema id, message-index path).
type WriterTypes = HashMap<(u32, crate::wire::Indexes), Arc<str>>;

/// A client of a Confluent-compatible registry with the caches the runtime needs.
pub struct SchemaRegistry {
    settings: SrSettings,
    /// Without credentials: safe to log.
    pub(crate) url: String,
    /// For the reads schema_registry_converter does not make.
    pub(crate) http: reqwest::Client,
    pub(crate) basic_auth: Option<(String, String)>,
    /// Looked up per send: a name of the contract, hashed fast.
    ids: RwLock<foldhash::HashMap<&'static str, u32>>,
    writer_types: RwLock<WriterTypes>,
    /// One cache fill at a time, so that a burst of first sends makes one request.
    filling: tokio::sync::Mutex<()>,
    pub(crate) requests: AtomicU64,
    /// How event types' ids are found.
    pub(crate) registration: Registration,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A registry URL with any `user:password@` taken out (and percent-decoded):
/// the URL to show and the HTTP basic-auth credentials to send.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// The URL without credentials, without a trailing `/`.
    pub url: String,
    /// User and password, when the URL had them.
    pub basic_auth: Option<(String, String)>,
}

impl std::fmt::Debug for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryUrl")
            .field("url", &self.url)
            .field("user", &self.basic_auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl RegistryUrl {
    /// Parses `http[s]://[user:password@]host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad_url());
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad_url());
        }
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (basic_auth, host) = match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
                (
                    Some((percent_decode(user)?, percent_decode(password)?)),
                    host,
                )
            }
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad_url());
        }
        Ok(RegistryUrl {
            url: format!("{scheme}://{host}{}", path.trim_end_matches('/')),
            basic_auth,
        })
    }
}

fn bad_url() -> Error {
    // The URL itself is left out of the message: it may hold a password.
    ErrorKind::Config(
        "the schema registry URL must be http[s]://[user:password@]host[:port][/path]".into(),
    )
    .into()
}

fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad_url)?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_url())
}

impl SchemaRegistry {
    /// A client of the registry at `url` (e.g. `http://127.0.0.1:8081`);
    /// `http://user:password@host:8081` sends HTTP basic auth, and the
    /// password is never shown ([`url`](Self::url) leaves it out).
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::with_tls(url, &RegistryTls::default())
    }

    /// [`new`](Self::new) with TLS settings for an `https://` registry with a
    /// private CA or one that requires client certificates.
    pub fn with_tls(url: &str, tls: &RegistryTls) -> Result<Self, Error> {
        Self::configured(url, tls, DEFAULT_TIMEOUT)
    }

    /// [`with_tls`](Self::with_tls), every request (connecting included)
    /// given up after `timeout`.
    pub fn configured(url: &str, tls: &RegistryTls, timeout: Duration) -> Result<Self, Error> {
        let parsed = RegistryUrl::parse(url)?;
        let mut builder = SrSettings::new_builder(parsed.url.clone());
        if let Some((user, password)) = &parsed.basic_auth {
            builder.set_basic_authorization(user, Some(password));
        }
        builder.set_timeout(timeout);
        let config = |e: &dyn std::fmt::Display| {
            ErrorKind::Config(format!("schema registry client for {}: {e}", parsed.url))
        };
        let settings = builder
            .build_with(tls.client_builder()?)
            .map_err(|e| config(&e))?;
        let http = tls
            .client_builder()?
            .timeout(timeout)
            .build()
            .map_err(|e| config(&e))?;
        Ok(SchemaRegistry {
            settings,
            http,
            basic_auth: parsed.basic_auth,
            url: parsed.url,
            ids: RwLock::default(),
            writer_types: RwLock::default(),
            filling: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
            registration: Registration::default(),
        })
    }

    /// A client of the same registry, with the same settings, whose caches
    /// start empty: for a service whose contract changes while it runs, so
    /// that no id found for an earlier version of a type is used again.
    pub fn fresh(&self) -> Self {
        SchemaRegistry {
            settings: self.settings.clone(),
            url: self.url.clone(),
            http: self.http.clone(),
            basic_auth: self.basic_auth.clone(),
            ids: RwLock::default(),
            writer_types: RwLock::default(),
            filling: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
            registration: self.registration,
        }
    }

    /// How this client finds ids.
    pub fn registration(&self) -> Registration {
        self.registration
    }

    /// Finds ids by `registration` instead of registering (see [`Registration`]).
    pub fn with_registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// The registry's URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times this client went to the registry (cache misses).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The schema id of `E`, registering its file (and imports) on first use.
    pub async fn id_of<E: Event>(&self) -> Result<u32, Error> {
        self.id_for(E::contract(), E::info()).await
    }

    /// The schema id of the event type `event` of `contract`, registering
    /// its file (and imports) on first use.
    pub async fn id_for(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
    ) -> Result<u32, Error> {
        match self.cached_id(event) {
            Some(id) => Ok(id),
            // Boxed: registering is a large future needed once per type,
            // which every send's future would otherwise carry (2 KiB each).
            None => Box::pin(self.register_id(contract, event)).await,
        }
    }

    fn cached_id(&self, event: &EventInfo) -> Option<u32> {
        self.ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(event.full_name)
            .copied()
    }

    async fn register_id(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
    ) -> Result<u32, Error> {
        let _filling = self.filling.lock().await;
        if let Some(id) = self.cached_id(event) {
            return Ok(id);
        }
        let id = self.resolve_id(contract, event).await?;
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(event.full_name, id);
        Ok(id)
    }

    /// Registers `file` of `contract` under `subject` (its imports under their
    /// import paths, as references); returns the schema id.
    pub async fn register_file(
        &self,
        contract: &Contract,
        file: &str,
        subject: &str,
        full_name: &str,
    ) -> Result<u32, Error> {
        let proto = contract
            .file(file)
            .ok_or_else(|| ErrorKind::Config(format!("{file} is not part of the contract")))?;
        let schema = SuppliedSchema::new(
            Some(full_name.to_owned()),
            SchemaType::Protobuf,
            proto.source.to_owned(),
        )
        .with_references(references(contract, proto.imports)?);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let registered = post_schema(&self.settings, subject.to_owned(), schema)
            .await
            .map_err(|e| {
                self.error(
                    format!("registering {full_name} under subject {subject}"),
                    &e,
                )
            })?;
        Ok(registered.id)
    }

    /// The fully-qualified type a writer's frame names: the message at
    /// `indexes` in the schema with id `schema_id`.
    pub async fn writer_type(&self, schema_id: u32, indexes: &[i32]) -> Result<Arc<str>, Error> {
        let key = (schema_id, crate::wire::Indexes::from_slice(indexes));
        match self.cached_writer_type(&key) {
            Some(name) => Ok(name),
            // Boxed for the same reason as in `id_for`.
            None => Box::pin(self.fetch_writer_type(key)).await,
        }
    }

    fn cached_writer_type(&self, key: &(u32, crate::wire::Indexes)) -> Option<Arc<str>> {
        self.writer_types
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    async fn fetch_writer_type(&self, key: (u32, crate::wire::Indexes)) -> Result<Arc<str>, Error> {
        let _filling = self.filling.lock().await;
        if let Some(name) = self.cached_writer_type(&key) {
            return Ok(name);
        }
        let (schema_id, indexes) = (key.0, key.1.as_slice());
        self.requests.fetch_add(1, Ordering::Relaxed);
        let schema = get_schema_by_id(schema_id, &self.settings)
            .await
            .map_err(|e| self.error(format!("fetching schema id {schema_id}"), &e))?;
        let file = parse_schema(&schema.schema).map_err(|e| {
            ErrorKind::Registry(format!("schema id {schema_id} does not parse: {e}"))
        })?;
        let name: Arc<str> = message_at(&file, indexes)
            .ok_or_else(|| {
                ErrorKind::Registry(format!(
                    "schema id {schema_id} has no message at index path {indexes:?}"
                ))
            })?
            .into();
        self.writer_types
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, name.clone());
        Ok(name)
    }
}

impl SchemaRegistry {
    /// A registry error as the runtime reports it: unavailable (retry), said
    /// in one line with the registry's address and the first cause, or
    /// refused, with what the registry answered.
    fn error(&self, what: String, err: &schema_registry_converter::error::SRCError) -> ErrorKind {
        if unavailable(err) {
            ErrorKind::RegistryUnavailable(format!(
                "{what}: {}",
                unreachable(&self.url, root_cause(err))
            ))
        } else {
            ErrorKind::Registry(format!("{what}: {err}"))
        }
    }
}

/// How a registry that cannot be reached is said, by every client of it:
/// its address and the innermost cause (`Connection refused (os error 111)`).
pub fn unreachable(url: &str, cause: impl std::fmt::Display) -> String {
    format!("could not reach {url} ({cause}); check that it runs and that the URL is right")
}

/// The innermost cause of `err`, or the error's own words without
/// schema_registry_converter's flags.
fn root_cause(err: &schema_registry_converter::error::SRCError) -> String {
    let cause = innermost(err);
    if std::ptr::addr_eq(cause, err) {
        err.cause.clone().unwrap_or_else(|| err.error.clone())
    } else {
        cause.to_string()
    }
}

/// The last error in `err`'s chain of sources.
pub(crate) fn innermost<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
}

/// A registered schema's file: `.proto` text, or the base64-encoded
/// `FileDescriptorProto` that Confluent's Python and Go clients register.
pub(crate) fn parse_schema(text: &str) -> Result<prost_types::FileDescriptorProto, String> {
    use base64::Engine as _;
    use prost::Message as _;
    match protox_parse::parse("schema.proto", text) {
        Ok(file) => Ok(file),
        Err(parse_error) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok())
            .ok_or_else(|| parse_error.to_string()),
    }
}

/// Whether a registry error may pass by itself. schema_registry_converter
/// marks the error of a failed reference as final even when its cause (the
/// registry could not be reached) was retriable; the cause survives only in
/// the text, as "it's retriable: true".
fn unavailable(err: &schema_registry_converter::error::SRCError) -> bool {
    err.retriable || err.to_string().contains("it's retriable: true")
}

fn references(
    contract: &Contract,
    imports: &[&'static str],
) -> Result<Vec<SuppliedReference>, Error> {
    imports
        .iter()
        .filter(|import| !is_builtin(import))
        .map(|&import| {
            let file = contract.file(import).ok_or_else(|| {
                ErrorKind::Config(format!("import {import} is not part of the contract"))
            })?;
            Ok(
                SuppliedReference::new(
                    import.to_owned(),
                    import.to_owned(),
                    file.source.to_owned(),
                )
                .with_references(references(contract, file.imports)?),
            )
        })
        .collect()
}

/// The full name of the message at a message-index path of a parsed file.
fn message_at(file: &prost_types::FileDescriptorProto, indexes: &[i32]) -> Option<String> {
    let (&first, rest) = indexes.split_first()?;
    let mut message = file.message_type.get(usize::try_from(first).ok()?)?;
    let mut name = match file.package() {
        "" => message.name().to_owned(),
        package => format!("{package}.{}", message.name()),
    };
    for &index in rest {
        message = message.nested_type.get(usize::try_from(index).ok()?)?;
        name = format!("{name}.{}", message.name());
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_schemas_name_their_messages_too() {
        use base64::Engine as _;
        use prost::Message as _;
        let file = protox_parse::parse(
            "x.proto",
            "syntax = \"proto3\"; package shop;\nmessage A {}\nmessage B {}",
        )
        .unwrap();
        let serialized = base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec());
        let parsed = parse_schema(&serialized).unwrap();
        assert_eq!(message_at(&parsed, &[1]).as_deref(), Some("shop.B"));
        assert!(parse_schema("not a schema").is_err());
    }

    #[test]
    fn index_paths_name_messages_of_the_writers_file() {
        let file = protox_parse::parse(
            "x.proto",
            "syntax = \"proto3\"; package shop;\nmessage A { message B {} message C { message D {} } }\nenum E { E0 = 0; }\nmessage F {}",
        )
        .unwrap();
        assert_eq!(message_at(&file, &[0]).as_deref(), Some("shop.A"));
        assert_eq!(
            message_at(&file, &[1]).as_deref(),
            Some("shop.F"),
            "enums do not count"
        );
        assert_eq!(message_at(&file, &[0, 1, 0]).as_deref(), Some("shop.A.C.D"));
        assert_eq!(message_at(&file, &[2]), None);
        assert_eq!(message_at(&file, &[]), None);
    }
}
