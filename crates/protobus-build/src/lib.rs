//! Build-time code generation for Protobus contracts.
//!
//! Called from a crate's `build.rs`, it compiles every `.proto` file under a
//! directory with [protox] (a pure-Rust compiler, so no `protoc` has to be
//! installed) and generates [prost] message types for them.
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

mod error;

pub use error::Error;

use std::path::{Path, PathBuf};

use error::ErrorKind;

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

        let mut compiler = protox::Compiler::new([root]).map_err(ErrorKind::Compile)?;
        compiler.include_imports(true).include_source_info(true);
        compiler.open_files(&files).map_err(ErrorKind::Compile)?;
        let descriptors = compiler.file_descriptor_set();

        std::fs::create_dir_all(&out_dir).map_err(|e| ErrorKind::Io {
            path: out_dir.clone(),
            source: e,
        })?;
        let descriptor_path = out_dir.join(DESCRIPTOR_SET_FILE);
        std::fs::write(&descriptor_path, compiler.encode_file_descriptor_set()).map_err(|e| {
            ErrorKind::Io {
                path: descriptor_path,
                source: e,
            }
        })?;

        prost_build::Config::new()
            .out_dir(&out_dir)
            .include_file(INCLUDE_FILE)
            .compile_fds(descriptors)
            .map_err(ErrorKind::Generate)?;
        Ok(())
    }
}

/// Every `.proto` file below `root`, relative to it, with `/` separators, sorted
/// so that generated output does not depend on directory order.
fn proto_files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ErrorKind::Io {
            path: dir.clone(),
            source: e,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| ErrorKind::Io {
                    path: dir.clone(),
                    source: e,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                found.push(relative);
            }
        }
    }
    found.sort();
    Ok(found)
}
