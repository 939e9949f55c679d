//! Where the service's contract comes from: compiled into the binary, or
//! loaded while it runs from `.proto` sources, a descriptor set, or the
//! latest versions of a registry's subjects, so that a new event type needs
//! no rebuild of a shared ingest service. Every source gives the same
//! [`Loaded`] (an encoded descriptor set and the files' sources), from which
//! the service builds its event table exactly as for the compiled-in
//! contract: one validation path whatever the source.

mod registry;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prost::Message as _;
use protobus_runtime::{Contract, SchemaRegistry};

use crate::Error;

/// Largest contract loaded at run time: all its sources together, or its
/// descriptor set.
pub const MAX_CONTRACT_BYTES: usize = 64 * 1024 * 1024;
/// Most files a contract loaded at run time may have.
pub const MAX_CONTRACT_FILES: usize = 10_000;

/// Where the service's contract comes from.
#[derive(Debug, Clone)]
pub enum ContractSource {
    /// The contract compiled into the binary, with its encoded
    /// `FileDescriptorSet`.
    Compiled {
        /// The contract.
        contract: &'static Contract,
        /// Its descriptors.
        descriptors: &'static [u8],
    },
    /// Every `.proto` file below a directory (its import root), compiled
    /// when loaded; `protobus/options.proto` is provided when absent.
    Sources(PathBuf),
    /// An encoded `FileDescriptorSet` (`protoc -o`, `buf build -o`,
    /// `protobus contract export`). It has no source text, so the service
    /// can only use the schemas the registry already has (`--registration latest`).
    DescriptorSet(PathBuf),
    /// The latest version of every Protobuf subject of a registry that
    /// declares events, with the files they reference.
    Registry(Arc<SchemaRegistry>),
}

impl ContractSource {
    /// Loads the contract as it is now. Compiling runs on a blocking
    /// thread, never on the async workers.
    pub async fn load(&self) -> Result<Loaded, Error> {
        match self {
            ContractSource::Compiled {
                contract,
                descriptors,
            } => Ok(Loaded::compiled(contract, descriptors)),
            ContractSource::Sources(dir) => {
                let dir = dir.clone();
                blocking(move || compile(read_sources(&dir)?)).await
            }
            ContractSource::DescriptorSet(path) => {
                let path = path.clone();
                blocking(move || read_descriptor_set(&path)).await
            }
            ContractSource::Registry(client) => {
                let sources = registry::sources(client).await?;
                blocking(move || compile(sources)).await
            }
        }
    }
}

async fn blocking(
    work: impl FnOnce() -> Result<Loaded, Error> + Send + 'static,
) -> Result<Loaded, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::contract(format!("loading the contract stopped: {e}")))?
}

/// A contract as loaded: what identifies it (two loads of an unchanged
/// contract are equal) and what the service's event table is built from.
#[derive(Clone)]
pub struct Loaded {
    /// The encoded `FileDescriptorSet`, imports included.
    descriptors: Arc<[u8]>,
    /// Each file's source text by import path (none for a descriptor set).
    sources: Arc<BTreeMap<String, String>>,
    compiled: Option<&'static Contract>,
}

impl PartialEq for Loaded {
    fn eq(&self, other: &Self) -> bool {
        let same_compiled = match (self.compiled, other.compiled) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        same_compiled && self.descriptors == other.descriptors && self.sources == other.sources
    }
}

impl Eq for Loaded {}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("descriptor_bytes", &self.descriptors.len())
            .field("files", &self.sources.len())
            .field("compiled_in", &self.compiled.is_some())
            .finish()
    }
}

impl Loaded {
    /// The contract compiled into the binary, whose encoded
    /// `FileDescriptorSet` is `descriptors`.
    pub fn compiled(contract: &'static Contract, descriptors: &'static [u8]) -> Self {
        Loaded {
            descriptors: descriptors.into(),
            sources: Arc::default(),
            compiled: Some(contract),
        }
    }

    /// Whether it carries its files' source text (a descriptor set does
    /// not), which registering or looking up a schema needs.
    pub fn has_sources(&self) -> bool {
        self.compiled.is_some() || !self.sources.is_empty()
    }

    /// The encoded `FileDescriptorSet`.
    pub fn descriptors(&self) -> &[u8] {
        &self.descriptors
    }

    /// The contract the service works with. A contract loaded at run time
    /// is built once per distinct content and kept for the life of the
    /// process (event names and topics are `&'static` throughout the
    /// runtime): loading the same content again, or failing to, builds
    /// nothing new.
    pub fn contract(&self) -> Result<&'static Contract, Error> {
        static BUILT: Mutex<Vec<(Loaded, &'static Contract)>> = Mutex::new(Vec::new());
        if let Some(contract) = self.compiled {
            return Ok(contract);
        }
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, contract)) = built.iter().find(|(loaded, _)| loaded == self) {
            return Ok(contract);
        }
        // Fails before anything is kept.
        let contract = table::build(&self.descriptors, &self.sources)?;
        built.push((self.clone(), contract));
        Ok(contract)
    }
}

/// Compiles `sources` (by import path) with their imports.
fn compile(sources: BTreeMap<String, String>) -> Result<Loaded, Error> {
    let sources = Arc::new(sources);
    let descriptors =
        protobus_contract::compile::compile(Arc::clone(&sources)).map_err(Error::contract)?;
    Ok(Loaded {
        descriptors: descriptors.into(),
        sources,
        compiled: None,
    })
}

