//! Python with Confluent's client, and classes generated from `proto/`.

/// The Python with Confluent's client that `scripts/python-env.sh` prepared
/// (`PROTOBUS_PYTHON`; `scripts/test.sh` sets it). Panics, saying how to get
/// one, when it is missing.
pub fn confluent_python() -> std::path::PathBuf {
    match std::env::var_os("PROTOBUS_PYTHON") {
        Some(path) if std::path::Path::new(&path).exists() => path.into(),
        _ => panic!(
            "PROTOBUS_PYTHON does not name a Python with confluent-kafka; run the suite with \
             `scripts/test.sh`, or `export PROTOBUS_PYTHON=$(scripts/python-env.sh)`"
        ),
    }
}

/// Python classes generated from `proto/` with `grpc_tools.protoc`, as a
/// Python team makes them from the contract's sources: a directory to put on
/// `sys.path` (`from shop.orders.v1 import orders_pb2`).
pub fn python_classes(python: &std::path::Path) -> tempfile::TempDir {
    fn protos(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read proto/") {
            let path = entry.expect("proto/ entry").path();
            if path.is_dir() {
                protos(&path, found);
            } else if path.extension().is_some_and(|e| e == "proto") {
                found.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut files = Vec::new();
    protos(&root, &mut files);
    let out = tempfile::tempdir().expect("temp dir");
    let generated = std::process::Command::new(python)
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("--proto_path={}", root.display()))
        .arg(format!("--python_out={}", out.path().display()))
        .args(&files)
        .output()
        .expect("run grpc_tools.protoc");
    assert!(
        generated.status.success(),
        "grpc_tools.protoc failed on proto/:\n{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    out
}
