//! The README's first command: `protobus dev` with nothing configured runs the
//! typed pipeline on the in-process Kafka and registry, and every published
//! event reaches the handler method for its type, once.

use std::process::Command;

#[test]
fn dev_on_the_embedded_kafka_and_registry_handles_every_published_event() {
    let output = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args([
            "dev",
            "--events",
            "12",
            "--interval-ms",
            "10",
            "--ingest-listen",
            "127.0.0.1:0",
        ])
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("SCHEMA_REGISTRY_URL")
        .env("RUST_LOG", "info")
        .output()
        .expect("run protobus dev");
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "protobus dev failed:\n{log}");
    assert!(log.contains("embedded=true"), "{log}");
    let published: Vec<&str> = log.lines().filter(|l| l.contains(" published ")).collect();
    assert_eq!(published.len(), 12, "{log}");
    for line in published {
        // Each event id that was published is handled exactly once, by the right method.
        let event_id = line
            .split("event_id=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let event_type = line
            .split("event_type=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let short = event_type.rsplit('.').next().unwrap();
        let handled: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("event_id=\"{event_id}\"")) && l.contains("handled"))
            .collect();
        assert_eq!(
            handled.len(),
            1,
            "{event_id} handled {} times:\n{log}",
            handled.len()
        );
        assert!(
            handled[0].contains(&format!("handled {short}")),
            "{}",
            handled[0]
        );
    }
    assert!(
        log.contains("published=12 handled=12 unknown=0 poison=0"),
        "{log}"
    );
}

/// Stopped by a signal while it publishes, `protobus dev` first lets its
/// consumer handle what was published: the last line counts them all.
#[test]
fn dev_stopped_by_a_signal_handles_what_it_published_first() {
    let child = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args([
            "dev",
            "--interval-ms",
            "50",
            "--ingest-listen",
            "127.0.0.1:0",
        ])
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("SCHEMA_REGISTRY_URL")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start protobus dev");
    // Publishing every 50 ms, some events are always on their way to the
    // handlers when the signal comes (the embedded broker answers a fetch
    // that waits for records only after `fetch.wait.max.ms`).
    std::thread::sleep(std::time::Duration::from_secs(4));
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(terminated.success());
    let output = child.wait_with_output().expect("protobus dev ends");
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "protobus dev failed:\n{log}");
    let done = log
        .lines()
        .find(|l| l.contains(" done "))
        .unwrap_or_else(|| panic!("no closing line:\n{log}"));
    let count = |name: &str| -> u64 {
        let at = done.find(&format!("{name}=")).expect(name) + name.len() + 1;
        done[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect(name)
    };
    let (published, handled) = (count("published"), count("handled"));
    println!("{done}");
    assert!(published > 10, "{done}");
    assert_eq!(handled, published, "{done}");
}
