//! The contract in `proto/` against the baseline last accepted, kept in
//! `schemas/contract.snap` (an insta snapshot, checked in like an offline
//! artefact). A change that breaks readers fails here, with the file, line,
//! rule and what to do instead, before it can be accepted; a compatible
//! change shows up as a snapshot diff to review (`cargo insta review`).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use protobus_compat::{Accepted, Contract, compare};

const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/contract.snap");
/// Contract-level changes accepted deliberately (`RULE full.event.Name`
/// lines); none when the file does not exist.
const ACCEPTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/accepted-changes.txt");

fn accepted() -> Accepted {
    match std::fs::read_to_string(ACCEPTED) {
        Ok(text) => Accepted::parse(&text).unwrap_or_else(|e| panic!("{ACCEPTED}: {e}")),
        Err(_) => Accepted::default(),
    }
}

/// The baseline as reviewers read it: each file that defines events (and
/// what it imports), with the subjects it carries and their levels.
pub(crate) fn render(contract: &Contract) -> String {
    let mut out = String::new();
    for (name, source) in contract.event_files() {
        out.push_str(&format!("=== {name}\n"));
        for subject in contract.subjects().iter().filter(|s| s.file == name) {
            out.push_str(&format!(
                "# subject {} ({})\n",
                subject.subject,
                subject.level.name()
            ));
        }
        out.push_str(source.trim_end());
        out.push_str("\n\n");
    }
    out
}

/// The files of an accepted snapshot, parsed back from its text.
fn parse(snapshot: &str) -> BTreeMap<String, String> {
    let body = snapshot.splitn(3, "---\n").nth(2).unwrap_or_default();
    let mut files = BTreeMap::new();
    for block in body.split("=== ").skip(1) {
        let (name, rest) = block.split_once('\n').unwrap_or((block, ""));
        let source: Vec<&str> = rest
            .lines()
            .filter(|l| !l.starts_with("# subject "))
            .collect();
        files.insert(name.trim().to_owned(), source.join("\n") + "\n");
    }
    files
}

pub(crate) fn check(root: &Path, baseline: Option<&str>) -> Result<Contract, String> {
    let current = Contract::load(root).map_err(|e| format!("reading {}: {e}", root.display()))?;
    if !current.errors().is_empty() {
        return Err(current.errors().join("\n"));
    }
    if let Some(baseline) = baseline {
        let accepted = Contract::from_sources(parse(baseline));
        let report = compare(&accepted, &current, &self::accepted());
        if report.is_breaking() {
            return Err(format!(
                "the contract in proto/ breaks readers of the accepted baseline (schemas/contract.snap):\n\n{}\
                 To change an event incompatibly, publish it under a new package (e.g. `shop.orders.v2`) next to the old one; \
                 the old version stays in the baseline.",
                report.render()
            ));
        }
    }
    Ok(current)
}

/// Set to accept a first baseline for a contract that has none yet.
const NEW_BASELINE: &str = "PROTOBUS_NEW_BASELINE";

/// The accepted baseline's text. A missing one fails (a deleted file must
/// not turn the check off) unless a first one is being made on purpose
/// (`first`).
fn baseline(path: &Path, first: bool) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(_) if first => Ok(None),
        Err(e) => Err(format!(
            "the accepted baseline {} cannot be read ({e}): every change to proto/ is checked against it. \
             To accept a first one for a new contract: {NEW_BASELINE}=1 INSTA_UPDATE=always cargo test --test it contract_baseline",
            path.display()
        )),
    }
}

#[test]
fn the_contract_stays_compatible_with_its_accepted_baseline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let first = std::env::var_os(NEW_BASELINE).is_some();
    let baseline = baseline(Path::new(BASELINE), first).unwrap_or_else(|reason| panic!("{reason}"));
    let current = check(&root, baseline.as_deref()).unwrap_or_else(|report| panic!("{report}"));
    insta::with_settings!({ snapshot_path => "../../schemas", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("contract", render(&current));
    });
}

#[test]
fn a_missing_baseline_fails_instead_of_skipping_the_check() {
    let missing = tempfile::tempdir().unwrap().path().join("contract.snap");
    let reason = baseline(&missing, false).expect_err("a missing baseline fails");
    assert!(reason.contains("cannot be read"), "{reason}");
    assert!(reason.contains(NEW_BASELINE), "{reason}");
    assert_eq!(
        baseline(&missing, true),
        Ok(None),
        "unless a first one is made"
    );
    assert!(baseline(Path::new(BASELINE), false).unwrap().is_some());
}

#[test]
fn changing_a_field_type_in_the_example_contract_fails_with_rule_and_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let accepted = render(&Contract::load(&root).unwrap());
    let baseline = format!("---\nsource: test\n---\n{accepted}");

    let changed = tempfile::tempdir().unwrap();
    common::copy_dir(&root, changed.path());
    let orders = changed.path().join("shop/orders/v1/orders.proto");
    let source = std::fs::read_to_string(&orders).unwrap();
    std::fs::write(
        &orders,
        source.replace("string customer_id = 2;", "int64 customer_id = 2;"),
    )
    .unwrap();
    let report = check(changed.path(), Some(&baseline)).expect_err("a type change breaks readers");
    assert!(report.contains("FIELD_WIRE_COMPATIBLE_TYPE"), "{report}");
    let at = "shop/orders/v1/orders.proto:22:3";
    assert!(
        report.contains(&format!("{at}: FIELD_WIRE_COMPATIBLE_TYPE")),
        "{report}"
    );
    assert!(
        report.contains(&format!("{at}: FIELD_SCALAR_KIND_CHANGED")),
        "{report}"
    );

    // The safe way: reserve the old field, add a new one.
    std::fs::write(
        &orders,
        source.replace(
            "string customer_id = 2;",
            "reserved 2;\n  reserved \"customer_id\";\n  int64 customer_number = 7;",
        ),
    )
    .unwrap();
    check(changed.path(), Some(&baseline)).expect("reserving and adding passes");
}
