//! The other languages' toolchains the project's scripts install: Python
//! with Confluent's client and grpcio-tools, Go's protoc plugins, and the
//! npm packages of the AsyncAPI check.

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

/// The directory of `protoc-gen-go` and `protoc-gen-go-grpc` that
/// `scripts/go-env.sh` installed (`PROTOBUS_GO_BIN`; `scripts/test.sh` sets
/// it). Panics, saying how to get one, when it is missing.
pub fn go_tools() -> std::path::PathBuf {
    match std::env::var_os("PROTOBUS_GO_BIN") {
        Some(path) if std::path::Path::new(&path).join("protoc-gen-go").exists() => path.into(),
        _ => panic!(
            "PROTOBUS_GO_BIN does not name a directory with protoc-gen-go; run the suite with \
             `scripts/test.sh`, or `export PROTOBUS_GO_BIN=$(scripts/go-env.sh)`"
        ),
    }
}

/// The `node_modules` directory `scripts/node-env.sh` installed the AsyncAPI
/// parser into (`PROTOBUS_NODE_MODULES`; `scripts/test.sh` sets it). Panics,
/// saying how to get one, when it is missing.
pub fn node_modules() -> std::path::PathBuf {
    match std::env::var_os("PROTOBUS_NODE_MODULES") {
        Some(path)
            if std::path::Path::new(&path)
                .join("@asyncapi/parser")
                .exists() =>
        {
            path.into()
        }
        _ => panic!(
            "PROTOBUS_NODE_MODULES does not name a node_modules with @asyncapi/parser; run the \
             suite with `scripts/test.sh`, or `export PROTOBUS_NODE_MODULES=$(scripts/node-env.sh)`"
        ),
    }
}
