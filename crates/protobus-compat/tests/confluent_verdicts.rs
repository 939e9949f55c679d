//! One case per kind of change that Confluent's Protobuf checker knows, with
//! the differences and the verdict Confluent Schema Registry gives for it
//! (its published cases: protobuf-provider `diff-schema-examples.json`). The
//! schemas are this project's own; the expected names and verdicts are Confluent's.

use protobus_compat::{CompatibilityLevel, Dependency, Schema, check, diff};

struct Case {
    name: &'static str,
    original: &'static str,
    update: &'static str,
    original_deps: &'static [(&'static str, &'static str, i32, &'static str)],
    update_deps: &'static [(&'static str, &'static str, i32, &'static str)],
    changes: &'static [&'static str],
    compatible: bool,
}

const fn case(
    name: &'static str,
    original: &'static str,
    update: &'static str,
    changes: &'static [&'static str],
    compatible: bool,
) -> Case {
    Case {
        name,
        original,
        update,
        original_deps: &[],
        update_deps: &[],
        changes,
        compatible,
    }
}

const MONEY_V1: &str = "syntax = \"proto3\"; package shop.common;\nmessage Money { string currency = 1; int64 units = 2; }";
const MONEY_V2_COMPATIBLE: &str = "syntax = \"proto3\"; package shop.common;\nmessage Money { string currency = 1; int64 units = 2; int32 nanos = 3; }";
const MONEY_V2_BROKEN: &str = "syntax = \"proto3\"; package shop.common;\nmessage Money { string currency = 1; double units = 2; }";
const MONEY_OTHER_PACKAGE: &str = "syntax = \"proto3\"; package shop.money;\nmessage Money { string currency = 1; int64 units = 2; }";

