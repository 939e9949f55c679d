//! The contract's curve: contracts of 10, 100 and 1 000 event types, ten to
//! a file (one topic per file), each event importing a shared file and a
//! well-known type. For each, a crate of its own compiles it with
//! `protobus-build`, as a user's crate does:
//!
//! - `cargo build` of that crate, its dependencies built beforehand (once,
//!   outside the clock): from clean, and again after one `.proto` file changed;
//! - the code generation alone (`protobus_build` in this process): the
//!   build script's share of the build; the rest is rustc;
//! - the generated Rust, in bytes and lines;
//! - the contract registered in a registry (in this process), then
//!   `protobus schema check` of the directory against it, as a process.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use protobus_ingest::ContractSource;
use protobus_runtime::SchemaRegistry;

use crate::Curve;

/// Event types in one file (and on one topic).
const EVENTS_PER_FILE: usize = 10;

/// The common file every event file imports.
const COMMON: &str = r#"syntax = "proto3";

package scale.common.v1;

message Amount {
  int64 units = 1;
  string currency = 2;
}

message Line {
  string sku = 1;
  uint32 quantity = 2;
  Amount price = 3;
}
"#;

/// The event file `file` of a contract, with the events `events`.
fn event_file(file: usize, events: std::ops::Range<usize>) -> String {
    let topic = format!("scale.t{file:03}");
    let mut source = format!(
        "syntax = \"proto3\";\n\npackage scale.t{file:03}.v1;\n\n\
         import \"google/protobuf/timestamp.proto\";\n\
         import \"protobus/options.proto\";\n\
         import \"scale/common/v1/common.proto\";\n\n\
         option (protobus.topic) = {{ name: \"{topic}\" partitions: 3 }};\n"
    );
    for i in events {
        write!(
            source,
            "\nmessage Happened{i:04} {{\n  \
             option (protobus.event) = {{ topic: \"{topic}\" key: \"id\" }};\n\n  \
             string id = 1;\n  string account_id = 2;\n  \
             scale.common.v1.Amount amount = 3;\n  \
             repeated scale.common.v1.Line lines = 4;\n  \
             google.protobuf.Timestamp at = 5;\n  \
             map<string, string> attributes = 6;\n  \
             oneof source {{\n    string web = 7;\n    string api = 8;\n  }}\n  \
             uint64 sequence = 9;\n}}\n"
        )
        .unwrap();
    }
    source
}