/// Every `.proto` file below `dir`, within the limits.
fn read_sources(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let names = protobus_contract::proto_files(dir)
        .map_err(|e| Error::contract(format!("{}: {}", e.path.display(), e.source)))?;
    if names.is_empty() {
        return Err(Error::contract(format!(
            "no .proto files under {}",
            dir.display()
        )));
    }
    let mut total = 0;
    let mut sources = BTreeMap::new();
    for name in names {
        let path = dir.join(&name);
        let source = std::fs::read_to_string(&path)
            .map_err(|e| Error::contract(format!("{}: {e}", path.display())))?;
        total += source.len();
        check_size(total, sources.len() + 1, &dir.display().to_string())?;
        sources.insert(name, source);
    }
    Ok(sources)
}

fn read_descriptor_set(path: &Path) -> Result<Loaded, Error> {
    let read = |e: &dyn std::fmt::Display| Error::contract(format!("{}: {e}", path.display()));
    let length = std::fs::metadata(path).map_err(|e| read(&e))?.len();
    check_size(
        usize::try_from(length).unwrap_or(usize::MAX),
        0,
        &path.display().to_string(),
    )?;
    let bytes = std::fs::read(path).map_err(|e| read(&e))?;
    let set = prost_types::FileDescriptorSet::decode(bytes.as_slice())
        .map_err(|e| read(&format!("not an encoded FileDescriptorSet ({e})")))?;
    check_size(0, set.file.len(), &path.display().to_string())?;
    Ok(Loaded {
        descriptors: bytes.into(),
        sources: Arc::default(),
        compiled: None,
    })
}

fn check_size(bytes: usize, files: usize, what: &str) -> Result<(), Error> {
    if bytes > MAX_CONTRACT_BYTES {
        return Err(Error::contract(format!(
            "{what} is larger than {MAX_CONTRACT_BYTES} bytes"
        )));
    }
    if files > MAX_CONTRACT_FILES {
        return Err(Error::contract(format!(
            "{what} has more than {MAX_CONTRACT_FILES} files"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, source: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }

    const EVENT: &str = r#"syntax = "proto3";
package t.v1;
import "protobus/options.proto";
message Happened {
  option (protobus.event) = { topic: "t.events" key: "id" };
  string id = 1;
}
"#;

    async fn load(dir: &Path) -> Result<Loaded, Error> {
        ContractSource::Sources(dir.to_path_buf()).load().await
    }

    #[tokio::test]
    async fn a_loaded_contract_has_the_events_of_its_sources_and_is_equal_to_an_unchanged_reload() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t/v1/t.proto", EVENT);
        let first = load(dir.path()).await.unwrap();
        assert_eq!(first, load(dir.path()).await.unwrap());
        let contract = first.contract().unwrap();
        let event = contract.event("t.v1.Happened").expect("the event");
        assert_eq!(
            (
                event.topic,
                event.key_field,
                event.file,
                event.message_indexes
            ),
            ("t.events", "id", "t/v1/t.proto", &[0][..])
        );
        assert_eq!(event.subject(), "t.events-t.v1.Happened");
        assert_eq!(contract.topics.len(), 1);
        let file = contract.file("t/v1/t.proto").unwrap();
        assert_eq!(file.source, EVENT);
        assert_eq!(file.imports, ["protobus/options.proto"]);

        write(
            dir.path(),
            "t/v1/t.proto",
            &EVENT.replace("string id = 1;", "string id = 1;\n  string note = 2;"),
        );
        assert_ne!(
            first,
            load(dir.path()).await.unwrap(),
            "an edit is a new contract"
        );
    }

    #[tokio::test]
    async fn a_contract_that_is_wrong_is_refused_with_the_place_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "t/v1/t.proto",
            &EVENT.replace("key: \"id\"", "key: \"nope\""),
        );
        let err = load(dir.path()).await.unwrap().contract().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the contract: t/v1/t.proto:5:3: event t.v1.Happened: key field `nope`: t.v1.Happened has no field `nope` (it has: id)"
        );

        write(
            dir.path(),
            "t/v1/t.proto",
            "syntax = \"proto3\";\nmessage Plain {}\n",
        );
        let err = load(dir.path()).await.unwrap().contract().unwrap_err();
        assert!(err.to_string().contains("declares no events"), "{err}");

        write(
            dir.path(),
            "t/v1/t.proto",
            "syntax = \"proto3\";\nmessage {}\n",
        );
        let err = load(dir.path()).await.unwrap_err();
        assert!(err.to_string().starts_with("the contract: "), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let err = load(empty.path()).await.unwrap_err();
        assert!(err.to_string().contains("no .proto files"), "{err}");
    }

    #[tokio::test]
    async fn a_descriptor_set_loads_without_sources() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t/v1/t.proto", EVENT);
        let from_sources = load(dir.path()).await.unwrap();
        let set = dir.path().join("t.binpb");
        std::fs::write(&set, from_sources.descriptors()).unwrap();
        let loaded = ContractSource::DescriptorSet(set).load().await.unwrap();
        assert!(!loaded.has_sources());
        let contract = loaded.contract().unwrap();
        assert_eq!(contract.events.len(), 1);
        assert_eq!(contract.file("t/v1/t.proto").unwrap().source, "");

        let junk = dir.path().join("junk.binpb");
        std::fs::write(&junk, b"\xff\xff\xff").unwrap();
        let err = ContractSource::DescriptorSet(junk)
            .load()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not an encoded FileDescriptorSet"),
            "{err}"
        );
    }
}
