//! The registry's Kafka store against a real broker: state survives a
//! restart, and instances sharing one topic share one state and never hand
//! out one id twice.

use crate::common;

use std::time::{Duration, Instant};

use protobus_registry::{Reference, Registry, SchemaFormat, SchemaInput, VersionSpec};

fn proto(schema: &str) -> SchemaInput {
    SchemaInput {
        schema: schema.to_owned(),
        schema_type: Some("PROTOBUF".to_owned()),
        ..SchemaInput::default()
    }
}

fn order(fields: &str) -> SchemaInput {
    proto(&format!(
        "syntax = \"proto3\";\npackage shop;\nmessage Order {{ string id = 1; {fields} }}\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_registry_serves_the_same_ids_versions_and_configs() {
    let kafka = common::kafka().await;
    let topic = common::unique_name("_schemas");

    let registry = Registry::kafka(kafka.bootstrap(), &topic)
        .await
        .expect("start");
    let money = proto("syntax = \"proto3\";\npackage shop;\nmessage Money { int64 units = 1; }\n");
    let money_id = registry.register("money", &money, false).await.unwrap();
    let with_ref = SchemaInput {
        references: vec![Reference {
            name: "money.proto".into(),
            subject: "money".into(),
            version: 1,
        }],
        ..proto(
            "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nmessage Order { Money total = 1; }\n",
        )
    };
    let ref_id = registry
        .register("orders-value", &with_ref, false)
        .await
        .unwrap();
    let v2 = registry
        .register("orders-value", &SchemaInput {
                references: with_ref.references.clone(),
                ..proto("syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nmessage Order { Money total = 1; string id = 2; }\n")
            }, false)
        .await
        .unwrap();
    registry
        .set_level(Some("orders-value"), protobus_compat_level("FULL"))
        .await
        .unwrap();
    let mut scratch = 0;
    for fields in ["", "int64 a = 2;", "int64 a = 2; int64 b = 3;"] {
        scratch = registry
            .register("scratch", &order(fields), false)
            .await
            .unwrap();
    }
    // One write of three records, in one transaction.
    assert_eq!(
        registry.delete_subject("scratch", false).await.unwrap(),
        vec![1, 2, 3]
    );
    drop(registry);

    let restarted = Registry::kafka(kafka.bootstrap(), &topic)
        .await
        .expect("restart");
    assert_eq!(
        restarted.register("money", &money, false).await.unwrap(),
        money_id
    );
    assert_eq!(
        restarted
            .register("orders-value", &with_ref, false)
            .await
            .unwrap(),
        ref_id
    );
    assert_eq!(
        restarted.versions("orders-value", false).unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        restarted
            .version(
                "orders-value",
                VersionSpec::Latest,
                false,
                SchemaFormat::Text
            )
            .unwrap()
            .id,
        v2
    );
    assert_eq!(
        restarted
            .subject_level("orders-value", false)
            .unwrap()
            .name(),
        "FULL"
    );
    assert_eq!(restarted.subjects(false, ""), vec!["money", "orders-value"]);
    assert_eq!(restarted.subjects(true, "scr"), vec!["scratch"]);
    assert_eq!(restarted.versions("scratch", true).unwrap(), vec![1, 2, 3]);
    assert!(restarted.versions("scratch", false).is_err());
    assert_eq!(
        restarted.delete_subject("scratch", true).await.unwrap(),
        vec![1, 2, 3]
    );
    assert!(restarted.subjects(true, "scr").is_empty());
    // A new schema after the restart gets a new id, not one handed out before.
    let new = restarted
        .register("other", &order("int64 n = 2;"), false)
        .await
        .unwrap();
    assert!(
        new > money_id.max(ref_id).max(v2).max(scratch),
        "id {new} reused"
    );
    // References are resolved from the reloaded state.
    assert_eq!(
        restarted
            .referenced_by("money", VersionSpec::Number(1))
            .unwrap(),
        vec![ref_id, v2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_topic_share_state_and_never_duplicate_ids() {
    let kafka = common::kafka().await;
    let topic = common::unique_name("_schemas");
    let a = Registry::kafka(kafka.bootstrap(), &topic).await.expect("a");
    let b = Registry::kafka(kafka.bootstrap(), &topic).await.expect("b");

    // The same new schema, registered at once through both: one id, one version.
    let schema = order("string note = 2;");
    let (from_a, from_b) = tokio::join!(
        a.register("orders-value", &schema, false),
        b.register("orders-value", &schema, false)
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert_eq!(from_a, from_b, "one schema, one id");
    assert_eq!(a.versions("orders-value", false).unwrap(), vec![1]);

    // Different schemas written through both at once: every id distinct.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let registry = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let schema = order(&format!("int64 field{i} = {};", i + 10));
            registry
                .register(&format!("subject-{i}"), &schema, false)
                .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().expect("register"));
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "duplicate ids in {ids:?}");
    assert!(!ids.contains(&from_a));

    // Each instance sees what the other wrote.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (seen_a, seen_b) = (
            a.subjects(false, "subject-").len(),
            b.subjects(false, "subject-").len(),
        );
        if seen_a == 12 && seen_b == 12 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a sees {seen_a}, b sees {seen_b} of 12 subjects"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..12 {
        let subject = format!("subject-{i}");
        assert_eq!(
            a.version(&subject, VersionSpec::Latest, false, SchemaFormat::Text)
                .unwrap()
                .id,
            b.version(&subject, VersionSpec::Latest, false, SchemaFormat::Text)
                .unwrap()
                .id
        );
    }
}

/// Instances taking turns to write one subject: each write after the other
/// instance's must build on it (next version, new id). A writer decides
/// without asking the log's end again until it is fenced, and the fence
/// makes a decision taken before the other's write fail and be taken anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_taking_turns_on_one_subject_build_on_each_others_writes() {
    let kafka = common::kafka().await;
    let topic = common::unique_name("_schemas");
    let a = Registry::kafka(kafka.bootstrap(), &topic).await.expect("a");
    let b = Registry::kafka(kafka.bootstrap(), &topic).await.expect("b");
    let mut fields = String::new();
    let mut ids = Vec::new();
    for turn in 0..10 {
        fields.push_str(&format!("int64 field{turn} = {};", turn + 10));
        let registry = if turn % 2 == 0 { &a } else { &b };
        ids.push(
            registry
                .register("orders-value", &order(&fields), false)
                .await
                .expect("register"),
        );
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "an id handed out twice: {ids:?}");
    let versions: Vec<i32> = (1..=10).collect();
    for (name, registry) in [("a", &a), ("b", &b)] {
        common::wait_until(&format!("{name} to hold versions 1-10"), || {
            registry.versions("orders-value", false).ok().as_ref() == Some(&versions)
        })
        .await;
        for (version, id) in versions.iter().zip(&ids) {
            let held = registry
                .version(
                    "orders-value",
                    VersionSpec::Number(*version),
                    false,
                    SchemaFormat::Text,
                )
                .unwrap();
            assert_eq!(held.id, *id, "{name}: version {version}");
        }
    }
}

fn protobus_compat_level(name: &str) -> protobus_compat::CompatibilityLevel {
    protobus_compat::CompatibilityLevel::from_name(name).unwrap()
}

/// A schemas topic that would lose registrations (not compacted) or read
/// them out of order (several partitions) stops the registry at start, with
/// what is wrong and how to fix it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schemas_topic_that_would_lose_or_reorder_schemas_is_refused() {
    let kafka = common::kafka().await;
    let deleting = common::unique_name("_schemas-delete");
    kafka.create_topic(&deleting, 1).await;
    let refused = Registry::kafka(kafka.bootstrap(), &deleting)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("{deleting} has cleanup.policy=delete")),
        "{refused}"
    );
    assert!(
        refused.contains("--add-config cleanup.policy=compact"),
        "{refused}"
    );

    let split = common::unique_name("_schemas-split");
    kafka.create_topic(&split, 2).await;
    let refused = Registry::kafka(kafka.bootstrap(), &split)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("{split} has 2 partitions")),
        "{refused}"
    );

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args(["registry", "--topic", &deleting, "--listen"])
            .arg(common::free_address().to_string())
            .env("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap())
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("the registry gave up at once")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("cleanup.policy=delete"), "{stderr}");
}
