//! Which files make a contract, and the ones Protobus provides itself.

use std::path::{Path, PathBuf};

/// The directory of Protobus's own files in a contract directory (the
/// options, the ingest API): importable, never part of the contract.
pub const PROTOBUS_DIR: &str = "protobus";

/// The import path of the options that mark events.
pub const OPTIONS_PROTO_NAME: &str = "protobus/options.proto";

/// `protobus/options.proto`, importable by every contract whether or not it
/// carries a copy.
pub const OPTIONS_PROTO: &str = include_str!("../../../proto/protobus/options.proto");

/// The source of a file Protobus provides, by import path.
pub fn builtin(name: &str) -> Option<&'static str> {
    (name == OPTIONS_PROTO_NAME).then_some(OPTIONS_PROTO)
}

/// A directory of a contract could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {}", path.display())]
pub struct WalkError {
    /// The directory.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

/// Every `.proto` file below `root` but those under [`PROTOBUS_DIR`], by
/// import path (`/`-separated, relative to `root`), sorted so that what is
/// made from them does not depend on directory order.
pub fn proto_files(root: &Path) -> Result<Vec<String>, WalkError> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let failed = |source| WalkError {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(failed)? {
            let path = entry.map_err(failed)?.path();
            if path.is_dir() {
                if path != root.join(PROTOBUS_DIR) {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let name: Vec<_> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect();
                found.push(name.join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_is_its_proto_files_but_protobus_own() {
        let root = tempfile::tempdir().unwrap();
        for file in [
            "b/z.proto",
            "a.proto",
            "protobus/options.proto",
            "b/notes.txt",
        ] {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        assert_eq!(proto_files(root.path()).unwrap(), ["a.proto", "b/z.proto"]);
        let missing = proto_files(&root.path().join("nowhere")).unwrap_err();
        assert!(missing.to_string().starts_with("reading "), "{missing}");
        assert_eq!(builtin(OPTIONS_PROTO_NAME), Some(OPTIONS_PROTO));
        assert!(OPTIONS_PROTO.contains("extend google.protobuf.MessageOptions"));
    }
}
