//! Confluent's own Python client (`confluent-kafka` from PyPI) against the
//! Protobus registry with its state in the real Kafka: it registers a schema
//! with a reference, looks it up, fetches it by id and tests compatibility.

use crate::common;

use protobus_registry::Registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluents_schema_registry_client_works_against_our_registry() {
    let python = common::confluent_python();
    let kafka = common::kafka().await;
    let registry = Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
        .await
        .expect("registry");
    let url = common::serve_registry(registry).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/registry_client.py"
    );
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&url)
        .output()
        .await
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("14 checks passed"), "{stdout}");
}
