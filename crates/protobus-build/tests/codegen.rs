//! Generated code, checked three ways: a golden snapshot for a fixture
//! contract, a rebuild after a contract gains an event type, and the build
//! errors for bad `(protobus.event)` options, each with file, line and column.

use std::path::Path;

fn generate(root: &Path) -> Result<String, protobus_build::Error> {
    let out = tempfile::tempdir().unwrap();
    protobus_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile(root)?;
    Ok(std::fs::read_to_string(out.path().join(protobus_build::INCLUDE_FILE)).unwrap())
}

fn contract(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
    dir
}

#[test]
fn generated_code_for_the_golden_contract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    insta::assert_snapshot!(generate(&root).unwrap());
}

const V1: &str = r#"syntax = "proto3";
package evo.accounts;
import "protobus/options.proto";
message AccountOpened {
  option (protobus.event) = { topic: "evo.accounts" key: "account_id" };
  string account_id = 1;
}
"#;

#[test]
fn a_new_event_message_gets_a_handler_method_and_an_event_impl_on_rebuild() {
    let dir = contract(&[("evo/accounts.proto", V1)]);
    let before = generate(dir.path()).unwrap();
    assert!(before.contains("fn account_opened("));
    assert!(!before.contains("AccountClosed"));

    let v2 = format!(
        "{V1}message AccountClosed {{\n  option (protobus.event) = {{ topic: \"evo.accounts\" key: \"account_id\" }};\n  string account_id = 1;\n}}\n"
    );
    std::fs::write(dir.path().join("evo/accounts.proto"), v2).unwrap();
    let after = generate(dir.path()).unwrap();
    assert!(after.contains("fn account_opened("));
    assert!(after.contains("fn account_closed("), "new handler method");
    assert!(
        after.contains("impl ::protobus_runtime::Event for evo::accounts::AccountClosed"),
        "new event type for the producer"
    );
    assert!(
        after.contains("\"evo.accounts.AccountClosed\" => {"),
        "new dispatch arm"
    );
}

fn build_error(source: &str) -> String {
    let dir = contract(&[("bad/events.proto", source)]);
    generate(dir.path()).unwrap_err().to_string()
}

fn event(option: &str, fields: &str) -> String {
    format!(
        "syntax = \"proto3\";\npackage bad;\nimport \"protobus/options.proto\";\n\nmessage Part {{ string id = 1; }}\n\nmessage Happened {{\n  option (protobus.event) = {option};\n{fields}\n}}\n"
    )
}

