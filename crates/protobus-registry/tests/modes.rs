//! Modes over real HTTP, as Confluent Schema Registry has them: READONLY
//! refuses writes with 42205, a global READONLY_OVERRIDE overrides subjects'
//! modes, IMPORT registers under a given id and version, and mode changes
//! always go through.

mod common;

use common::{Api, error_code, proto};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ORDER: &str = "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; }\n";
const REFUND: &str = "syntax = \"proto3\";\npackage shop;\nmessage Refund { string id = 1; }\n";

#[tokio::test]
async fn readonly_refuses_writes_with_confluents_code_and_mode_changes_go_through() {
    let api = Api::start().await;
    assert_eq!(api.get("/mode").await.1, json!({ "mode": "READWRITE" }));
    let (_, registered) = api.register("orders-value", proto(ORDER)).await;

    let (status, set) = api
        .call(
            Method::PUT,
            "/mode/orders-value",
            Some(json!({ "mode": "READONLY" })),
        )
        .await;
    assert_eq!(
        (status, set),
        (StatusCode::OK, json!({ "mode": "READONLY" }))
    );
    let (status, refused) = api.register("orders-value", proto(REFUND)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), 42205);
    assert_eq!(
        refused["message"],
        "Subject orders-value is in read-only mode"
    );
    for (method, path, body) in [
        (Method::DELETE, "/subjects/orders-value/versions/1", None),
        (Method::DELETE, "/subjects/orders-value", None),
        (
            Method::PUT,
            "/config/orders-value",
            Some(json!({ "compatibility": "NONE" })),
        ),
    ] {
        let (status, refused) = api.call(method.clone(), path, body).await;
        assert_eq!(
            error_code(&refused),
            42205,
            "{method} {path}: {status} {refused}"
        );
    }
    // Reads go on; other subjects are not touched.
    assert_eq!(
        api.get(&format!("/schemas/ids/{}", registered["id"]))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        api.register("refunds-value", proto(REFUND)).await.0,
        StatusCode::OK
    );

    let (_, mode) = api.get("/mode/orders-value").await;
    assert_eq!(mode, json!({ "mode": "READONLY" }));
    let (status, removed) = api.delete("/mode/orders-value").await;
    assert_eq!(
        (status, removed),
        (StatusCode::OK, json!({ "mode": "READONLY" }))
    );
    let (status, missing) = api.get("/mode/orders-value").await;
    assert_eq!(
        (status, error_code(&missing)),
        (StatusCode::NOT_FOUND, 40409)
    );
    assert_eq!(
        api.get("/mode/orders-value?defaultToGlobal=true").await.1,
        json!({ "mode": "READWRITE" })
    );

    // A global READONLY_OVERRIDE wins over a subject's own READWRITE.
    api.call(
        Method::PUT,
        "/mode/refunds-value",
        Some(json!({ "mode": "READWRITE" })),
    )
    .await;
    api.call(
        Method::PUT,
        "/mode",
        Some(json!({ "mode": "READONLY_OVERRIDE" })),
    )
    .await;
    let (_, refused) = api.register("refunds-value", proto(ORDER)).await;
    assert_eq!(error_code(&refused), 42205, "{refused}");
    let (status, bad) = api
        .call(Method::PUT, "/mode", Some(json!({ "mode": "WRITEONLY" })))
        .await;
    assert_eq!(
        (status, error_code(&bad)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42204)
    );
    api.call(Method::PUT, "/mode", Some(json!({ "mode": "READWRITE" })))
        .await;
    assert_eq!(
        api.register("other-value", proto(ORDER)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn import_registers_under_the_given_id_and_version() {
    let api = Api::start().await;
    // A given id is refused outside IMPORT mode.
    let mut imported = proto(ORDER);
    imported["id"] = json!(1042);
    imported["version"] = json!(7);
    let (_, refused) = api.register("orders-value", imported.clone()).await;
    assert_eq!(error_code(&refused), 42205, "{refused}");
    assert_eq!(
        refused["message"],
        "Subject orders-value is not in import mode"
    );

    let (status, _) = api
        .call(
            Method::PUT,
            "/mode/orders-value",
            Some(json!({ "mode": "IMPORT" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, registered) = api.register("orders-value", imported).await;
    assert_eq!(
        (status, registered),
        (StatusCode::OK, json!({ "id": 1042 }))
    );
    let (_, found) = api.get("/subjects/orders-value/versions/7").await;
    assert_eq!(
        (found["id"].clone(), found["schema"].clone()),
        (json!(1042), json!(ORDER))
    );
    // A lookup of the schema, as a client makes it, finds the imported id.
    let (status, looked_up) = api
        .call(Method::POST, "/subjects/orders-value", Some(proto(ORDER)))
        .await;
    assert_eq!(status, StatusCode::OK, "{looked_up}");
    assert_eq!(
        (looked_up["id"].clone(), looked_up["version"].clone()),
        (json!(1042), json!(7))
    );
    assert_eq!(api.get("/schemas/ids/1042").await.1["schema"], ORDER);
    // Without a given id, an IMPORT subject takes no registration.
    let (_, refused) = api.register("orders-value", proto(REFUND)).await;
    assert_eq!(
        refused["message"],
        "Subject orders-value is not in read-write mode"
    );
    // An id another schema holds is refused.
    let mut taken = proto(REFUND);
    taken["id"] = json!(1042);
    let (_, refused) = api.register("orders-value", taken).await;
    assert_eq!(error_code(&refused), 42205, "{refused}");

    // A subject with schemas enters IMPORT only with force=true.
    api.call(
        Method::PUT,
        "/mode/orders-value",
        Some(json!({ "mode": "READWRITE" })),
    )
    .await;
    let (_, refused) = api
        .call(
            Method::PUT,
            "/mode/orders-value",
            Some(json!({ "mode": "IMPORT" })),
        )
        .await;
    assert_eq!(error_code(&refused), 42205, "{refused}");
    let (status, _) = api
        .call(
            Method::PUT,
            "/mode/orders-value?force=true",
            Some(json!({ "mode": "IMPORT" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // New ids after an import start above the imported ones.
    api.call(
        Method::PUT,
        "/mode/orders-value",
        Some(json!({ "mode": "READWRITE" })),
    )
    .await;
    let (_, next) = api.register("refunds-value", proto(REFUND)).await;
    assert_eq!(next, json!({ "id": 1043 }));
}
