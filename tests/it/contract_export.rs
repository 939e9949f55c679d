//! `protobus contract export`: the sources (options included) compile on
//! their own, the descriptor set holds the events, the manifest is a
//! snapshot, and two exports are byte for byte the same, whether of the
//! built-in contract or of `proto/` compiled while the command runs.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message as _;
use protobus_compat::Contract;
use serde_json::Value;

fn export(out: &Path) {
    export_with(out, &[]);
}

fn export_with(out: &Path, extra: &[&str]) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["contract", "export", "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("run protobus contract export");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file below `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
fn the_export_compiles_on_its_own_and_is_deterministic() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    export(first.path());
    export(second.path());
    let exported = files(first.path());
    assert_eq!(exported, files(second.path()), "two exports differ");
    assert_eq!(
        exported.keys().cloned().collect::<Vec<_>>(),
        [
            "buf.yaml",
            "contract.binpb",
            "protobus.json",
            "protobus/ingest/v1/ingest.proto",
            "protobus/options.proto",
            "shop/common/v1/money.proto",
            "shop/customers/v1/customers.proto",
            "shop/orders/v1/orders.proto",
        ]
    );

    // The sources alone are a contract: they compile, with the same subjects.
    let contract = Contract::load(first.path()).unwrap();
    assert!(contract.errors().is_empty(), "{:?}", contract.errors());
    let manifest: Value = serde_json::from_slice(&exported["protobus.json"]).unwrap();
    let subjects: Vec<&str> = contract
        .subjects()
        .iter()
        .map(|s| s.subject.as_str())
        .collect();
    let mut listed: Vec<&str> = manifest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(subjects, listed);

    let set =
        prost_types::FileDescriptorSet::decode(exported["contract.binpb"].as_slice()).unwrap();
    let orders = set
        .file
        .iter()
        .find(|f| f.name() == "shop/orders/v1/orders.proto")
        .expect("orders.proto in the descriptor set");
    assert!(
        orders
            .message_type
            .iter()
            .any(|m| m.name() == "OrderPlaced")
    );
    insta::assert_snapshot!(String::from_utf8(exported["protobus.json"].clone()).unwrap());
}

/// The contract compiled at run time (what `protobus ingest --contract`
/// serves) is the build's, down to the descriptor set's bytes.
#[test]
fn the_sources_compiled_at_run_time_give_the_built_in_contract() {
    let (built, loaded) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    export(built.path());
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    export_with(loaded.path(), &["--proto", proto.to_str().unwrap()]);
    assert_eq!(files(built.path()), files(loaded.path()));
}
