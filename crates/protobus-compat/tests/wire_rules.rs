//! Every wire-level rule with a fixture pair that breaks it and one that
//! evolves the same schema safely; the rendered diagnostics are an insta
//! snapshot, so a change of wording or position is reviewed.

use protobus_compat::{Rule, Schema, wire_findings};

struct Case {
    rule: Rule,
    old: &'static str,
    breaking: &'static str,
    safe: &'static str,
}

const fn case(rule: Rule, old: &'static str, breaking: &'static str, safe: &'static str) -> Case {
    Case {
        rule,
        old,
        breaking,
        safe,
    }
}

const CASES: &[Case] = &[
    case(
        Rule::FieldNoDeleteUnlessNumberReserved,
        "message Order {\n  string id = 1;\n  string email = 2;\n}\n",
        "message Order {\n  string id = 1;\n}\n",
        "message Order {\n  string id = 1;\n  reserved 2;\n  reserved \"email\";\n}\n",
    ),
    case(
        Rule::FieldNoDeleteUnlessNameReserved,
        "message Order {\n  string id = 1;\n  string email = 2;\n}\n",
        "message Order {\n  string id = 1;\n  reserved 2;\n}\n",
        "message Order {\n  string id = 1;\n  reserved 2;\n  reserved \"email\";\n}\n",
    ),
    case(
        Rule::FieldWireCompatibleType,
        "message Order {\n  int32 quantity = 1;\n}\n",
        "message Order {\n  string quantity = 1;\n}\n",
        "message Order {\n  int32 quantity = 1;\n  string quantity_text = 2;\n}\n",
    ),
    case(
        Rule::FieldWireJsonCompatibleType,
        "message Order {\n  int32 quantity = 1;\n}\n",
        "message Order {\n  int64 quantity = 1;\n}\n",
        "message Order {\n  int32 quantity = 1;\n  int64 big_quantity = 2;\n}\n",
    ),
    case(
        Rule::FieldWireCompatibleCardinality,
        "message Order {\n  int32 quantity = 1;\n}\n",
        "message Order {\n  repeated int32 quantity = 1;\n}\n",
        "message Order {\n  int32 quantity = 1;\n  repeated int32 split_quantities = 2;\n}\n",
    ),
    case(
        Rule::FieldWireJsonCompatibleCardinality,
        "message Order {\n  string tag = 1;\n}\n",
        "message Order {\n  repeated string tag = 1;\n}\n",
        "message Order {\n  string tag = 1;\n  repeated string tags = 2;\n}\n",
    ),
    case(
        Rule::FieldSameOneof,
        "message Order {\n  string email = 1;\n  string phone = 2;\n}\n",
        "message Order {\n  oneof contact {\n    string email = 1;\n    string phone = 2;\n  }\n}\n",
        "message Order {\n  string email = 1;\n  string phone = 2;\n  oneof fallback {\n    string fax = 3;\n  }\n}\n",
    ),
    case(
        Rule::FieldSameJsonName,
        "message Order {\n  string order_id = 1;\n}\n",
        "message Order {\n  string id = 1;\n}\n",
        "message Order {\n  string id = 1 [json_name = \"orderId\"];\n}\n",
    ),
    case(
        Rule::FileSamePackage,
        "message Order {\n  string id = 1;\n}\n",
        "PACKAGE shop.v2;\nmessage Order {\n  string id = 1;\n}\n",
        "message Order {\n  string id = 1;\n  string note = 2;\n}\n",
    ),
    case(
        Rule::ReservedMessageNoDelete,
        "message Order {\n  string id = 1;\n  reserved 2, 3;\n  reserved \"email\";\n}\n",
        "message Order {\n  string id = 1;\n  reserved 3;\n}\n",
        "message Order {\n  string id = 1;\n  reserved 2 to 3;\n  reserved \"email\";\n}\n",
    ),
    case(
        Rule::ReservedEnumNoDelete,
        "enum State {\n  NEW = 0;\n  reserved 5;\n  reserved \"OLD\";\n}\n",
        "enum State {\n  NEW = 0;\n}\n",
        "enum State {\n  NEW = 0;\n  PAID = 1;\n  reserved 5;\n  reserved \"OLD\";\n}\n",
    ),
    case(
        Rule::EnumValueNoDeleteUnlessNumberReserved,
        "enum State {\n  NEW = 0;\n  PAID = 1;\n}\n",
        "enum State {\n  NEW = 0;\n}\n",
        "enum State {\n  NEW = 0;\n  reserved 1;\n  reserved \"PAID\";\n}\n",
    ),
    case(
        Rule::EnumValueNoDeleteUnlessNameReserved,
        "enum State {\n  NEW = 0;\n  PAID = 1;\n}\n",
        "enum State {\n  NEW = 0;\n  reserved 1;\n}\n",
        "enum State {\n  NEW = 0;\n  reserved 1;\n  reserved \"PAID\";\n}\n",
    ),
    case(
        Rule::EnumValueSameName,
        "enum State {\n  NEW = 0;\n  PAID = 1;\n}\n",
        "enum State {\n  NEW = 0;\n  SETTLED = 1;\n}\n",
        "enum State {\n  NEW = 0;\n  PAID = 1;\n  SETTLED = 2;\n}\n",
    ),
];

const PROTO2: &[Case] = &[case(
    Rule::FieldSameRequiredness,
    "message Order {\n  optional string id = 1;\n}\n",
    "message Order {\n  required string id = 1;\n}\n",
    "message Order {\n  optional string id = 1;\n  optional string note = 2;\n}\n",
)];

fn compile(syntax: &str, body: &str) -> Schema {
    let (package, body) = match body.strip_prefix("PACKAGE ") {
        Some(rest) => rest.split_once(";\n").unwrap(),
        None => ("shop.v1", body),
    };
    let source = format!("syntax = \"{syntax}\";\n\npackage {package};\n\n{body}");
    Schema::compile_named("shop/v1/orders.proto", &source, &[])
        .unwrap_or_else(|e| panic!("{e}\n{source}"))
}

#[test]
fn every_rule_has_a_breaking_and_a_safe_fixture() {
    let mut report = Vec::new();
    for (syntax, cases) in [("proto3", CASES), ("proto2", PROTO2)] {
        for case in cases {
            let old = compile(syntax, case.old);
            let breaking = wire_findings(&old, &compile(syntax, case.breaking));
            assert!(
                breaking.iter().any(|f| f.rule == case.rule),
                "{}: not found in {breaking:#?}",
                case.rule
            );
            let safe = wire_findings(&old, &compile(syntax, case.safe));
            assert!(
                safe.is_empty(),
                "{}: the safe change was flagged: {safe:#?}",
                case.rule
            );
            for finding in breaking.iter().filter(|f| f.rule == case.rule) {
                report.push(finding.to_string());
            }
        }
    }
    let covered: std::collections::BTreeSet<Rule> =
        CASES.iter().chain(PROTO2).map(|c| c.rule).collect();
    assert_eq!(covered.len(), Rule::ALL.len(), "a rule without fixtures");
    insta::assert_snapshot!(report.join("\n\n"));
}
