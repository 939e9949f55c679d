//! `protobus publish`, `tail` and `topics` against the real broker and a
//! registry: what publish acknowledges is what tail shows at that position,
//! decoded, with key and headers; bad lines and bad records are reported,
//! never dropped in silence.

use crate::common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_runtime::Event;
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

struct Output {
    ok: bool,
    stdout: Vec<Value>,
    stderr: String,
}

/// Runs `protobus ARGS` with `stdin`, against this broker and `registry`.
async fn protobus(registry: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
        .env("SCHEMA_REGISTRY_URL", registry)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run protobus");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("protobus {args:?} did not finish"))
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    Output {
        ok: output.status.success(),
        stdout: stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["headers"]
        .as_array()?
        .iter()
        .find(|h| h["key"] == name)?["value"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_tail_shows_each_acknowledged_event_where_it_landed() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("cli"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 2).await;
    let registry = kafka.schema_registry().await;
    let url = registry.url().to_owned();

    // NDJSON: line 2 is not JSON, line 4 has no key; the others are written.
    let lines = [
        r#"{"orderId":"order-1","customerId":"c-1"}"#,
        "{not json",
        r#"{"orderId":"order-3","couponCode":"SAVE5","placedAt":"2026-11-27T10:00:00Z"}"#,
        r#"{"customerId":"c-4"}"#,
        r#"{"orderId":"order-5","customerId":"c-5"}"#,
    ]
    .join("\n");
    let published = protobus(
        &url,
        &[
            "publish",
            &topic,
            "--type",
            OrderPlaced::FULL_NAME,
            "--header",
            "source=cli-test",
            "--correlation-id",
            "corr-7",
        ],
        Some(&lines),
    )
    .await;
    assert!(!published.ok, "a bad line must fail the command");
    assert!(
        published
            .stderr
            .contains("line 2: payload is not a shop.orders.v1.OrderPlaced"),
        "{}",
        published.stderr
    );
    assert!(
        published
            .stderr
            .contains("line 4: the key field `order_id`"),
        "{}",
        published.stderr
    );
    assert!(
        published.stderr.contains("published 3 of 5 events"),
        "{}",
        published.stderr
    );
    let acked_lines: Vec<i64> = published
        .stdout
        .iter()
        .map(|a| a["line"].as_i64().unwrap())
        .collect();
    assert_eq!(acked_lines, [1, 3, 5]);

    // One event as an argument, by its message name.
    let single = protobus(
        &url,
        &[
            "publish",
            &topic,
            "--type",
            "OrderPlaced",
            r#"{"orderId":"order-6"}"#,
        ],
        None,
    )
    .await;
    assert!(single.ok, "{}", single.stderr);
    assert_eq!(single.stdout.len(), 1);

    // A record that is not a Protobus event, with a key that is not UTF-8.
    let poison_key = [0xff_u8, 0x00, 0x7f];
    let delivered = kafka
        .idempotent_producer()
        .send(
            FutureRecord::to(&topic)
                .partition(0)
                .key(&poison_key[..])
                .payload(&b"plain text"[..]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    // Everything, from the beginning: 4 events and the poison record.
    let tailed = protobus(
        &url,
        &["tail", &topic, "--from-beginning", "--limit", "5"],
        None,
    )
    .await;
    assert!(tailed.ok, "{}", tailed.stderr);
    let by_position: BTreeMap<(i64, i64), &Value> = tailed
        .stdout
        .iter()
        .map(|r| {
            (
                (
                    r["partition"].as_i64().unwrap(),
                    r["offset"].as_i64().unwrap(),
                ),
                r,
            )
        })
        .collect();
    assert_eq!(by_position.len(), 5);
    for ack in published.stdout.iter().chain(&single.stdout) {
        let position = (
            ack["partition"].as_i64().unwrap(),
            ack["offset"].as_i64().unwrap(),
        );
        let record = by_position[&position];
        assert_eq!(record["topic"], topic);
        assert_eq!(record["event_type"], OrderPlaced::FULL_NAME);
        let order_id = record["event"]["orderId"].as_str().unwrap();
        assert_eq!(record["key"], order_id, "the key is the event's key field");
        assert_eq!(
            header(record, "protobus-event-id"),
            ack["event_id"].as_str()
        );
        assert!(record["schema_id"].as_u64().is_some());
        assert!(record["timestamp"].as_str().unwrap().ends_with('Z'));
        if ack["line"] == 3 {
            assert_eq!(record["event"]["couponCode"], "SAVE5");
            assert_eq!(record["event"]["placedAt"], "2026-11-27T10:00:00Z");
        }
        if single.stdout.contains(ack) {
            assert_eq!(header(record, "source"), None);
        } else {
            assert_eq!(header(record, "source"), Some("cli-test"));
            assert_eq!(header(record, "protobus-correlation-id"), Some("corr-7"));
        }
    }
    let poison = by_position[&(delivered.partition as i64, delivered.offset)];
    assert!(
        poison["error"]
            .as_str()
            .unwrap()
            .contains("not a Protobus event"),
        "{poison}"
    );
    assert_eq!(poison["event"], Value::Null);
    let base64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v["base64"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(base64(&poison["value"]), b"plain text");
    assert_eq!(base64(&poison["key"]), poison_key);

    // One partition from an offset; and the last record counted from the end.
    let first_ack = &published.stdout[0];
    let (partition, offset) = (
        first_ack["partition"].to_string(),
        first_ack["offset"].to_string(),
    );
    let one = protobus(
        &url,
        &[
            "tail",
            &topic,
            "--partition",
            &partition,
            "--offset",
            &offset,
            "--limit",
            "1",
        ],
        None,
    )
    .await;
    assert_eq!(one.stdout[0]["event"]["orderId"], "order-1");
    let last = protobus(
        &url,
        &[
            "tail",
            &topic,
            "--partition",
            "0",
            "--offset",
            "-1",
            "--limit",
            "1",
        ],
        None,
    )
    .await;
    assert_eq!(last.stdout[0]["offset"].as_i64(), Some(delivered.offset));

    // Without a start, tail follows: it shows what is written after it began.
    let follow_url = url.clone();
    let follow_topic = topic.clone();
    let follower = tokio::spawn(async move {
        protobus(&follow_url, &["tail", &follow_topic, "--limit", "1"], None).await
    });
    let mut followed = None;
    for attempt in 0..40 {
        let json = format!(r#"{{"orderId":"order-late-{attempt}"}}"#);
        let late = protobus(
            &url,
            &["publish", &topic, "--type", "OrderPlaced", &json],
            None,
        )
        .await;
        assert!(late.ok, "{}", late.stderr);
        tokio::time::sleep(Duration::from_millis(250)).await;
        if follower.is_finished() {
            followed = Some(follower.await.unwrap());
            break;
        }
    }
    let followed = followed.expect("tail never showed a record written after it started");
    let id = followed.stdout[0]["event"]["orderId"].as_str().unwrap();
    assert!(
        id.starts_with("order-late-"),
        "tail showed an old record: {id}"
    );

    // Bad input gets a clear error.
    let missing = protobus(
        &url,
        &["tail", &format!("{prefix}missing"), "--limit", "1"],
        None,
    )
    .await;
    assert!(
        !missing.ok && missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
    let wrong_topic = protobus(
        &url,
        &[
            "publish",
            &format!("{prefix}shop.customers"),
            "--type",
            "OrderPlaced",
            "{}",
        ],
        None,
    )
    .await;
    assert!(
        wrong_topic
            .stderr
            .contains("is written to topic `shop.orders`"),
        "{}",
        wrong_topic.stderr
    );
    let reserved = protobus(
        &url,
        &[
            "publish",
            &topic,
            "--type",
            "OrderPlaced",
            "--header",
            "protobus-event-id=x",
            "{}",
        ],
        None,
    )
    .await;
    assert!(
        !reserved.ok && reserved.stderr.contains("reserved"),
        "{}",
        reserved.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_lists_contract_topics_with_their_event_types() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("topics"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 3)
        .await;
    kafka.create_topic(&format!("{prefix}other"), 1).await;
    let registry = kafka.schema_registry().await;

    let listed = protobus(
        registry.url(),
        &[
            "topics",
            "--topic-prefix",
            &prefix,
            "--format",
            "json",
            "--all",
        ],
        None,
    )
    .await;
    assert!(listed.ok, "{}", listed.stderr);
    let row = |topic: String| {
        listed
            .stdout
            .iter()
            .find(|r| r["topic"] == topic)
            .unwrap_or_else(|| panic!("{topic} not listed"))
            .clone()
    };
    let orders = row(format!("{prefix}{}", OrderPlaced::TOPIC));
    assert_eq!(orders["partitions"], 3);
    assert_eq!(
        orders["event_types"],
        serde_json::json!([
            "shop.orders.v1.OrderPaid",
            "shop.orders.v1.OrderPlaced",
            "shop.orders.v1.OrderShipped"
        ])
    );
    let customers = row(format!("{prefix}{}", CustomerRegistered::TOPIC));
    assert_eq!(customers["exists"], false);
    assert_eq!(
        customers["event_types"],
        serde_json::json!([CustomerRegistered::FULL_NAME])
    );
    let other = row(format!("{prefix}other"));
    assert_eq!(other["event_types"], serde_json::json!([]));
    assert_eq!(other["partitions"], 1);
}

/// A registry that does not answer: one line that names it and the cause,
/// not the client library's nested text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_names_an_unreachable_registry_in_one_line() {
    common::kafka().await;
    let nowhere = format!("http://{}", common::free_address());
    let published = protobus(
        &nowhere,
        &[
            "publish",
            "shop.orders",
            "--type",
            "OrderPlaced",
            r#"{"orderId":"o-1"}"#,
        ],
        None,
    )
    .await;
    assert!(!published.ok, "nothing could be published");
    let line = published
        .stderr
        .lines()
        .find(|l| l.starts_with("line 1:"))
        .unwrap_or_else(|| panic!("no line for the event: {}", published.stderr));
    assert!(
        line.contains(&format!("could not reach {nowhere} (Connection refused")),
        "{line}"
    );
    assert!(
        !published.stderr.contains("retriable"),
        "{}",
        published.stderr
    );

    let listen = common::free_address().to_string();
    for args in [
        vec!["schema", "check"],
        vec!["schema", "register"],
        vec!["ingest", "--listen", &listen],
        vec!["tail", "shop.orders", "--limit", "1"],
        vec!["dlq", "list", "--topic", "shop.orders"],
        vec!["dev", "--registry", &nowhere, "--ingest-listen", &listen],
    ] {
        let refused = protobus(&nowhere, &args, None).await;
        assert!(!refused.ok, "{args:?} succeeded without a registry");
        let lines: Vec<&str> = refused.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", refused.stderr);
        assert!(
            lines[0].contains(&format!("{nowhere} (Connection refused")),
            "{}",
            lines[0]
        );
    }
}

/// Kafka that does not answer: each command that needs it says so in one
/// line, within seconds, instead of waiting for librdkafka's delivery
/// timeout (five minutes) with a log line per failed connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_name_an_unreachable_kafka_in_one_line_within_seconds() {
    let kafka = common::kafka().await;
    let registry = kafka.schema_registry().await;
    let nowhere = common::free_address().to_string();
    let listen = common::free_address().to_string();
    for (args, within) in [
        (
            vec![
                "publish",
                "shop.orders",
                "--type",
                "OrderPlaced",
                r#"{"orderId":"o-1"}"#,
            ],
            "3s",
        ),
        (vec!["topics"], "3s"),
        (vec!["lag", "--group", "nobody"], "3s"),
        (vec!["tail", "shop.orders", "--limit", "1"], "3s"),
        (vec!["dlq", "list", "--topic", "shop.orders"], "3s"),
        (vec!["registry", "--listen", &listen], "3s"),
        (vec!["ingest", "--listen", &listen], "3s"),
        // `dev` takes only where Kafka is, and waits the default time.
        (vec!["dev", "--ingest-listen", &listen], "10s"),
    ] {
        let started = std::time::Instant::now();
        let mut with_kafka = args.clone();
        with_kafka.extend(["--kafka", &nowhere]);
        if args[0] != "dev" {
            with_kafka.extend(["--kafka-timeout", within]);
        }
        let refused = protobus(registry.url(), &with_kafka, None).await;
        let elapsed = started.elapsed();
        assert!(!refused.ok, "{args:?} succeeded without Kafka");
        let lines: Vec<&str> = refused.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", refused.stderr);
        assert!(
            lines[0].starts_with(&format!(
                "Error: Kafka at {nowhere} did not answer within {within}"
            )),
            "{args:?}: {}",
            lines[0]
        );
        assert!(
            elapsed < Duration::from_secs(30),
            "{args:?} took {elapsed:?}"
        );
    }
}

/// Producer settings that weaken delivery are refused, saying what they
/// would lose, unless asked for with --allow-weaker-delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_settings_that_lose_events_are_refused_unless_forced() {
    let kafka = common::kafka().await;
    let registry = kafka.schema_registry().await;
    let topic = format!("{}.shop.orders", common::unique_name("weaker"));
    kafka.create_topic(&topic, 1).await;
    let event = r#"{"orderId":"o-1"}"#;
    for setting in ["acks=1", "enable.idempotence=false"] {
        let refused = protobus(
            registry.url(),
            &[
                "publish",
                &topic,
                "--type",
                "OrderPlaced",
                event,
                "--kafka-config",
                setting,
            ],
            None,
        )
        .await;
        assert!(!refused.ok, "{setting} was accepted");
        let lines: Vec<&str> = refused.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", refused.stderr);
        assert!(
            lines[0].contains(setting) && lines[0].contains("--allow-weaker-delivery"),
            "{}",
            lines[0]
        );
    }
    let forced = protobus(
        registry.url(),
        &[
            "publish",
            &topic,
            "--type",
            "OrderPlaced",
            event,
            "--kafka-config",
            "acks=1",
            "--kafka-config",
            "enable.idempotence=false",
            "--allow-weaker-delivery",
        ],
        None,
    )
    .await;
    assert!(forced.ok, "{}", forced.stderr);
    assert_eq!(forced.stdout.len(), 1, "one event written");
}