#[test]
fn bad_options_fail_the_build_at_their_line() {
    let fields =
        "  string id = 1;\n  repeated string tags = 2;\n  Part part = 3;\n  double score = 4;";
    let errors = [
        (
            "missing topic",
            build_error(&event("{ key: \"id\" }", fields)),
        ),
        (
            "missing key",
            build_error(&event("{ topic: \"t\" }", fields)),
        ),
        (
            "unknown key field",
            build_error(&event("{ topic: \"t\" key: \"order_id\" }", fields)),
        ),
        (
            "repeated key field",
            build_error(&event("{ topic: \"t\" key: \"tags\" }", fields)),
        ),
        (
            "message key field",
            build_error(&event("{ topic: \"t\" key: \"part\" }", fields)),
        ),
        (
            "float key field",
            build_error(&event("{ topic: \"t\" key: \"score\" }", fields)),
        ),
        (
            "key path through a scalar",
            build_error(&event("{ topic: \"t\" key: \"id.x\" }", fields)),
        ),
        (
            "bad topic name",
            build_error(&event("{ topic: \"orders/eu\" key: \"id\" }", fields)),
        ),
        (
            "two topics for one type",
            build_error(
                "syntax = \"proto3\";\npackage bad;\nimport \"protobus/options.proto\";\nmessage Happened {\n  option (protobus.event) = { topic: \"a\" key: \"id\" };\n  option (protobus.event).topic = \"b\";\n  string id = 1;\n}\n",
            ),
        ),
    ];
    let report: Vec<String> = errors
        .iter()
        .map(|(case, error)| format!("{case}:\n  {error}"))
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

/// Topic declarations that cannot be right fail the build at their line.
#[test]
fn bad_topic_declarations_fail_the_build_at_their_line() {
    let with = |declarations: &str| {
        format!(
            "syntax = \"proto3\";\npackage bad;\nimport \"protobus/options.proto\";\n\n{declarations}\nmessage Happened {{\n  option (protobus.event) = {{ topic: \"t\" key: \"id\" }};\n  string id = 1;\n}}\n"
        )
    };
    let errors = [
        (
            "a topic no event is written to",
            build_error(&with("option (protobus.topic) = { name: \"u\" };")),
        ),
        (
            "a topic declared twice",
            build_error(&with(
                "option (protobus.topic) = { name: \"t\" };\noption (protobus.topic) = { name: \"t\" partitions: 2 };",
            )),
        ),
        (
            "no name",
            build_error(&with("option (protobus.topic) = { partitions: 2 };")),
        ),
        (
            "more in-sync copies than copies",
            build_error(&with(
                "option (protobus.topic) = { name: \"t\" replication_factor: 2 min_insync_replicas: 3 };",
            )),
        ),
        (
            "a dead-letter topic with a name",
            build_error(&with(
                "option (protobus.topic) = { name: \"t\" dead_letter: { name: \"t.errors\" } };",
            )),
        ),
    ];
    let report: Vec<String> = errors
        .iter()
        .map(|(case, error)| format!("{case}:\n  {error}"))
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

/// Contracts whose events would share a name in the generated code or in
/// the registry fail the build at the second event's option.
#[test]
fn names_that_would_collide_fail_the_build_at_the_option() {
    let file = |package: &str, events: &str| {
        format!(
            "syntax = \"proto3\";\npackage {package};\nimport \"protobus/options.proto\";\n{events}"
        )
    };
    let event = |name: &str, option: &str| {
        format!(
            "message {name} {{\n  option (protobus.event) = {{ {option} key: \"id\" }};\n  string id = 1;\n}}\n"
        )
    };
    let cases = [
        (
            "one handler method for two event types of a topic",
            vec![
                ("a/one.proto", file("a", &event("Happened", "topic: \"t\""))),
                ("b/two.proto", file("b", &event("Happened", "topic: \"t\""))),
            ],
        ),
        (
            "one handler trait for two topics",
            vec![(
                "a/one.proto",
                file(
                    "a",
                    &(event("Placed", "topic: \"shop.orders\"")
                        + &event("Paid", "topic: \"shop_orders\"")),
                ),
            )],
        ),
        (
            "one subject for two event types",
            vec![(
                "a/one.proto",
                file(
                    "a",
                    &(event("Placed", "topic: \"t\" subject_name_strategy: TOPIC_NAME")
                        + &event("Paid", "topic: \"t\" subject_name_strategy: TOPIC_NAME")),
                ),
            )],
        ),
    ];
    let report: Vec<String> = cases
        .iter()
        .map(|(case, files)| {
            let files: Vec<(&str, &str)> = files.iter().map(|(n, s)| (*n, s.as_str())).collect();
            let dir = contract(&files);
            format!("{case}:\n  {}", generate(dir.path()).unwrap_err())
        })
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

/// A compile error says `file:line:column` in one line and, as a miette
/// diagnostic, keeps the compiler's label on the source line.
#[test]
fn compile_errors_keep_their_labels() {
    let dir = contract(&[(
        "bad/broken.proto",
        "syntax = \"proto3\";\npackage bad;\n\nmessage Broken {\n  string id = ;\n}\n",
    )]);
    let err = generate(dir.path()).unwrap_err();
    insta::assert_snapshot!("compile_error_display", err.to_string());
    let mut report = String::new();
    miette::NarratableReportHandler::new()
        .render_report(&mut report, &err)
        .unwrap();
    insta::assert_snapshot!("compile_error_report", report);
}
