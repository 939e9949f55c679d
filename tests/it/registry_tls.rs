//! TLS on the registry (server) and in its clients: a client that trusts the
//! registry's CA registers over `https://` (with basic auth in the URL too);
//! one that trusts only the system's CAs, or speaks plain HTTP, gets nothing;
//! with a client CA only clients with its certificates get in. The
//! `protobus registry` and `protobus schema` flags are checked on the binary.

use crate::common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::pki::Pki;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_registry::basic_auth::{Users, with_basic_auth};
use protobus_registry::{Registry, TlsConfig, router};
use protobus_runtime::{RegistryTls, SchemaRegistry};

async fn serve_tls(pki: &Pki, mutual: bool, app: axum::Router) -> SocketAddr {
    let client_ca = pki.path("ca.pem");
    let tls = TlsConfig::from_pem_files(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        mutual.then_some(client_ca.as_path()),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(protobus_registry::serve(
        listener,
        app,
        Some(tls),
        std::future::pending(),
    ));
    address
}

fn trusting(pki: &Pki, identity: Option<&str>) -> RegistryTls {
    RegistryTls {
        ca_file: Some(pki.path("ca.pem")),
        identity: identity.map(|name| {
            (
                pki.path(&format!("{name}.pem")),
                pki.path(&format!("{name}.key")),
            )
        }),
    }
}

/// Registers `OrderPlaced`; the whole error chain when that fails.
async fn register(url: &str, tls: &RegistryTls) -> Result<u32, String> {
    let client = SchemaRegistry::with_tls(url, tls).map_err(|e| e.to_string())?;
    client.id_of::<OrderPlaced>().await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    })
}

fn protobus(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_trust_the_ca_register_over_https() {
    let pki = Pki::new();
    let users = Users::parse("alice:tls-and-basic\n").unwrap();
    let app = with_basic_auth(router(Registry::in_memory()), users);
    let address = serve_tls(&pki, false, app).await;
    let url = format!("https://alice:tls-and-basic@{address}");

    let id = register(&url, &trusting(&pki, None))
        .await
        .expect("registered over https with basic auth");
    assert!(id > 0);

    // schema_registry_converter reports a refused certificate only as a
    // failed request; the CLI's own client below names the reason.
    assert!(
        register(&url, &RegistryTls::default()).await.is_err(),
        "a client that does not trust the CA got through"
    );
    let plain = register(
        &format!("http://alice:tls-and-basic@{address}"),
        &RegistryTls::default(),
    )
    .await;
    assert!(plain.is_err(), "plain HTTP to the HTTPS port got through");

    // `schema check` reads the registry with its own HTTP client.
    let checked = protobus(&[
        "schema",
        "check",
        "--registry",
        &url,
        "--registry-ca-file",
        pki.path("ca.pem").to_str().unwrap(),
    ]);
    assert!(checked.status.success(), "{}", text(&checked));
    let untrusting = protobus(&["schema", "check", "--registry", &url]);
    assert!(!untrusting.status.success());
    assert!(
        text(&untrusting).to_lowercase().contains("certificate"),
        "{}",
        text(&untrusting)
    );
    for output in [&checked, &untrusting] {
        assert!(
            !text(output).contains("tls-and-basic"),
            "the password was printed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let pki = Pki::new();
    let address = serve_tls(&pki, true, router(Registry::in_memory())).await;
    let url = format!("https://{address}");

    register(&url, &trusting(&pki, Some("client")))
        .await
        .expect("a client certificate from the CA is accepted");
    assert!(
        register(&url, &trusting(&pki, None)).await.is_err(),
        "no client certificate got in"
    );
    assert!(
        register(&url, &trusting(&pki, Some("stranger")))
            .await
            .is_err(),
        "a certificate from another CA got in"
    );

    let path = |name: &str| pki.path(name).to_str().unwrap().to_owned();
    let registered = protobus(&[
        "schema",
        "register",
        "--registry",
        &url,
        "--registry-ca-file",
        &path("ca.pem"),
        "--registry-cert-file",
        &path("client.pem"),
        "--registry-key-file",
        &path("client.key"),
    ]);
    assert!(registered.status.success(), "{}", text(&registered));
    let refused = protobus(&[
        "schema",
        "register",
        "--registry",
        &url,
        "--registry-ca-file",
        &path("ca.pem"),
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
}

/// `protobus registry` with its state in Kafka, serving mutual TLS from its flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_binary_serves_https_from_its_flags() {
    let _kafka = common::kafka().await;
    let pki = Pki::new();
    let path = |name: &str| pki.path(name).to_str().unwrap().to_owned();
    let address = common::free_address();
    let _registry = common::protobus(&[
        "registry",
        "--listen",
        &address.to_string(),
        "--topic",
        &common::unique_name("_schemas"),
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
        "--tls-client-ca",
        &path("ca.pem"),
    ]);
    let url = format!("https://{address}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        match register(&url, &trusting(&pki, Some("client"))).await {
            Ok(id) => break id,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the registry did not serve https: {error}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(id > 0);
    assert!(register(&url, &trusting(&pki, None)).await.is_err());
}

#[test]
fn bad_tls_settings_are_named_before_anything_starts() {
    let without_key = protobus(&["registry", "--tls-cert", "server.pem"]);
    assert!(!without_key.status.success());
    assert!(
        text(&without_key).contains("--tls-key"),
        "{}",
        text(&without_key)
    );

    // Read before Kafka is contacted: nothing listens at this bootstrap address.
    let missing = protobus(&[
        "registry",
        "--kafka",
        "127.0.0.1:1",
        "--tls-cert",
        "no-such-cert.pem",
        "--tls-key",
        "no-such-key.pem",
    ]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no-such-cert.pem"),
        "{}",
        text(&missing)
    );

    let half_identity = protobus(&["tail", "shop.orders", "--registry-cert-file", "client.pem"]);
    assert!(!half_identity.status.success());
    assert!(
        text(&half_identity).contains("--registry-key-file"),
        "{}",
        text(&half_identity)
    );
}
