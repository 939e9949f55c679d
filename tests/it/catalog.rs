//! The event catalog: `protobus catalog` writes an AsyncAPI 3.0 document
//! that the official parser (`@asyncapi/parser`, from npm) reads with no
//! error or warning, and a Markdown page per topic, both snapshotted; the
//! registry serves the same catalog of what it holds as JSON and HTML.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

fn catalog(out: &Path) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["catalog", "--out"])
        .arg(out)
        .output()
        .expect("run protobus catalog");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_catalog_is_valid_asyncapi_and_a_page_per_topic() {
    let out = tempfile::tempdir().unwrap();
    catalog(out.path());
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    let asyncapi = read("asyncapi.json");

    let parsed = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/asyncapi/validate.cjs"
        ))
        .arg(out.path().join("asyncapi.json"))
        .env("NODE_PATH", common::node_modules())
        .output()
        .expect("run node");
    let said = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        parsed.status.success(),
        "@asyncapi/parser refused the catalog:\n{said}\n{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert!(
        said.contains("parsed: 2 channels, 4 messages, 4 operations"),
        "{said}"
    );

    insta::assert_snapshot!("asyncapi", asyncapi);
    insta::assert_snapshot!("index", read("README.md"));
    insta::assert_snapshot!("shop_orders", read("shop.orders.md"));
    insta::assert_snapshot!("shop_customers", read("shop.customers.md"));
}

/// The channels and messages of an AsyncAPI document, with what each
/// message says of its subject, key and schema.
fn summary(document: &Value) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    for (id, channel) in document["channels"].as_object().unwrap() {
        found.insert(format!("channel {id}"), channel["bindings"].clone());
    }
    for (id, message) in document["components"]["messages"].as_object().unwrap() {
        let event = &message["x-protobus-event"];
        found.insert(
            format!("message {id}"),
            serde_json::json!([
                event["subject"],
                event["key"],
                event["compatibility"],
                message["payload"]["schema"],
                message["description"],
            ]),
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_serves_the_catalog_of_what_it_holds() {
    let at = common::free_address();
    let url = format!("http://{at}");
    let _registry =
        common::protobus(&["registry", "--store", "memory", "--listen", &at.to_string()]);
    common::wait_for_http(&format!("{url}/health")).await;
    let empty = common::get_json(&format!("{url}/catalog")).await;
    assert_eq!(empty["channels"], serde_json::json!({}), "{empty}");

    let registered = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["schema", "register", "--registry", &url])
        .output()
        .unwrap();
    assert!(registered.status.success(), "{registered:?}");

    let served = common::get_json(&format!("{url}/catalog")).await;
    let out = tempfile::tempdir().unwrap();
    catalog(out.path());
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("asyncapi.json")).unwrap()).unwrap();
    assert_eq!(summary(&served), summary(&written));
    assert_eq!(served["asyncapi"], "3.0.0");

    let page = reqwest::get(format!("{url}/catalog.html")).await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = page.text().await.unwrap();
    for name in [
        "shop.orders.v1.OrderPlaced",
        "shop.orders.v1.OrderPaid",
        "shop.orders.v1.OrderShipped",
        "shop.customers.v1.CustomerRegistered",
        "A customer placed an order: what was bought, at what price.",
    ] {
        assert!(page.contains(name), "{name} is not on the page");
    }
}
