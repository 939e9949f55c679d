//! Build-time code generation for Protobus contracts.
//!
//! Called from a crate's `build.rs`, it compiles every `.proto` file under a
//! directory with [protox] (a pure-Rust compiler, so no `protoc` has to be
//! installed) and generates [prost] message types for them, and for every
//! message marked `option (protobus.event) = { topic: … key: … }`:
//!
//! - an implementation of `protobus_runtime::Event` (topic, key, subject,
//!   message indexes, the sources to register), so `producer.send(&event)` works;
//! - per topic, a handler trait with one async method per event type
//!   (`ShopOrdersHandler::order_placed`) and a dispatcher that decodes a
//!   record by its writer's type and calls that method.
//!
//! A bad option (no topic, a key field that does not exist or cannot be a
//! key) fails the build with the `.proto` file, line and column.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     protobus_build::configure().compile("proto")?;
//!     Ok(())
//! }
//! ```
//!
//! The generated code is included with
//! `include!(concat!(env!("OUT_DIR"), "/protobus_contract.rs"));`, and the
//! compiled descriptors (with every import, for schema registration at run
//! time) are written next to it as `protobus_contract.bin`.
//!
//! [prost]: https://docs.rs/prost

#![warn(missing_docs)]
mod codegen;
mod error;
mod events;

pub use error::Error;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use error::ErrorKind;
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

/// `protobus/options.proto`, importable by every contract even when its
/// directory does not carry a copy.
pub use protobus_contract::OPTIONS_PROTO;
use protobus_contract::{Location, OPTIONS_PROTO_NAME, rust_names};
/// prost-build's module tree, included by [`INCLUDE_FILE`].
const PROST_INCLUDE_FILE: &str = "_protobus_prost.rs";

/// Name of the generated Rust file that includes all modules, in the output directory.
pub const INCLUDE_FILE: &str = "protobus_contract.rs";
/// Name of the encoded `FileDescriptorSet` of the contract, in the output directory.
pub const DESCRIPTOR_SET_FILE: &str = "protobus_contract.bin";

/// Starts a [`Builder`] with defaults fit for a `build.rs`.
pub fn configure() -> Builder {
    Builder {
        out_dir: None,
        emit_rerun_if_changed: true,
    }
}

/// Configures and runs code generation; see [`configure`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    out_dir: Option<PathBuf>,
    emit_rerun_if_changed: bool,
}

impl Builder {
    /// Where generated files go; defaults to Cargo's `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines, so that Cargo rebuilds
    /// exactly when the contract changes (on by default; off outside build scripts).
    pub fn emit_rerun_if_changed(mut self, enabled: bool) -> Self {
        self.emit_rerun_if_changed = enabled;
        self
    }

    /// Compiles every `.proto` file below `root`, which is also the import root.
    pub fn compile(self, root: impl AsRef<Path>) -> Result<(), Error> {
        let root = root.as_ref();
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(ErrorKind::NoOutDir)?,
        };
        let files = proto_files(root)?;
        if files.is_empty() {
            return Err(ErrorKind::NoProtoFiles(root.to_path_buf()).into());
        }
        if self.emit_rerun_if_changed {
            // A directory entry makes Cargo notice added and removed files too.
            println!("cargo:rerun-if-changed={}", root.display());
            for file in &files {
                println!("cargo:rerun-if-changed={}", root.join(file).display());
            }
        }

        let mut resolver = ChainFileResolver::new();
        resolver.add(IncludeFileResolver::new(root.to_path_buf()));
        resolver.add(BuiltinResolver);
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true).include_source_info(true);
        compiler.open_files(&files).map_err(compile_error)?;
        let descriptors = compiler.file_descriptor_set();

        let pool = compiler.descriptor_pool();
        let (events, declared) = events::collect(&pool, &files)?;
        check_collisions(&events)?;
        let topics = events::topics(&pool, &files, &declared)?;
        let paths: HashMap<String, Option<PathBuf>> = compiler
            .files()
            .map(|f| (f.name().to_owned(), f.path().map(Path::to_path_buf)))
            .collect();
        let mut sources = Vec::new();
        for file in &descriptors.file {
            if file.name().starts_with("google/protobuf/") {
                continue;
            }
            let source = match paths.get(file.name()).cloned().flatten() {
                Some(path) => {
                    std::fs::read_to_string(&path).map_err(|error| ErrorKind::Io { path, error })?
                }
                None if file.name() == OPTIONS_PROTO_NAME => OPTIONS_PROTO.to_owned(),
                None => continue,
            };
            sources.push(codegen::SourceFile {
                name: file.name().to_owned(),
                source,
                imports: file.dependency.clone(),
            });
        }

        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| ErrorKind::Io { path, error }
        };
        std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
        let descriptor_path = out_dir.join(DESCRIPTOR_SET_FILE);
        std::fs::write(&descriptor_path, compiler.encode_file_descriptor_set())
            .map_err(io(&descriptor_path))?;
        // tonic's generator adds gRPC servers and clients for the contract's services.
        let mut config = prost_build::Config::new();
        config.include_file(PROST_INCLUDE_FILE);
        tonic_prost_build::configure()
            .out_dir(&out_dir)
            .emit_rerun_if_changed(false)
            .compile_fds_with_config(descriptors, config)
            .map_err(ErrorKind::Generate)?;
        let include_path = out_dir.join(INCLUDE_FILE);
        std::fs::write(
            &include_path,
            codegen::generate(PROST_INCLUDE_FILE, &sources, &events, &topics),
        )
        .map_err(io(&include_path))?;
        Ok(())
    }
}

/// Names the events' Rust code would share: one handler method for two
/// event types of a topic, one handler trait for two topics. Each fails the
/// build at the option of the event met second.
fn check_collisions(events: &[events::EventSpec]) -> Result<(), Error> {
    let at = |index: usize, clash: &dyn std::fmt::Display| -> Error {
        ErrorKind::Contract {
            location: events[index].location.clone(),
            message: clash.to_string(),
        }
        .into()
    };
    let methods = events
        .iter()
        .map(|e| (e.topic.as_str(), e.message_name(), e.full_name.as_str()));
    rust_names::check_handler_methods(methods).map_err(|clash| at(clash.index, &clash))?;
    rust_names::check_topic_types(events.iter().map(|e| e.topic.as_str()))
        .map_err(|clash| at(clash.index, &clash))
}

/// A compiler error with the `file:line:column` of its first label, when it
/// has one; the error keeps its labels and source for miette's reports.
fn compile_error(err: protox::Error) -> Error {
    match Location::of_diagnostic(&err).map(|at| at.to_string()) {
        Some(location) => ErrorKind::CompileAt {
            location,
            error: err,
        }
        .into(),
        None => ErrorKind::Compile(err).into(),
    }
}

/// Serves `protobus/options.proto` to contracts that do not carry a copy.
struct BuiltinResolver;

impl FileResolver for BuiltinResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match protobus_contract::builtin(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Every `.proto` file of the contract below `root`.
fn proto_files(root: &Path) -> Result<Vec<String>, Error> {
    protobus_contract::proto_files(root).map_err(|e| {
        ErrorKind::Io {
            path: e.path,
            error: e.source,
        }
        .into()
    })
}
