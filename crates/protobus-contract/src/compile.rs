//! Compiling a contract's sources held in memory, with protox (no `protoc`):
//! the compiler the build uses, with Protobus's options and Google's
//! well-known types provided. For services that load a contract while they
//! run (feature `compile`).

use std::collections::BTreeMap;
use std::sync::Arc;

use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

/// Compiles every file of `sources` (by import path) and its imports; the
/// encoded `FileDescriptorSet`, imports and source info included.
pub fn compile(sources: Arc<BTreeMap<String, String>>) -> Result<Vec<u8>, protox::Error> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(Memory(Arc::clone(&sources)));
    resolver.add(Builtin);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(sources.keys())?;
    Ok(compiler.encode_file_descriptor_set())
}

struct Memory(Arc<BTreeMap<String, String>>);

impl FileResolver for Memory {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Serves `protobus/options.proto` to contracts that do not carry a copy.
struct Builtin;

impl FileResolver for Builtin {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match crate::builtin(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}
