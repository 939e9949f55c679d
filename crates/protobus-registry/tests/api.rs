//! The REST API, over real HTTP, against Confluent Schema Registry's rules:
//! status codes, error codes, ids, versions, deletes, references, configs.

mod common;

use common::{Api, error_code, proto};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ORDER_V1: &str = "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; }\n";
const ORDER_V2: &str =
    "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; int64 total = 2; }\n";

#[tokio::test]
async fn registering_the_same_schema_again_gives_the_same_id_and_version() {
    let api = Api::start().await;
    let (status, first) = api.register("orders-value", proto(ORDER_V1)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // Comments and layout do not make a new schema.
    let relaid =
        "syntax = \"proto3\";\n// orders\npackage shop;\n\nmessage Order {\n  string id = 1;\n}\n";
    let (_, again) = api.register("orders-value", proto(relaid)).await;
    assert_eq!(first, again);
    assert_eq!(
        api.get("/subjects/orders-value/versions").await.1,
        json!([1])
    );

    let (_, v2) = api.register("orders-value", proto(ORDER_V2)).await;
    assert_eq!(v2["id"], first["id"].as_i64().unwrap() + 1);
    // The same schema under another subject keeps its id.
    let (_, other) = api.register("archive-value", proto(ORDER_V1)).await;
    assert_eq!(other, first);

    let (status, by_id) = api.get(&format!("/schemas/ids/{}", first["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schemaType"], "PROTOBUF");
    assert_eq!(by_id["schema"], ORDER_V1);
    let (_, raw) = api
        .raw(
            Method::GET,
            &format!("/schemas/ids/{}/schema", first["id"]),
            None,
        )
        .await;
    assert_eq!(raw, ORDER_V1);
    let (_, versions) = api
        .get(&format!("/schemas/ids/{}/versions", first["id"]))
        .await;
    assert_eq!(
        versions,
        json!([{"subject": "archive-value", "version": 1}, {"subject": "orders-value", "version": 1}])
    );
    assert_eq!(
        api.get("/subjects").await.1,
        json!(["archive-value", "orders-value"])
    );
    assert_eq!(api.get("/schemas/types").await.1, json!(["PROTOBUF"]));

    let (_, latest) = api.get("/subjects/orders-value/versions/latest").await;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["schemaType"], "PROTOBUF");
    assert_eq!(
        api.get("/subjects/orders-value/versions/-1").await.1,
        latest
    );
    let (_, looked_up) = api
        .call(
            Method::POST,
            "/subjects/orders-value",
            Some(proto(ORDER_V1)),
        )
        .await;
    assert_eq!(looked_up["version"], 1);
    assert_eq!(looked_up["id"], first["id"]);
}

#[tokio::test]
async fn subjects_may_contain_slashes_sent_as_percent_2f() {
    let api = Api::start().await;
    let (status, id) = api.register("shop%2Forders-value", proto(ORDER_V1)).await;
    assert_eq!(status, StatusCode::OK, "{id}");
    assert_eq!(api.get("/subjects").await.1, json!(["shop/orders-value"]));
    let (_, version) = api.get("/subjects/shop%2Forders-value/versions/1").await;
    assert_eq!(version["subject"], "shop/orders-value");
}

#[tokio::test]
async fn errors_carry_confluents_codes_and_change_nothing() {
    let api = Api::start().await;
    let cases: Vec<(Method, &str, Option<Value>, StatusCode, i64)> = vec![
        (
            Method::GET,
            "/subjects/none/versions",
            None,
            StatusCode::NOT_FOUND,
            40401,
        ),
        (
            Method::GET,
            "/subjects/none/versions/1",
            None,
            StatusCode::NOT_FOUND,
            40401,
        ),
        (
            Method::GET,
            "/schemas/ids/99",
            None,
            StatusCode::NOT_FOUND,
            40403,
        ),
        (
            Method::GET,
            "/subjects/x/versions/zero",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
        ),
        (
            Method::GET,
            "/subjects/x/versions/0",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
        ),
        (
            Method::GET,
            "/config/none",
            None,
            StatusCode::NOT_FOUND,
            40408,
        ),
        (
            Method::PUT,
            "/config",
            Some(json!({"compatibility": "SIDEWAYS"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
        ),
        (
            Method::POST,
            "/subjects/x/versions",
            Some(
                json!({"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\";\nmessage A { strin a = 1; }"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            Method::POST,
            "/subjects/x/versions",
            Some(json!({"schemaType": "AVRO", "schema": "\"string\""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            Method::POST,
            "/subjects/x/versions",
            Some(json!({"schema": ORDER_V1})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            Method::POST,
            "/subjects/x/versions",
            Some(
                json!({"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\"; import \"missing.proto\";", "references": [{"name": "missing.proto", "subject": "missing", "version": 1}]}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            Method::GET,
            "/no/such/path",
            None,
            StatusCode::NOT_FOUND,
            404,
        ),
        (
            Method::PATCH,
            "/subjects",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            405,
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, value) = api.call(method.clone(), path, body).await;
        assert_eq!(
            (got, error_code(&value)),
            (status, code),
            "{method} {path}: {value}"
        );
        assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The parser's position reaches the client.
    let (_, value) = api
        .register("x", json!({"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\";\nmessage A {\n  strin a = 1;\n}"}))
        .await;
    assert!(
        value["message"].as_str().unwrap().contains(":3:3"),
        "{value}"
    );

    let (status, value) = api
        .raw(
            Method::POST,
            "/subjects/x/versions",
            Some(b"{\"schema\": ".to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    let huge = vec![b' '; protobus_registry::MAX_BODY_BYTES + 1];
    let (status, value) = api
        .raw(Method::POST, "/subjects/x/versions", Some(huge))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{value}");
    assert!(value.contains("\"error_code\":413"), "{value}");

    assert_eq!(
        api.get("/subjects").await.1,
        json!([]),
        "nothing was registered"
    );
}

#[tokio::test]
async fn unknown_and_null_fields_are_ignored() {
    let api = Api::start().await;
    let body = json!({
        "schemaType": "PROTOBUF", "schema": ORDER_V1, "references": null,
        "metadata": null, "ruleSet": null, "somethingNew": {"a": 1}
    });
    let (status, value) = api.register("orders-value", body).await;
    assert_eq!(status, StatusCode::OK, "{value}");
}

#[tokio::test]
async fn references_resolve_recursively_and_guard_deletes() {
    let api = Api::start().await;
    let money = "syntax = \"proto3\";\npackage shop.common;\nmessage Money { string currency = 1; int64 units = 2; }\n";
    let line = "syntax = \"proto3\";\npackage shop.common;\nimport \"shop/common/money.proto\";\nmessage Line { string sku = 1; shop.common.Money price = 2; }\n";
    let order = "syntax = \"proto3\";\npackage shop;\nimport \"shop/common/line.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { repeated shop.common.Line lines = 1; google.protobuf.Timestamp at = 2; }\n";
    let (_, money_id) = api.register("money", proto(money)).await;
    let (status, line_id) = api
        .register("line", json!({"schemaType": "PROTOBUF", "schema": line, "references": [
            {"name": "shop/common/money.proto", "subject": "money", "version": 1, "properties": null, "tags": null}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{line_id}");
    // Order refers to line only; line's own reference to money resolves through it.
    let order_body = json!({"schemaType": "PROTOBUF", "schema": order, "references": [
        {"name": "shop/common/line.proto", "subject": "line", "version": 1}]});
    let (status, order_id) = api.register("orders-value", order_body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{order_id}");
    let (_, by_id) = api.get(&format!("/schemas/ids/{}", order_id["id"])).await;
    assert_eq!(
        by_id["references"],
        json!([{"name": "shop/common/line.proto", "subject": "line", "version": 1}])
    );
    assert_eq!(
        api.get("/subjects/line/versions/1/referencedby").await.1,
        json!([order_id["id"]])
    );
    assert_eq!(
        api.get("/subjects/money/versions/1/referencedby").await.1,
        json!([line_id["id"]])
    );
    let _ = money_id;

    // A referenced version cannot be deleted, soft or permanent.
    let (status, value) = api.delete("/subjects/line/versions/1").await;
    assert_eq!(
        (status, error_code(&value)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42206),
        "{value}"
    );
    let (status, value) = api.delete("/subjects/money").await;
    assert_eq!(error_code(&value), 42206, "{status} {value}");

    // Deleting top-down works: soft first, then permanent.
    let (status, value) = api.delete("/subjects/orders-value?permanent=true").await;
    assert_eq!(
        (status, error_code(&value)),
        (StatusCode::NOT_FOUND, 40405),
        "{value}"
    );
    assert_eq!(api.delete("/subjects/orders-value").await.1, json!([1]));
    let (_, value) = api.delete("/subjects/orders-value").await;
    assert_eq!(error_code(&value), 40404, "{value}");
    assert_eq!(api.get("/subjects").await.1, json!(["line", "money"]));
    assert_eq!(
        api.get("/subjects?deleted=true").await.1,
        json!(["line", "money", "orders-value"])
    );
    let (_, value) = api.get("/subjects/orders-value/versions/1").await;
    assert_eq!(error_code(&value), 40401);
    let (status, value) = api
        .get("/subjects/orders-value/versions/1?deleted=true")
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    // Soft-deleted order still refers to line: a live reference no longer exists.
    assert_eq!(
        api.get("/subjects/line/versions/1/referencedby").await.1,
        json!([])
    );
    assert_eq!(
        api.delete("/subjects/orders-value?permanent=true").await.1,
        json!([1])
    );
    let (_, value) = api.get(&format!("/schemas/ids/{}", order_id["id"])).await;
    assert_eq!(error_code(&value), 40403, "hard-deleted schemas are gone");

    // Versions: soft then permanent, with 40406/40407 out of order.
    let (_, value) = api.delete("/subjects/line/versions/1?permanent=true").await;
    assert_eq!(error_code(&value), 40407, "{value}");
    assert_eq!(api.delete("/subjects/line/versions/1").await.1, json!(1));
    let (_, value) = api.delete("/subjects/line/versions/1").await;
    assert_eq!(error_code(&value), 40406, "{value}");
    assert_eq!(
        api.delete("/subjects/line/versions/1?permanent=true")
            .await
            .1,
        json!(1)
    );

    // Registering again after a delete gives a new version of the same content.
    let (status, again) = api.register("orders-value", order_body).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "its reference is gone: {again}"
    );
}

#[tokio::test]
async fn compatibility_levels_and_configs_behave_like_confluents() {
    let api = Api::start().await;
    assert_eq!(
        api.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    api.register("orders-value", proto(ORDER_V1)).await;
    let breaking = "syntax = \"proto3\";\npackage shop;\nmessage Order { int64 id = 1; }\n";

    let (status, value) = api.register("orders-value", proto(breaking)).await;
    assert_eq!((status, error_code(&value)), (StatusCode::CONFLICT, 409));
    let message = value["message"].as_str().unwrap();
    assert!(
        message.contains("FIELD_SCALAR_KIND_CHANGED") && message.contains("#/Order/1"),
        "{message}"
    );
    assert!(message.contains("compatibility: 'BACKWARD'"), "{message}");

    let (_, verdict) = api
        .call(
            Method::POST,
            "/compatibility/subjects/orders-value/versions/latest?verbose=true",
            Some(proto(breaking)),
        )
        .await;
    assert_eq!(verdict["is_compatible"], false);
    assert!(
        verdict["messages"][0]
            .as_str()
            .unwrap()
            .contains("FIELD_SCALAR_KIND_CHANGED"),
        "{verdict}"
    );
    let (_, verdict) = api
        .call(
            Method::POST,
            "/compatibility/subjects/orders-value/versions",
            Some(proto(ORDER_V2)),
        )
        .await;
    assert_eq!(verdict, json!({"is_compatible": true}));
    let (_, value) = api
        .call(
            Method::POST,
            "/compatibility/subjects/orders-value/versions/7",
            Some(proto(ORDER_V2)),
        )
        .await;
    assert_eq!(error_code(&value), 40402);

    // A subject-level NONE lets the change through; deleting it restores the global level.
    let (_, value) = api
        .call(
            Method::PUT,
            "/config/orders-value",
            Some(json!({"compatibility": "NONE"})),
        )
        .await;
    assert_eq!(value, json!({"compatibility": "NONE"}));
    assert_eq!(
        api.get("/config/orders-value").await.1,
        json!({"compatibilityLevel": "NONE"})
    );
    let (status, value) = api.register("orders-value", proto(breaking)).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(
        api.delete("/config/orders-value").await.1,
        json!({"compatibilityLevel": "NONE"})
    );
    let (_, value) = api.get("/config/orders-value").await;
    assert_eq!(error_code(&value), 40408);
    assert_eq!(
        api.get("/config/orders-value?defaultToGlobal=true").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );

    // Global FULL_TRANSITIVE: checked against every version, both directions.
    let (_, value) = api
        .call(
            Method::PUT,
            "/config",
            Some(json!({"compatibility": "FULL_TRANSITIVE"})),
        )
        .await;
    assert_eq!(value, json!({"compatibility": "FULL_TRANSITIVE"}));
    let string_id =
        "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; string note = 3; }\n";
    let (status, value) = api.register("orders-value", proto(string_id)).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a string id breaks the int64 id of version 2: {value}"
    );
    assert_eq!(
        api.delete("/config").await.1,
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        api.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
}

#[tokio::test]
async fn normalize_gives_reordered_imports_the_same_id() {
    let api = Api::start().await;
    for (subject, schema) in [
        ("a", "syntax = \"proto3\"; package a; message A {}"),
        ("b", "syntax = \"proto3\"; package b; message B {}"),
    ] {
        api.register(subject, proto(schema)).await;
    }
    let refs = json!([{"name": "a.proto", "subject": "a", "version": 1}, {"name": "b.proto", "subject": "b", "version": 1}]);
    let ab = json!({"schemaType": "PROTOBUF", "references": refs,
        "schema": "syntax = \"proto3\"; import \"a.proto\"; import \"b.proto\"; message C { a.A a = 1; b.B b = 2; }"});
    let ba = json!({"schemaType": "PROTOBUF", "references": refs,
        "schema": "syntax = \"proto3\"; import \"b.proto\"; import \"a.proto\"; message C { .a.A a = 1; .b.B b = 2; }"});
    let (_, first) = api
        .call(
            Method::POST,
            "/subjects/c/versions?normalize=true",
            Some(ab),
        )
        .await;
    let (_, second) = api
        .call(
            Method::POST,
            "/subjects/c/versions?normalize=true",
            Some(ba.clone()),
        )
        .await;
    assert_eq!(first, second);
    let (_, found) = api
        .call(Method::POST, "/subjects/c?normalize=true", Some(ba.clone()))
        .await;
    assert_eq!(found["id"], first["id"]);
    let (_, plain) = api.call(Method::POST, "/subjects/c", Some(ba)).await;
    assert_eq!(
        error_code(&plain),
        40403,
        "without normalize, import order counts"
    );
}

#[tokio::test]
async fn schemas_also_come_and_go_as_serialized_descriptors() {
    let api = Api::start().await;
    let (_, id) = api.register("orders-value", proto(ORDER_V1)).await;
    let (_, serialized) = api
        .get(&format!("/schemas/ids/{}?format=serialized", id["id"]))
        .await;
    let base64 = serialized["schema"].as_str().unwrap();
    assert!(
        !base64.contains(' ') && !base64.contains("syntax"),
        "{base64}"
    );
    let (_, by_version) = api
        .get("/subjects/orders-value/versions/1?format=serialized")
        .await;
    assert_eq!(by_version["schema"], base64);
    // Confluent's Python and Go clients register base64 descriptors: same schema, same id.
    let (status, again) = api.register("copy-value", proto(base64)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, id);
    // Without the parameter the text is the one first registered.
    assert_eq!(
        api.get(&format!("/schemas/ids/{}", id["id"])).await.1["schema"],
        ORDER_V1
    );
}
