//! `protobus registry --store memory`: the registry with its log in the
//! process, for tests and demos; Kafka is never contacted.

use crate::common;

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_serves_without_kafka() {
    let at = common::free_address();
    let _registry = common::protobus(&[
        "registry",
        "--store",
        "memory",
        "--listen",
        &at.to_string(),
        // Nothing listens there: the memory store must not need it.
        "--kafka",
        &common::free_address().to_string(),
    ]);
    common::wait_for_http(&format!("http://{at}/health")).await;
    let http = reqwest::Client::new();
    let schema = "syntax = \"proto3\";\npackage demo;\nmessage Ping { string id = 1; }\n";
    let registered: Value = http
        .post(format!("http://{at}/subjects/demo-value/versions"))
        .json(&json!({ "schema": schema, "schemaType": "PROTOBUF" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["id"].as_i64().expect("an id");
    let found = common::get_json(&format!("http://{at}/subjects/demo-value/versions/latest")).await;
    assert_eq!(found["id"], id);
    assert_eq!(found["version"], 1);
    assert_eq!(found["schema"], schema);
}
