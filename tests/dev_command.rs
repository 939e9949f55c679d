//! The README's first command: `protobus dev` on the in-process Kafka, with
//! nothing configured, publishes sample events and handles every one of them.

use std::process::Command;

#[test]
fn dev_on_the_embedded_kafka_handles_every_published_event() {
    let output = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["dev", "--events", "8", "--interval-ms", "10"])
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .output()
        .expect("run protobus dev");
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "protobus dev failed:\n{log}");
    assert!(log.contains("in-process Kafka"), "{log}");
    for n in 0..8 {
        let id = format!("order-{n:05}");
        let lines: Vec<_> = log.lines().filter(|l| l.contains(&id)).collect();
        assert!(
            lines.iter().any(|l| l.contains("published OrderPlaced")),
            "{id} not published:\n{log}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("handled OrderPlaced"))
                .count(),
            1,
            "{id} not handled exactly once:\n{log}"
        );
    }
    assert!(log.contains("published=8 handled=8"), "{log}");
}
