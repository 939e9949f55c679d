//! How producers find schema ids, as Confluent's serializers choose it:
//! `--registration lookup` only finds this build's exact schemas and
//! `--registration latest` uses the subject's latest version; neither makes
//! a write request to the registry (counted by the registry's own metrics).

use crate::common;

use std::process::Output;

use protobus_registry::REQUESTS;

const SUBJECT_WRITES: &str = "/subjects/{subject}/versions";

fn protobus(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run protobus")
}

/// Registrations (`POST /subjects/{subject}/versions`) the registry served.
async fn writes(metrics: std::net::SocketAddr) -> f64 {
    let text = common::scrape(metrics).await;
    common::value(
        &text,
        REQUESTS,
        &[("method", "POST"), ("endpoint", SUBJECT_WRITES)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_and_latest_producers_never_write_to_the_registry() {
    let _kafka = common::kafka().await;
    let (listen, metrics) = (common::free_address(), common::free_address());
    let _registry = common::protobus(&[
        "registry",
        "--store",
        "memory",
        "--listen",
        &listen.to_string(),
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    let url = format!("http://{listen}");
    common::wait_for_http(&format!("{url}/health")).await;
    let topic = format!("{}.shop.orders", common::unique_name("registration"));
    let publish = |registration: &str| {
        protobus(&[
            "publish",
            &topic,
            "--type",
            "OrderPlaced",
            r#"{"orderId":"o-1"}"#,
            "--registry",
            &url,
            "--registration",
            registration,
        ])
    };

    let refused = publish("lookup");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("not registered under subject shop.orders-shop.orders.v1.OrderPlaced"),
        "{stderr}"
    );
    assert_eq!(writes(metrics).await, 0.0, "a lookup-only producer wrote");

    let registered = protobus(&["schema", "register", "--registry", &url]);
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let after_register = writes(metrics).await;
    assert!(after_register > 0.0);

    for registration in ["lookup", "latest"] {
        let sent = publish(registration);
        assert!(
            sent.status.success(),
            "{registration}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&sent.stdout).lines().count(),
            1,
            "{registration}: one event written"
        );
        assert_eq!(
            writes(metrics).await,
            after_register,
            "a {registration} producer wrote to the registry"
        );
    }
}
