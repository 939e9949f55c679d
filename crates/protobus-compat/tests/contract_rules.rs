//! The contract-level rules, each on a fixture pair: an old contract and a
//! new one that breaks the rule, reported with its rule id at the event's
//! option; the same change passes when accepted deliberately; a safe
//! variant passes.

use std::collections::BTreeMap;

use protobus_compat::{Accepted, Contract, compare};

const OLD: &str = r#"syntax = "proto3";
package shop.orders.v1;
import "protobus/options.proto";

message OrderPlaced {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" };
  string order_id = 1;
  string customer_id = 2;
}

message OrderPaid {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" compatibility: FULL };
  string order_id = 1;
  string payment_id = 2;
  int64 order_number = 3;
}
"#;

fn contract(source: &str) -> Contract {
    let contract = Contract::from_sources(BTreeMap::from([(
        "shop/orders/v1/orders.proto".to_owned(),
        source.to_owned(),
    )]));
    assert!(contract.errors().is_empty(), "{:?}", contract.errors());
    contract
}

fn report(new: &str, accepted: &str) -> (bool, String) {
    let accepted = Accepted::parse(accepted).unwrap();
    let report = compare(&contract(OLD), &contract(new), &accepted);
    (report.is_breaking(), report.render())
}

#[test]
fn each_contract_rule_is_reported_at_the_events_option() {
    let paid = r#"option (protobus.event) = { topic: "shop.orders" key: "order_id" compatibility: FULL };"#;
    let cases = [
        (
            "key: another field",
            OLD.replace(
                paid,
                &paid.replace("key: \"order_id\"", "key: \"payment_id\""),
            ),
        ),
        (
            "key: the same field, another type",
            OLD.replace(
                paid,
                &paid.replace("key: \"order_id\"", "key: \"order_number\""),
            ),
        ),
        (
            "topic",
            OLD.replace(paid, &paid.replace("shop.orders", "shop.payments")),
        ),
        (
            "subject name strategy",
            OLD.replace(
                paid,
                &paid.replace(" }", " subject_name_strategy: RECORD_NAME }"),
            ),
        ),
        (
            "event removed",
            OLD.split("message OrderPaid").next().unwrap().to_owned(),
        ),
        (
            "level loosened",
            OLD.replace("compatibility: FULL", "compatibility: BACKWARD"),
        ),
    ];
    let mut out = Vec::new();
    for (case, new) in &cases {
        let (breaking, rendered) = report(new, "");
        assert!(breaking, "{case}: {rendered}");
        out.push(format!("== {case}\n{rendered}"));
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn an_accepted_change_is_reported_and_does_not_break() {
    let new = OLD.replace(
        r#"topic: "shop.orders" key: "order_id" compatibility: FULL"#,
        r#"topic: "shop.orders" key: "payment_id" compatibility: FULL"#,
    );
    let (breaking, rendered) = report(
        &new,
        "KEY_CHANGED shop.orders.v1.OrderPaid # per payment, agreed with billing\n",
    );
    assert!(!breaking, "{rendered}");
    assert!(
        rendered.contains("KEY_CHANGED shop.orders.v1.OrderPaid"),
        "{rendered}"
    );
    assert!(
        rendered.contains("accepted: listed in the accepted changes"),
        "{rendered}"
    );
    // Accepting one rule does not accept another.
    let (breaking, _) = report(&new, "TOPIC_CHANGED shop.orders.v1.OrderPaid\n");
    assert!(breaking);
}

#[test]
fn stricter_levels_and_untouched_events_pass() {
    let stricter = OLD.replace(
        r#"{ topic: "shop.orders" key: "order_id" };"#,
        r#"{ topic: "shop.orders" key: "order_id" compatibility: FULL_TRANSITIVE };"#,
    );
    let (breaking, rendered) = report(&stricter, "");
    assert!(!breaking, "{rendered}");
    assert_eq!(rendered, "no breaking changes\n");
}

const MONEY: &str = r#"syntax = "proto3";
package shop.common.v1;

message Money {
  string currency = 1;
  int64 minor_units = 2;
}
"#;

const USES_MONEY: &str = r#"syntax = "proto3";
package shop.orders.v1;
import "protobus/options.proto";
import "shop/common/v1/money.proto";

message OrderPlaced {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" };
  string order_id = 1;
  shop.common.v1.Money total = 2;
}

message OrderPaid {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" };
  string order_id = 1;
  shop.common.v1.Money amount = 2;
}
"#;

fn with_money(money: &str) -> Contract {
    let contract = Contract::from_sources(BTreeMap::from([
        ("shop/common/v1/money.proto".to_owned(), money.to_owned()),
        (
            "shop/orders/v1/orders.proto".to_owned(),
            USES_MONEY.to_owned(),
        ),
    ]));
    assert!(contract.errors().is_empty(), "{:?}", contract.errors());
    contract
}

/// A shared import is checked like the events' own files: once, at its own
/// lines, naming the events it reaches.
#[test]
fn a_change_to_a_shared_import_is_reported_at_its_line_for_the_events_it_reaches() {
    let cases = [
        (
            "a field deleted without reserving it",
            MONEY.replace("  int64 minor_units = 2;\n", ""),
        ),
        (
            "a field renamed (JSON readers)",
            MONEY.replace("minor_units", "units"),
        ),
        (
            "a field's type changed",
            MONEY.replace("int64 minor_units", "string minor_units"),
        ),
    ];
    let mut out = Vec::new();
    for (case, money) in &cases {
        let report = compare(&with_money(MONEY), &with_money(money), &Accepted::default());
        assert!(report.is_breaking(), "{case}: {}", report.render());
        let file = report
            .files
            .iter()
            .find(|f| f.file == "shop/common/v1/money.proto")
            .unwrap_or_else(|| {
                panic!(
                    "{case}: nothing reported for money.proto: {}",
                    report.render()
                )
            });
        let events: Vec<&str> = file.subjects.iter().map(|s| s.full_name.as_str()).collect();
        assert_eq!(
            events,
            ["shop.orders.v1.OrderPaid", "shop.orders.v1.OrderPlaced"],
            "{case}"
        );
        out.push(format!("== {case}\n{}", report.render()));
    }
    insta::assert_snapshot!(out.join("\n"));

    let reserved = MONEY.replace(
        "  int64 minor_units = 2;\n",
        "  reserved 2;\n  reserved \"minor_units\";\n",
    );
    let report = compare(
        &with_money(MONEY),
        &with_money(&reserved),
        &Accepted::default(),
    );
    assert!(!report.is_breaking(), "{}", report.render());
}

/// An event moved into a file of its own, its field type changed on the way:
/// its own subject's break is reported at the new file's line, with what
/// the registry would say about the file it left and how to move an event.
#[test]
fn a_moved_event_is_compared_with_its_old_definition() {
    let old = r#"syntax = "proto3";
package shop.orders.v1;
import "protobus/options.proto";

message OrderPlaced {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" };
  string order_id = 1;
}

message OrderShipped {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" };
  string order_id = 1;
  string carrier = 2;
}
"#;
    let left = old.split("message OrderShipped").next().unwrap().to_owned();
    let shipping = r#"syntax = "proto3";
package shop.orders.v1;
import "protobus/options.proto";

message OrderShipped {
  option (protobus.event) = { topic: "shop.orders" key: "order_id" };
  string order_id = 1;
  int64 carrier = 2;
}
"#;
    let before = Contract::from_sources(BTreeMap::from([(
        "shop/orders/v1/orders.proto".to_owned(),
        old.to_owned(),
    )]));
    let after = Contract::from_sources(BTreeMap::from([
        ("shop/orders/v1/orders.proto".to_owned(), left),
        (
            "shop/orders/v1/shipping.proto".to_owned(),
            shipping.to_owned(),
        ),
    ]));
    let report = compare(&before, &after, &Accepted::default());
    let rendered = report.render();
    let moved = report
        .files
        .iter()
        .find(|f| f.moved_from.is_some())
        .unwrap_or_else(|| panic!("the move is not reported: {rendered}"));
    assert_eq!(moved.file, "shop/orders/v1/shipping.proto");
    assert!(
        moved
            .wire
            .iter()
            .any(|f| f.to_string().starts_with("shop/orders/v1/shipping.proto:8:3: FIELD_WIRE_COMPATIBLE_TYPE shop.orders.v1.OrderShipped.carrier")),
        "{rendered}"
    );
    assert!(
        rendered.contains("moved here from shop/orders/v1/orders.proto"),
        "{rendered}"
    );
    insta::assert_snapshot!(rendered);
}

/// A shared type moved to another file is compared with its old definition:
/// unchanged it passes, changed on the way it is reported at its new line.
#[test]
fn a_shared_type_moved_to_another_file_is_compared_with_its_old_definition() {
    let moved = |money: &str| {
        let contract = Contract::from_sources(BTreeMap::from([
            (
                "shop/common/v1/amounts.proto".to_owned(),
                money.replace("message Money", "// moved here\nmessage Money"),
            ),
            (
                "shop/orders/v1/orders.proto".to_owned(),
                USES_MONEY.replace("shop/common/v1/money.proto", "shop/common/v1/amounts.proto"),
            ),
        ]));
        assert!(contract.errors().is_empty(), "{:?}", contract.errors());
        compare(&with_money(MONEY), &contract, &Accepted::default())
    };
    let unchanged = moved(MONEY);
    assert!(!unchanged.is_breaking(), "{}", unchanged.render());

    let changed = moved(&MONEY.replace("int64 minor_units", "string minor_units"));
    let rendered = changed.render();
    assert!(changed.is_breaking(), "{rendered}");
    let report = changed
        .files
        .iter()
        .find(|f| f.file == "shop/common/v1/amounts.proto")
        .unwrap_or_else(|| panic!("{rendered}"));
    assert_eq!(
        report.moved_from.as_deref(),
        Some("shop/common/v1/money.proto")
    );
    assert!(
        report.wire[0]
            .to_string()
            .starts_with("shop/common/v1/amounts.proto:7:3: FIELD_WIRE_COMPATIBLE_TYPE shop.common.v1.Money.minor_units"),
        "{rendered}"
    );
}
