//! Requests an attacker would send, one per defect found by trying: each is
//! answered with a status and Confluent's error code, quickly, and leaves the
//! registry serving and correct.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Api, error_code, proto};
use prost::Message as _;
use protobus_registry::{Limits, MAX_BODY_BYTES, Registry};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LEAF: &str = "syntax = \"proto3\";\npackage leaf;\nmessage Leaf { string id = 1; }\n";

/// A schema whose custom option value nests `depth` levels in the text format.
fn deep_option(depth: usize) -> String {
    format!(
        "syntax = \"proto3\";\nimport \"google/protobuf/descriptor.proto\";\n\
         message R {{ R r = 1; }}\nextend google.protobuf.FileOptions {{ R deep = 50000; }}\n\
         option (deep) = {{ {}{} }};\nmessage M {{ string a = 1; }}\n",
        "r { ".repeat(depth),
        "} ".repeat(depth)
    )
}

fn with_refs(schema: &str, references: Value) -> Value {
    json!({ "schemaType": "PROTOBUF", "schema": schema, "references": references })
}

async fn assert_serving(api: &Api) {
    let (status, body) = api.get("/subjects").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn deeply_nested_option_values_are_refused_not_a_stack_overflow() {
    let api = Api::start().await;
    let body = proto(&deep_option(200));
    for (method, path) in [
        (Method::POST, "/subjects/deep-value/versions"),
        (Method::POST, "/subjects/deep-value"),
        (Method::POST, "/compatibility/subjects/deep-value/versions"),
    ] {
        let (status, answer) = api.call(method, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert_eq!(error_code(&answer), 42201, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("nest deeper than 32"),
            "{answer}"
        );
    }
    // Within the limit the same schema registers.
    let (status, answer) = api.register("deep-value", proto(&deep_option(30))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_serving(&api).await;
}

/// 40 layers of two subjects, each version importing both of the layer
/// below by `version: -1`: 2^40 paths from the top, 81 files.
#[tokio::test]
async fn diamond_shaped_references_resolve_in_linear_time() {
    let api = Api::start().await;
    for side in ["a", "b"] {
        let schema = LEAF.replace("package leaf", &format!("package d0{side}"));
        let (status, _) = api.register(&format!("d0-{side}"), proto(&schema)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let layers = 40;
    for layer in 1..=layers {
        let below = layer - 1;
        let references = json!([
            { "name": format!("d{below}a.proto"), "subject": format!("d{below}-a"), "version": -1 },
            { "name": format!("d{below}b.proto"), "subject": format!("d{below}-b"), "version": -1 },
        ]);
        for side in ["a", "b"] {
            let schema = format!(
                "syntax = \"proto3\";\npackage d{layer}{side};\nimport \"d{below}a.proto\";\nimport \"d{below}b.proto\";\nmessage M {{ string id = 1; }}\n"
            );
            let (status, answer) = api
                .register(
                    &format!("d{layer}-{side}"),
                    with_refs(&schema, references.clone()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "layer {layer}: {answer}");
        }
    }
    let top = json!([{ "name": "top.proto", "subject": format!("d{layers}-a"), "version": -1 }]);
    let started = Instant::now();
    let (status, answer) = api
        .call(
            Method::POST,
            "/compatibility/subjects/top-value/versions",
            Some(with_refs(
                "syntax = \"proto3\";\nimport \"top.proto\";\nmessage T { string id = 1; }\n",
                top,
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["is_compatible"], true);
    // The default work timeout is 10 s; an exponential walk never ends.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Reads do not queue behind a compile: while one large schema compiles,
/// other requests are answered in a small part of the time it takes.
#[tokio::test]
async fn reads_are_answered_while_a_large_schema_compiles() {
    let api = Api::start().await;
    let mut large = String::from("syntax = \"proto3\";\npackage big;\n");
    let mut i = 0;
    while large.len() < 250_000 {
        large.push_str(&format!("message M{i} {{ string a = 1; int64 b = 2; }}\n"));
        i += 1;
    }
    let body = proto(&large);
    let slow = {
        let (base, client) = (api.base.clone(), api.client.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client
                .post(format!("{base}/subjects/big-value/versions"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            started.elapsed()
        })
    };
    let mut slowest = Duration::ZERO;
    while !slow.is_finished() {
        let started = Instant::now();
        assert_serving(&api).await;
        let (status, _) = api.register("small-value", proto(LEAF)).await;
        assert_eq!(status, StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let compile = slow.await.unwrap();
    assert!(
        slowest * 4 < compile,
        "a read and a small registration took {slowest:?} while the large one took {compile:?}"
    );
}

#[tokio::test]
async fn many_references_are_refused_by_count_before_any_work() {
    let api = Api::start().await;
    api.register("leaf", proto(LEAF)).await;
    let references = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({ "name": format!("r{i}.proto"), "subject": "leaf", "version": 1 }))
            .collect()
    };
    let schema = "syntax = \"proto3\";\nmessage T { string id = 1; }\n";
    // 40 000 names: refused by count, not compared with each other.
    let started = Instant::now();
    let (status, answer) = api
        .register("many-value", with_refs(schema, references(40_000)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(error_code(&answer), 42201);
    assert!(
        answer["message"].as_str().unwrap().contains("limit of 256"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // 256 names for one schema are one shared copy of its text.
    let (status, answer) = api
        .register("many-value", with_refs(schema, references(256)))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn schema_text_compiled_size_and_total_bytes_are_bounded() {
    let mut limits = Limits::default();
    limits.max_schema_bytes = 4096;
    limits.max_total_bytes = 64 * 1024;
    let api = Api::serve(Registry::in_memory_with(limits)).await;
    let big = format!("{LEAF}// {}\n", "x".repeat(5000));
    let (status, answer) = api.register("big-value", proto(&big)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(error_code(&answer), 42201);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("limit of 4096"),
        "{answer}"
    );

    let mut full = None;
    for i in 0..200 {
        let schema =
            format!("syntax = \"proto3\";\npackage p{i};\nmessage M{i} {{ string a = 1; }}\n");
        let (status, answer) = api.register(&format!("s{i}-value"), proto(&schema)).await;
        if status != StatusCode::OK {
            full = Some((i, status, answer));
            break;
        }
    }
    let (count, status, answer) = full.expect("the total limit is reached");
    assert!(count > 10, "only {count} small schemas fit in 64 KiB");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(error_code(&answer), 42205, "{answer}");
    // A schema already stored can still be registered under another subject.
    let (status, answer) = api
        .register(
            "again-value",
            proto(
                LEAF.replace("leaf", "p0")
                    .replace("Leaf { string id", "M0 { string a")
                    .as_str(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Deleting permanently makes room.
    for subject in ["s0-value", "again-value", "s1-value"] {
        api.delete(&format!("/subjects/{subject}")).await;
        let (status, _) = api
            .delete(&format!("/subjects/{subject}?permanent=true"))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let schema =
        format!("syntax = \"proto3\";\npackage p{count};\nmessage M{count} {{ string a = 1; }}\n");
    let (status, answer) = api
        .register(&format!("s{count}-value"), proto(&schema))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn latest_references_are_stored_as_the_version_they_meant() {
    let api = Api::start().await;
    api.register("leaf", proto(LEAF)).await;
    let uses = with_refs(
        "syntax = \"proto3\";\nimport \"leaf.proto\";\nmessage Uses { leaf.Leaf leaf = 1; }\n",
        json!([{ "name": "leaf.proto", "subject": "leaf", "version": -1 }]),
    );
    let (status, id) = api.register("uses", uses.clone()).await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let (_, stored) = api.get("/subjects/uses/versions/1").await;
    assert_eq!(stored["references"][0]["version"], 1, "{stored}");

    // The referenced version may not be deleted, soft or permanently.
    let (status, answer) = api.delete("/subjects/leaf/versions/1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(error_code(&answer), 42206);
    let (status, answer) = api.delete("/subjects/leaf").await;
    assert_eq!(error_code(&answer), 42206, "{status} {answer}");

    // A new version of the referenced subject changes nothing of the id's meaning...
    let leaf_v2 =
        "syntax = \"proto3\";\npackage leaf;\nmessage Leaf { string id = 1; string name = 2; }\n";
    api.register("leaf", proto(leaf_v2)).await;
    let (_, by_id) = api.get(&format!("/schemas/ids/{}", id["id"])).await;
    assert_eq!(by_id["references"][0]["version"], 1, "{by_id}");
    // ...and a registration with `-1` now means version 2: a new id.
    let (status, newer) = api.register("uses", uses).await;
    assert_eq!(status, StatusCode::OK, "{newer}");
    assert_ne!(newer["id"], id["id"]);

    // A cycle cannot be formed: `-1` names what exists at registration.
    let (status, _) = api
        .call(
            Method::PUT,
            "/config/leaf",
            Some(json!({ "compatibility": "NONE" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = api
        .register(
            "leaf",
            with_refs(
                "syntax = \"proto3\";\npackage leaf3;\nimport \"uses.proto\";\nmessage Leaf { string id = 1; }\n",
                json!([{ "name": "uses.proto", "subject": "uses", "version": -1 }]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, latest) = api.get("/subjects/leaf/versions/latest").await;
    assert_eq!(latest["references"][0]["version"], 2, "{latest}");
    let (_, uses_v2) = api.get("/subjects/uses/versions/2").await;
    assert_eq!(uses_v2["references"][0]["version"], 2, "{uses_v2}");
}

#[tokio::test]
async fn descriptors_no_compiler_would_write_get_an_answer() {
    let api = Api::start().await;
    let cases = [
        prost_types::FileDescriptorProto {
            name: Some("x.proto".into()),
            syntax: Some("proto9".into()),
            ..Default::default()
        },
        prost_types::FileDescriptorProto {
            name: Some("x.proto".into()),
            syntax: Some("editions".into()),
            ..Default::default()
        },
    ];
    for case in cases {
        let base64 = base64::engine::general_purpose::STANDARD.encode(case.encode_to_vec());
        let (status, answer) = api.register("odd-value", proto(&base64)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(error_code(&answer), 42201, "{answer}");
    }
    assert_serving(&api).await;
}

#[tokio::test]
async fn the_body_limit_is_answered_with_its_code() {
    let api = Api::start().await;
    let (status, answer) = api
        .raw(
            Method::POST,
            "/subjects/x/versions",
            Some(vec![b' '; MAX_BODY_BYTES + 1]),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer.contains("\"error_code\":413"), "{answer}");
}