const CASES: &[Case] = &[
    // Fields.
    case(
        "field added",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; string note = 2; }",
        &["FIELD_ADDED #/Order/2"],
        true,
    ),
    case(
        "field added to a nested message",
        "syntax = \"proto3\";\nmessage Order { string id = 1; message Line { string sku = 1; } }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; message Line { string sku = 1; int32 qty = 2; } }",
        &["FIELD_ADDED #/Order/Line/2"],
        true,
    ),
    case(
        "field removed",
        "syntax = \"proto3\";\nmessage Order { string id = 1; string note = 2; }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        &["FIELD_REMOVED #/Order/2"],
        true,
    ),
    case(
        "field renumbered",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        "syntax = \"proto3\";\nmessage Order { string id = 2; }",
        &["FIELD_ADDED #/Order/2", "FIELD_REMOVED #/Order/1"],
        true,
    ),
    case(
        "field renamed",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        "syntax = \"proto3\";\nmessage Order { string order_id = 1; }",
        &["FIELD_NAME_CHANGED #/Order/1"],
        true,
    ),
    case(
        "required field added",
        "syntax = \"proto2\";\nmessage Order { optional string id = 1; }",
        "syntax = \"proto2\";\nmessage Order { optional string id = 1; required string note = 2; }",
        &["REQUIRED_FIELD_ADDED #/Order/2"],
        false,
    ),
    case(
        "required field removed",
        "syntax = \"proto2\";\nmessage Order { optional string id = 1; required string note = 2; }",
        "syntax = \"proto2\";\nmessage Order { optional string id = 1; }",
        &["REQUIRED_FIELD_REMOVED #/Order/2"],
        false,
    ),
    // Type groups.
    case(
        "int32 to int64 (same varint group)",
        "syntax = \"proto3\";\nmessage Order { int32 qty = 1; }",
        "syntax = \"proto3\";\nmessage Order { int64 qty = 1; }",
        &[],
        true,
    ),
    case(
        "string to bytes",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        "syntax = \"proto3\";\nmessage Order { bytes id = 1; }",
        &[],
        true,
    ),
    case(
        "fixed32 to sfixed32",
        "syntax = \"proto3\";\nmessage Order { fixed32 n = 1; }",
        "syntax = \"proto3\";\nmessage Order { sfixed32 n = 1; }",
        &[],
        true,
    ),
    case(
        "int32 to sint32 (zigzag is another group)",
        "syntax = \"proto3\";\nmessage Order { int32 n = 1; }",
        "syntax = \"proto3\";\nmessage Order { sint32 n = 1; }",
        &["FIELD_SCALAR_KIND_CHANGED #/Order/1"],
        false,
    ),
    case(
        "float to double",
        "syntax = \"proto3\";\nmessage Order { float n = 1; }",
        "syntax = \"proto3\";\nmessage Order { double n = 1; }",
        &["FIELD_SCALAR_KIND_CHANGED #/Order/1"],
        false,
    ),
    case(
        "int32 to string, renamed",
        "syntax = \"proto3\";\nmessage Order { string id = 1; int32 qty = 2; }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; string note = 2; }",
        &[
            "FIELD_NAME_CHANGED #/Order/2",
            "FIELD_SCALAR_KIND_CHANGED #/Order/2",
        ],
        false,
    ),
    case(
        "int32 to a new enum",
        "syntax = \"proto3\";\nmessage Order { int32 state = 1; }",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; PAID = 1; }",
        &["ENUM_ADDED #/State"],
        true,
    ),
    case(
        "enum to int32",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; PAID = 1; }",
        "syntax = \"proto3\";\nmessage Order { int32 state = 1; }",
        &["ENUM_REMOVED #/State"],
        true,
    ),
    case(
        "scalar to message",
        "syntax = \"proto3\";\nmessage Order { int32 total = 1; }",
        "syntax = \"proto3\";\nmessage Order { Money total = 1; }\nmessage Money { int64 units = 1; }",
        &["FIELD_KIND_CHANGED #/Order/1", "MESSAGE_ADDED #/Money"],
        false,
    ),
    case(
        "message to scalar",
        "syntax = \"proto3\";\nmessage Order { Order.Money total = 1; message Money { int64 units = 1; } }",
        "syntax = \"proto3\";\nmessage Order { int32 total = 1; }",
        &[
            "FIELD_KIND_CHANGED #/Order/1",
            "MESSAGE_REMOVED #/Order/Money",
        ],
        false,
    ),
    case(
        "message type replaced by another",
        "syntax = \"proto3\";\nmessage Order { Money total = 1; }\nmessage Money { int64 units = 1; }",
        "syntax = \"proto3\";\nmessage Order { Price total = 1; }\nmessage Price { int64 units = 1; }",
        &[
            "FIELD_NAMED_TYPE_CHANGED #/Order/1",
            "MESSAGE_ADDED #/Price",
            "MESSAGE_REMOVED #/Money",
        ],
        false,
    ),
    case(
        "map value type changed",
        "syntax = \"proto3\";\nmessage Order { map<string, int32> counts = 1; }",
        "syntax = \"proto3\";\nmessage Order { map<string, string> labels = 1; }",
        &[
            "FIELD_NAME_CHANGED #/Order/1",
            "FIELD_SCALAR_KIND_CHANGED #/Order/1",
        ],
        false,
    ),
    case(
        "map value qualified differently",
        "syntax = \"proto3\";\nmessage Order { map<string, Line> lines = 1; message Line { string sku = 1; } }",
        "syntax = \"proto3\";\nmessage Order { map<string, Order.Line> lines = 1; message Line { string sku = 1; } }",
        &[],
        true,
    ),
    case(
        "relative to fully-qualified name",
        "syntax = \"proto3\"; package shop;\nmessage Order { Line line = 1; message Line { string sku = 1; } }",
        "syntax = \"proto3\"; package shop;\nmessage Order { .shop.Order.Line line = 1; message Line { string sku = 1; } }",
        &[],
        true,
    ),
    // Labels.
    case(
        "optional message to repeated",
        "syntax = \"proto3\";\nmessage Order { optional Line line = 1; message Line { string sku = 1; } }",
        "syntax = \"proto3\";\nmessage Order { repeated Line line = 1; message Line { string sku = 1; } }",
        &[],
        true,
    ),
    case(
        "optional string to repeated",
        "syntax = \"proto3\";\nmessage Order { optional string tag = 1; }",
        "syntax = \"proto3\";\nmessage Order { repeated string tag = 1; }",
        &["FIELD_STRING_OR_BYTES_LABEL_CHANGED #/Order/1"],
        true,
    ),
    case(
        "optional bytes to repeated",
        "syntax = \"proto3\";\nmessage Order { optional bytes blob = 1; }",
        "syntax = \"proto3\";\nmessage Order { repeated bytes blob = 1; }",
        &["FIELD_STRING_OR_BYTES_LABEL_CHANGED #/Order/1"],
        true,
    ),
    case(
        "optional number to repeated",
        "syntax = \"proto3\";\nmessage Order { optional int32 qty = 1; }",
        "syntax = \"proto3\";\nmessage Order { repeated int32 qty = 1; }",
        &["FIELD_NUMERIC_LABEL_CHANGED #/Order/1"],
        false,
    ),
    // Oneofs.
    case(
        "one field moved into a new oneof",
        "syntax = \"proto3\";\nmessage Order { string id = 1; string email = 2; }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; oneof contact { string email = 2; string phone = 3; } }",
        &["ONEOF_ADDED #/Order/contact"],
        true,
    ),
    case(
        "two fields moved into one oneof",
        "syntax = \"proto3\";\nmessage Order { string email = 1; string phone = 2; }",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; string phone = 2; string fax = 3; } }",
        &[
            "MULTIPLE_FIELDS_MOVED_TO_ONEOF #/Order/contact",
            "ONEOF_ADDED #/Order/contact",
        ],
        false,
    ),
    case(
        "field moved into an existing oneof",
        "syntax = \"proto3\";\nmessage Order { string email = 1; oneof contact { string phone = 2; } }",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; string phone = 2; } }",
        &[
            "FIELD_MOVED_TO_EXISTING_ONEOF #/Order/contact",
            "ONEOF_FIELD_ADDED #/Order/contact/1",
        ],
        false,
    ),
    case(
        "field added to a oneof",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; string phone = 2; } }",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; string phone = 2; string fax = 3; } }",
        &["ONEOF_FIELD_ADDED #/Order/contact/3"],
        true,
    ),
    case(
        "field removed from a oneof",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; string phone = 2; string fax = 3; } }",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; string phone = 2; } }",
        &["ONEOF_FIELD_REMOVED #/Order/contact/3"],
        false,
    ),
    case(
        "oneof removed, its fields kept",
        "syntax = \"proto3\";\nmessage Order { oneof contact { string email = 1; } }",
        "syntax = \"proto3\";\nmessage Order { string email = 1; }",
        &["FIELD_ADDED #/Order/1", "ONEOF_REMOVED #/Order/contact"],
        true,
    ),
    // Enums.
    case(
        "enum value renamed",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; PAID = 1; }",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; SETTLED = 1; }",
        &["ENUM_CONST_CHANGED #/State/1"],
        true,
    ),
    case(
        "enum value added",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; }",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; PAID = 1; }",
        &["ENUM_CONST_ADDED #/State/1"],
        true,
    ),
    case(
        "enum value removed",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; PAID = 1; }",
        "syntax = \"proto3\";\nmessage Order { State state = 1; }\nenum State { NEW = 0; }",
        &["ENUM_CONST_REMOVED #/State/1"],
        true,
    ),
    // Messages and packages.
    case(
        "message added",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }\nmessage Refund { string id = 1; }",
        &["MESSAGE_ADDED #/Refund"],
        true,
    ),
    case(
        "message removed",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }\nmessage Refund { string id = 1; }",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        &["MESSAGE_REMOVED #/Refund"],
        false,
    ),
    case(
        "message added before another",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        "syntax = \"proto3\";\nmessage Refund { string id = 1; }\nmessage Order { string id = 1; }",
        &["MESSAGE_ADDED #/Refund", "MESSAGE_MOVED #/Order"],
        true,
    ),
    case(
        "messages swapped",
        "syntax = \"proto3\";\nmessage Order { string id = 1; }\nmessage Refund { string id = 1; }",
        "syntax = \"proto3\";\nmessage Refund { string id = 1; }\nmessage Order { string id = 1; }",
        &["MESSAGE_MOVED #/Order", "MESSAGE_MOVED #/Refund"],
        true,
    ),
    case(
        "package changed",
        "syntax = \"proto3\"; package shop;\nmessage Order { Order.Line line = 1; message Line { string sku = 1; } }",
        "syntax = \"proto3\"; package store;\nmessage Order { Order.Line line = 1; message Line { string sku = 1; } }",
        &["PACKAGE_CHANGED #/"],
        true,
    ),
    // Imports and references.
    Case {
        name: "message moved into an import",
        original: "syntax = \"proto3\";\nmessage Order { Money total = 1; }\nmessage Money { string currency = 1; int64 units = 2; }",
        update: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        original_deps: &[],
        update_deps: &[("money.proto", "money", 1, MONEY_V1)],
        changes: &["MESSAGE_REMOVED #/Money"],
        compatible: false,
    },
    Case {
        name: "message moved out of an import",
        original: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        update: "syntax = \"proto3\";\nmessage Order { Money total = 1; }\nmessage Money { string currency = 1; int64 units = 2; }",
        original_deps: &[("money.proto", "money", 1, MONEY_V1)],
        update_deps: &[],
        changes: &["MESSAGE_ADDED #/Money"],
        compatible: true,
    },
    Case {
        name: "import from another package, same message",
        original: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        update: "syntax = \"proto3\"; import \"money2.proto\";\nmessage Order { shop.money.Money total = 1; }",
        original_deps: &[("money.proto", "money", 1, MONEY_V1)],
        update_deps: &[("money2.proto", "money2", 1, MONEY_OTHER_PACKAGE)],
        changes: &[],
        compatible: true,
    },
    Case {
        name: "reference bumped to a compatible version",
        original: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        update: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        original_deps: &[("money.proto", "money", 1, MONEY_V1)],
        update_deps: &[("money.proto", "money", 2, MONEY_V2_COMPATIBLE)],
        changes: &["FIELD_ADDED #/Money/3"],
        compatible: true,
    },
    Case {
        name: "reference bumped to an incompatible version",
        original: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        update: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        original_deps: &[("money.proto", "money", 1, MONEY_V1)],
        update_deps: &[("money.proto", "money", 3, MONEY_V2_BROKEN)],
        changes: &[
            "FIELD_SCALAR_KIND_CHANGED #/Money/2",
            "FIELD_NAMED_TYPE_CHANGED #/Order/1",
        ],
        compatible: false,
    },
    Case {
        name: "same reference version is not compared again",
        original: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; }",
        update: "syntax = \"proto3\"; import \"money.proto\";\nmessage Order { shop.common.Money total = 1; string id = 2; }",
        original_deps: &[("money.proto", "money", 1, MONEY_V1)],
        update_deps: &[("money.proto", "money", 1, MONEY_V1)],
        changes: &["FIELD_ADDED #/Order/2"],
        compatible: true,
    },
];

