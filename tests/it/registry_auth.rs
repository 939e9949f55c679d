//! HTTP basic auth on the registry (server) and in the registry clients:
//! without valid credentials the API answers 401 as Confluent's does; the
//! runtime client and `protobus schema` take credentials from the URL
//! (`http://user:password@host`) and never print the password.

use std::process::Command;

use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_registry::basic_auth::{Users, with_basic_auth};
use protobus_registry::{Registry, router};
use protobus_runtime::SchemaRegistry;

const PASSWORD: &str = "wonder-4711-land";

async fn serve_with_users() -> String {
    let users = Users::parse(&format!("alice:{PASSWORD}\n")).unwrap();
    let app = with_basic_auth(router(Registry::in_memory()), users);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_refuses_callers_without_valid_credentials() {
    let address = serve_with_users().await;
    let http = reqwest::Client::new();
    for credentials in [None, Some(("alice", "wrong")), Some(("mallory", PASSWORD))] {
        let mut request = http.get(format!("http://{address}/subjects"));
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{credentials:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"protobus-registry\""
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error_code": 401, "message": "Unauthorized"})
        );
    }
    let admitted = http
        .get(format!("http://{address}/subjects"))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_send_credentials_from_the_url_and_never_show_them() {
    let address = serve_with_users().await;
    let client = SchemaRegistry::new(&format!("http://alice:{PASSWORD}@{address}/")).unwrap();
    let id = client
        .id_of::<OrderPlaced>()
        .await
        .expect("registered with basic auth");
    assert!(id > 0);
    assert_eq!(client.url(), format!("http://{address}"));
    assert!(!format!("{client:?}").contains(PASSWORD));

    let anonymous = SchemaRegistry::new(&format!("http://{address}")).unwrap();
    let refused = anonymous.id_of::<OrderPlaced>().await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");

    // `schema check` reads the registry with its own HTTP client.
    let checked = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["schema", "check", "--registry"])
        .arg(format!("http://alice:{PASSWORD}@{address}"))
        .env("RUST_BACKTRACE", "0")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(!all.contains("401"), "{all}");
    assert!(!all.contains(PASSWORD), "the password was printed: {all}");

    // A password in SCHEMA_REGISTRY_URL is not shown by --help either.
    let help = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["tail", "--help"])
        .env(
            "SCHEMA_REGISTRY_URL",
            format!("http://alice:{PASSWORD}@{address}"),
        )
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains(PASSWORD));
}
