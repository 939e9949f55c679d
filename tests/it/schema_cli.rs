//! `protobus schema register|check|diff` against the project's registry
//! (state in the real Kafka): `check` agrees with the registry's own 409
//! for the same change, and says which rule, file and line.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn protobus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(args)
        .env_remove("SCHEMA_REGISTRY_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run protobus")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// The contract with `orders.proto` edited by `edit`.
fn changed(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"),
        dir.path(),
    );
    let orders = dir.path().join("shop/orders/v1/orders.proto");
    let source = std::fs::read_to_string(&orders).unwrap();
    std::fs::write(&orders, edit(&source)).unwrap();
    dir
}

/// What the registry itself says to registering `orders.proto` from `dir`.
async fn register_directly(url: &str, dir: &Path) -> reqwest::StatusCode {
    let schema = std::fs::read_to_string(dir.join("shop/orders/v1/orders.proto")).unwrap();
    let references: Vec<Value> = ["protobus/options.proto", "shop/common/v1/money.proto"]
        .iter()
        .map(|name| json!({"name": name, "subject": name, "version": 1}))
        .collect();
    reqwest::Client::new()
        .post(format!(
            "{url}/subjects/shop.orders-shop.orders.v1.OrderPlaced/versions"
        ))
        .json(&json!({"schemaType": "PROTOBUF", "schema": schema, "references": references}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_agrees_with_the_registry_and_points_at_the_rule_and_line() {
    let kafka = common::kafka().await;
    let registry =
        protobus_registry::Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
            .await
            .unwrap();
    let url = common::serve_registry(registry).await;
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

    let registered = protobus(&["schema", "register", "--registry", &url]);
    assert!(registered.status.success(), "{}", text(&registered));
    assert!(text(&registered).contains("shop.orders-shop.orders.v1.OrderPlaced -> schema id"));
    let unchanged = protobus(&["schema", "check", "--proto", proto, "--registry", &url]);
    assert!(unchanged.status.success(), "{}", text(&unchanged));

    // A type change: check fails with the rule and line, and the registry refuses it too.
    let breaking = changed(|s| s.replace("string customer_id = 2;", "int64 customer_id = 2;"));
    let dir = breaking.path().to_str().unwrap();
    let checked = protobus(&["schema", "check", "--proto", dir, "--registry", &url]);
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
    let report = text(&checked);
    assert!(
        report.contains("shop/orders/v1/orders.proto:22:3: FIELD_WIRE_COMPATIBLE_TYPE"),
        "{report}"
    );
    assert!(report.contains("FIELD_SCALAR_KIND_CHANGED"), "{report}");
    assert_eq!(
        register_directly(&url, breaking.path()).await,
        reqwest::StatusCode::CONFLICT
    );

    // A compatible change: both accept it.
    let compatible = changed(|s| {
        s.replace(
            "string coupon_code = 6;",
            "string coupon_code = 6;\n  string channel = 7;",
        )
    });
    let dir = compatible.path().to_str().unwrap();
    let checked = protobus(&[
        "schema",
        "check",
        "--proto",
        dir,
        "--registry",
        &url,
        "--format",
        "json",
    ]);
    assert!(checked.status.success(), "{}", text(&checked));
    let verdict: Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(verdict["breaking"], false);
    assert_eq!(
        register_directly(&url, compatible.path()).await,
        reqwest::StatusCode::OK
    );

    // `register` set each subject's declared level; a level changed behind
    // the contract's back fails `check`, naming the subject.
    let subject = "shop.orders-shop.orders.v1.OrderPaid";
    let level = common::get_json(&format!("{url}/config/{subject}")).await;
    assert_eq!(level["compatibilityLevel"], "BACKWARD");
    reqwest::Client::new()
        .put(format!("{url}/config/{subject}"))
        .json(&json!({ "compatibility": "NONE" }))
        .send()
        .await
        .unwrap();
    let drifted = protobus(&["schema", "check", "--proto", proto, "--registry", &url]);
    assert_eq!(drifted.status.code(), Some(1), "{}", text(&drifted));
    assert!(
        text(&drifted).contains(&format!(
            "{subject}: the registry checks it as NONE, the contract declares BACKWARD"
        )),
        "{}",
        text(&drifted)
    );
    let registered = protobus(&["schema", "register", "--registry", &url]);
    assert!(registered.status.success(), "{}", text(&registered));
    let unchanged = protobus(&["schema", "check", "--proto", proto, "--registry", &url]);
    assert!(unchanged.status.success(), "{}", text(&unchanged));
}

#[test]
fn diff_compares_two_trees_in_json() {
    let breaking = changed(|s| s.replace("  string carrier = 2;\n", ""));
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let diffed = protobus(&[
        "schema",
        "diff",
        proto,
        breaking.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(diffed.status.code(), Some(1), "{}", text(&diffed));
    let report: Value = serde_json::from_slice(&diffed.stdout).unwrap();
    assert_eq!(report["breaking"], true);
    let rules: Vec<&str> = report["files"][0]["wire"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
            "FIELD_NO_DELETE_UNLESS_NAME_RESERVED"
        ]
    );
    assert_eq!(
        report["files"][0]["wire"][0]["hint"],
        "add `reserved 2;` to message OrderShipped"
    );
    assert_eq!(
        report["files"][0]["wire"][1]["hint"],
        "add `reserved \"carrier\";` to message OrderShipped"
    );

    let same = protobus(&["schema", "diff", proto, proto]);
    assert!(same.status.success());
    assert!(text(&same).contains("no breaking changes"));
}

/// A contract-level change (OrderPaid keyed by payment instead of order)
/// breaks `schema diff` at the event's option, unless accepted in a file.
#[test]
fn diff_reports_a_changed_key_unless_it_is_accepted() {
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let rekeyed = changed(|s| {
        s.replace(
            "option (protobus.event) = { topic: \"shop.orders\" key: \"order_id\" };\n\n  string order_id = 1;\n  string payment_id",
            "option (protobus.event) = { topic: \"shop.orders\" key: \"payment_id\" };\n\n  string order_id = 1;\n  string payment_id",
        )
    });
    let new = rekeyed.path().to_str().unwrap();
    let refused = protobus(&["schema", "diff", proto, new]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(
            "shop/orders/v1/orders.proto:32:3: KEY_CHANGED shop.orders.v1.OrderPaid: the key changed from `order_id` (string) to `payment_id` (string)"
        ),
        "{}",
        text(&refused)
    );

    let accepted = rekeyed.path().join("accepted-changes.txt");
    std::fs::write(
        &accepted,
        "KEY_CHANGED shop.orders.v1.OrderPaid # ordered per payment from now on\n",
    )
    .unwrap();
    let passed = protobus(&[
        "schema",
        "diff",
        proto,
        new,
        "--accept",
        accepted.to_str().unwrap(),
    ]);
    assert!(passed.status.success(), "{}", text(&passed));
    assert!(text(&passed).contains("accepted: listed in the accepted changes"));
}

/// `schema check` applies the wire rules to the files the registered
/// versions import: a field deleted from the shared `Money` without
/// reserving it fails at its line in `money.proto`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_change_to_a_shared_import_at_its_line() {
    let kafka = common::kafka().await;
    let registry =
        protobus_registry::Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
            .await
            .unwrap();
    let url = common::serve_registry(registry).await;
    let registered = protobus(&["schema", "register", "--registry", &url]);
    assert!(registered.status.success(), "{}", text(&registered));

    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"),
        dir.path(),
    );
    let money = dir.path().join("shop/common/v1/money.proto");
    let source = std::fs::read_to_string(&money).unwrap();
    let line = source
        .lines()
        .position(|l| l.contains("int64 minor_units"))
        .expect("Money.minor_units")
        + 1;
    std::fs::write(
        &money,
        source
            .lines()
            .filter(|l| !l.contains("int64 minor_units"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let checked = protobus(&[
        "schema",
        "check",
        "--proto",
        dir.path().to_str().unwrap(),
        "--registry",
        &url,
    ]);
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
    let report = text(&checked);
    assert!(
        report.contains("FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED shop.common.v1.Money.minor_units"),
        "{report}"
    );
    assert!(
        report.contains(&format!("was: shop/common/v1/money.proto:{line}:")),
        "{report}"
    );
}