/// Writes a crate compiling a contract of `events` event types under `dir`;
/// the path of one of its event files, the one touched later.
fn write_crate(dir: &Path, name: &str, events: usize) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let proto = dir.join("proto");
    let common = proto.join("scale/common/v1");
    std::fs::create_dir_all(&common).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(common.join("common.proto"), COMMON).unwrap();
    let mut touched = PathBuf::new();
    for (file, start) in (0..events).step_by(EVENTS_PER_FILE).enumerate() {
        let path = proto.join(format!("scale/t{file:03}/v1/events.proto"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let end = (start + EVENTS_PER_FILE).min(events);
        std::fs::write(&path, event_file(file, start..end)).unwrap();
        touched = path;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crates = root.join("crates");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nprost = \"0.14\"\nprost-types = \"0.14\"\n\
             protobus-runtime = {{ path = {runtime:?} }}\n\n\
             [build-dependencies]\nprotobus-build = {{ path = {build:?} }}\n\n\
             # Not a member of the repository's workspace.\n[workspace]\n",
            runtime = crates.join("protobus-runtime"),
            build = crates.join("protobus-build"),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("build.rs"),
        "fn main() -> Result<(), Box<dyn std::error::Error>> {\n    \
         protobus_build::configure().compile(\"proto\")?;\n    Ok(())\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "#![allow(clippy::all, missing_debug_implementations)]\n\
         include!(concat!(env!(\"OUT_DIR\"), \"/protobus_contract.rs\"));\n",
    )
    .unwrap();
    // The repository's versions of every dependency, so no build resolves
    // (or downloads) anything new.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    touched
}

/// Runs `cargo <args>` on the crate in `dir` with `target` as its target
/// directory; its wall time in s.
fn cargo(args: &[&str], dir: &Path, target: &Path) -> f64 {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let output = Command::new(cargo)
        .args(args)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        .output()
        .expect("run cargo");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "cargo {args:?} of {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    seconds
}

/// `cargo build` of the crate in `dir`; its wall time in s.
fn cargo_build(dir: &Path, target: &Path) -> f64 {
    cargo(&["build", "--quiet"], dir, target)
}

/// `cargo clean -p name`, so that the next build compiles the crate again.
fn cargo_clean(dir: &Path, target: &Path, name: &str) {
    cargo(&["clean", "--quiet", "-p", name], dir, target);
}

/// Bytes and lines of the Rust `protobus-build` generates for `proto`, and
/// the seconds it takes.
fn generate(proto: &Path) -> (u64, usize, f64) {
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    protobus_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile(proto)
        .expect("generate the contract's code");
    let seconds = started.elapsed().as_secs_f64();
    let (mut bytes, mut lines) = (0, 0);
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            bytes += text.len() as u64;
            lines += text.lines().count();
        }
    }
    (bytes, lines, seconds)
}

/// Registers every event of the contract in `proto` with `registry`; the
/// seconds it took.
async fn register(proto: &Path, registry: &Arc<SchemaRegistry>) -> f64 {
    let started = Instant::now();
    let loaded = ContractSource::Sources(proto.to_owned())
        .load()
        .await
        .expect("load the contract");
    let contract = loaded.contract().expect("the contract's event table");
    for event in contract.events {
        registry
            .id_for(contract, event)
            .await
            .unwrap_or_else(|e| panic!("register {}: {e}", event.full_name));
    }
    started.elapsed().as_secs_f64()
}

/// `protobus schema check` of `proto` against the registry at `url`; its
/// wall time in s.
fn schema_check(proto: &Path, url: &str) -> f64 {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["schema", "check", "--registry", url, "--proto"])
        .arg(proto)
        .output()
        .expect("run protobus schema check");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "schema check failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    seconds
}

pub(crate) async fn run(sizes: &[usize]) -> Curve {
    let mut curve = Curve::new(
        "Contract size: build, generated code and schema check",
        &[
            "event types",
            "files",
            "cargo build (clean) s",
            "cargo build (one file changed) s",
            "code generation s",
            "generated KiB",
            "generated lines",
            "register s",
            "schema check s",
        ],
    );
    let base = crate::target_dir().join("scale-contract");
    let target = base.join("target");
    // The dependencies, built once outside the clock.
    let warm = base.join("warm");
    write_crate(&warm, "scale-contract-warm", 1);
    println!("contract: building the dependencies once");
    cargo_build(&warm, &target);
    for &events in sizes {
        let name = format!("scale-contract-{events}");
        let dir = base.join(&name);
        let touched = write_crate(&dir, &name, events);
        cargo_clean(&dir, &target, &name);
        let clean = cargo_build(&dir, &target);
        let mut source = std::fs::read_to_string(&touched).unwrap();
        source.push_str("// changed\n");
        std::fs::write(&touched, source).unwrap();
        let changed = cargo_build(&dir, &target);
        let proto = dir.join("proto");
        let (bytes, lines, generation) = generate(&proto);
        // A registry of its own for each size, in this process.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = protobus_registry::router(protobus_registry::Registry::in_memory());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Arc::new(SchemaRegistry::new(&url).unwrap());
        let registered = register(&proto, &client).await;
        let check = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || schema_check(&proto, &url))
                .await
                .unwrap()
        };
        server.abort();
        curve.row(vec![
            events.to_string(),
            events.div_ceil(EVENTS_PER_FILE).to_string(),
            format!("{clean:.1}"),
            format!("{changed:.1}"),
            format!("{generation:.2}"),
            format!("{:.0}", bytes as f64 / 1024.0),
            lines.to_string(),
            format!("{registered:.2}"),
            format!("{check:.2}"),
        ]);
    }
    curve
}