fn compile(source: &str, deps: &[(&str, &str, i32, &str)], case: &str) -> Schema {
    let deps: Vec<Dependency> = deps
        .iter()
        .map(|&(name, subject, version, source)| Dependency {
            name: name.into(),
            source: source.into(),
            reference: Some((subject.into(), version)),
        })
        .collect();
    Schema::compile(source, &deps).unwrap_or_else(|e| panic!("{case}: {e}"))
}

#[test]
fn every_case_gets_confluents_differences_and_verdict() {
    let mut failures = Vec::new();
    let mut diagnostics = Vec::new();
    for case in CASES {
        let original = compile(case.original, case.original_deps, case.name);
        let update = compile(case.update, case.update_deps, case.name);
        let mut got: Vec<String> = diff(&original, &update)
            .iter()
            .map(ToString::to_string)
            .collect();
        got.sort();
        let mut want: Vec<String> = case.changes.iter().map(|s| s.to_string()).collect();
        want.sort();
        let compatible = check(CompatibilityLevel::Backward, &update, &[&original]).is_compatible();
        for difference in
            check(CompatibilityLevel::Backward, &update, &[&original]).incompatibilities()
        {
            let found = protobus_compat::ConfluentFinding::locate(difference.clone(), &update);
            let at = found
                .location
                .map(|l| format!("line {}:{}", l.line, l.column))
                .unwrap_or_default();
            diagnostics.push(format!(
                "{}: {at}: {difference}: {}\n  fix: {}",
                case.name,
                difference.kind.description(),
                difference.kind.hint()
            ));
        }
        if got != want || compatible != case.compatible {
            failures.push(format!(
                "{}: got {got:?} compatible={compatible}, want {want:?} compatible={}",
                case.name, case.compatible
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    insta::assert_snapshot!(diagnostics.join("\n"));
}

#[test]
fn levels_choose_direction_and_depth() {
    let v1 = compile(
        "syntax = \"proto3\";\nmessage Order { string id = 1; }\nmessage Refund { string id = 1; }",
        &[],
        "v1",
    );
    let v2 = compile(
        "syntax = \"proto3\";\nmessage Order { string id = 1; }",
        &[],
        "v2",
    );
    let v3 = compile(
        "syntax = \"proto3\";\nmessage Order { string id = 1; }\nmessage Refund { int64 id = 1; }",
        &[],
        "v3",
    );
    use CompatibilityLevel::*;
    // Removing a message breaks backward readers only.
    assert!(!check(Backward, &v2, &[&v1]).is_compatible());
    assert!(check(Forward, &v2, &[&v1]).is_compatible());
    assert!(!check(Full, &v2, &[&v1]).is_compatible());
    assert!(check(None, &v2, &[&v1]).is_compatible());
    // v3 re-adds Refund with another type: fine against the latest (v2), not against v1.
    assert!(check(Backward, &v3, &[&v1, &v2]).is_compatible());
    let transitive = check(BackwardTransitive, &v3, &[&v1, &v2]);
    assert!(!transitive.is_compatible());
    assert_eq!(transitive.by_version()[0].0, 0, "found against v1");
    assert_eq!(
        transitive.incompatibilities()[0].to_string(),
        "FIELD_SCALAR_KIND_CHANGED #/Refund/1"
    );
    assert!(!check(ForwardTransitive, &v3, &[&v1, &v2]).is_compatible());
    assert!(!check(FullTransitive, &v3, &[&v1, &v2]).is_compatible());
}

#[test]
fn invalid_schemas_report_line_and_column() {
    let err = Schema::compile(
        "syntax = \"proto3\";\nmessage Order {\n  strin id = 1;\n}\n",
        &[],
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("strin"), "{message}");
    assert_eq!(err.location(), Some("schema.proto:3:3"), "{message}");
    let err =
        Schema::compile("syntax = \"proto3\";\nimport \"missing.proto\";\n", &[]).unwrap_err();
    assert!(err.to_string().contains("missing.proto"), "{err}");
}

#[test]
fn well_known_types_need_no_registration() {
    let schema = compile(
        "syntax = \"proto3\"; import \"google/protobuf/timestamp.proto\";\nmessage Order { google.protobuf.Timestamp at = 1; }",
        &[],
        "wkt",
    );
    assert!(
        schema
            .files()
            .iter()
            .any(|f| f.name() == "google/protobuf/timestamp.proto")
    );
}

#[test]
fn identity_ignores_layout_and_comments_and_with_normalize_import_order() {
    let deps = [
        Dependency {
            name: "a.proto".into(),
            source: "syntax = \"proto3\"; package a; message A {}".into(),
            reference: None,
        },
        Dependency {
            name: "b.proto".into(),
            source: "syntax = \"proto3\"; package b; message B {}".into(),
            reference: None,
        },
    ];
    let one = Schema::compile("syntax = \"proto3\";\npackage shop;\nimport \"a.proto\";\nimport \"b.proto\";\n// an order\nmessage Order { a.A a = 1; b.B b = 2; }\n", &deps).unwrap();
    let relaid = Schema::compile("syntax=\"proto3\"; package shop; import \"a.proto\"; import \"b.proto\";\nmessage Order {\n  .a.A a = 1;  // fully qualified\n  .b.B b = 2;\n}", &deps).unwrap();
    let reordered = Schema::compile("syntax = \"proto3\";\npackage shop;\nimport \"b.proto\";\nimport \"a.proto\";\nmessage Order { a.A a = 1; b.B b = 2; }\n", &deps).unwrap();
    let different = Schema::compile("syntax = \"proto3\";\npackage shop;\nimport \"a.proto\";\nimport \"b.proto\";\nmessage Order { a.A a = 1; b.B b = 3; }\n", &deps).unwrap();
    assert_eq!(one.identity(false), relaid.identity(false));
    assert_ne!(one.identity(false), reordered.identity(false));
    assert_eq!(one.identity(true), reordered.identity(true));
    assert_ne!(one.identity(true), different.identity(true));
}

#[test]
fn base64_serialized_descriptors_compile_like_their_source() {
    let source = "syntax = \"proto3\";\npackage shop;\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { string id = 1; google.protobuf.Timestamp at = 2; }\n";
    let from_text = Schema::compile(source, &[]).unwrap();
    let serialized = from_text.serialized();
    assert!(!serialized.contains(' '));
    let from_descriptor = Schema::compile(&serialized, &[]).unwrap();
    assert_eq!(from_text.identity(false), from_descriptor.identity(false));
    assert!(diff(&from_text, &from_descriptor).is_empty());
    // Not base64, not a .proto: the compiler's error, not a panic.
    assert!(Schema::compile("!!!", &[]).is_err());
}
