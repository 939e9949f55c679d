//! The contract changes a new user tries, each run three ways: `schema
//! diff` between two trees, the baseline test (`cargo test`), and `schema
//! check` against a registry holding the contract. Each breaking case is
//! reported with its rule and the right file:line:column; each safe
//! variant passes all three. The reports are snapshots.

use crate::common;

use std::path::Path;

use protobus_compat::Contract;

struct Case {
    name: &'static str,
    edit: fn(&Path),
    /// What `schema diff` and the baseline test must say (`None`: pass).
    breaks: Option<&'static str>,
    /// What `schema check` must say; `None`: it passes (the registry does
    /// not know keys or topics).
    registry_breaks: Option<&'static str>,
}

fn rewrite(root: &Path, file: &str, edit: impl Fn(String) -> String) {
    let path = root.join(file);
    let source = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(source)).unwrap();
}

const MONEY: &str = "shop/common/v1/money.proto";
const PAID_OPTION: &str = "message OrderPaid { // The order was paid in full.\n  option (protobus.event) = { topic: \"shop.orders\" key: \"order_id\" };";
const ORDERS: &str = "shop/orders/v1/orders.proto";

fn move_order_shipped(root: &Path, carrier: &str) {
    let shipped = "message OrderShipped { // The order left the warehouse.\n  option (protobus.event) = { topic: \"shop.orders\" key: \"order_id\" };\n\n  string order_id = 1;\n  string carrier = 2;\n  string tracking_number = 3; // The carrier's, for the customer to follow.\n  google.protobuf.Timestamp shipped_at = 4;\n}\n";
    rewrite(root, ORDERS, |s| {
        assert!(s.contains(shipped), "OrderShipped as the test knows it");
        s.replace(shipped, "")
    });
    std::fs::write(
        root.join("shop/orders/v1/shipping.proto"),
        format!(
            "syntax = \"proto3\";\n\npackage shop.orders.v1;\n\nimport \"google/protobuf/timestamp.proto\";\nimport \"protobus/options.proto\";\n\n{}",
            shipped.replace("string carrier = 2;", carrier)
        ),
    )
    .unwrap();
}

const CASES: &[Case] = &[
    Case {
        name: "a field of a shared import deleted without reserving it",
        edit: |root| rewrite(root, MONEY, |s| s.replace("  int64 minor_units = 2;\n", "")),
        breaks: Some("FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED shop.common.v1.Money.minor_units"),
        registry_breaks: Some(
            "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED shop.common.v1.Money.minor_units",
        ),
    },
    Case {
        name: "a field of a shared import changed from int64 to string",
        edit: |root| {
            rewrite(root, MONEY, |s| {
                s.replace("int64 minor_units", "string minor_units")
            })
        },
        breaks: Some(
            "shop/common/v1/money.proto:9:3: FIELD_WIRE_COMPATIBLE_TYPE shop.common.v1.Money.minor_units",
        ),
        registry_breaks: Some(
            "shop/common/v1/money.proto:9:3: FIELD_WIRE_COMPATIBLE_TYPE shop.common.v1.Money.minor_units",
        ),
    },
    Case {
        name: "a field of a shared import renamed",
        edit: |root| rewrite(root, MONEY, |s| s.replace("minor_units", "units")),
        breaks: Some(
            "shop/common/v1/money.proto:9:3: FIELD_SAME_JSON_NAME shop.common.v1.Money.minor_units",
        ),
        registry_breaks: Some(
            "shop/common/v1/money.proto:9:3: FIELD_SAME_JSON_NAME shop.common.v1.Money.minor_units",
        ),
    },
    Case {
        name: "an event moved to a new file, a field's type changed on the way",
        edit: |root| move_order_shipped(root, "int64 carrier = 2;"),
        breaks: Some(
            "shop/orders/v1/shipping.proto:12:3: FIELD_WIRE_COMPATIBLE_TYPE shop.orders.v1.OrderShipped.carrier",
        ),
        registry_breaks: Some(
            "shop/orders/v1/shipping.proto:12:3: FIELD_WIRE_COMPATIBLE_TYPE shop.orders.v1.OrderShipped.carrier",
        ),
    },
    Case {
        name: "an event keyed by another field",
        edit: |root| {
            rewrite(root, ORDERS, |s| {
                s.replacen(
                    PAID_OPTION,
                    &PAID_OPTION.replace("\"order_id\"", "\"payment_id\""),
                    1,
                )
            })
        },
        breaks: Some("shop/orders/v1/orders.proto:32:3: KEY_CHANGED shop.orders.v1.OrderPaid"),
        registry_breaks: None,
    },
    Case {
        name: "an event sent to another topic",
        edit: |root| {
            rewrite(root, ORDERS, |s| {
                s.replacen(
                    PAID_OPTION,
                    &PAID_OPTION.replace("shop.orders", "shop.payments"),
                    1,
                )
            })
        },
        breaks: Some("shop/orders/v1/orders.proto:32:3: TOPIC_CHANGED shop.orders.v1.OrderPaid"),
        // A new subject: the registry has nothing to compare it with.
        registry_breaks: None,
    },
    Case {
        name: "an event's subject named another way",
        edit: |root| {
            rewrite(root, ORDERS, |s| {
                s.replacen(
                    PAID_OPTION,
                    &PAID_OPTION.replace(" };", " subject_name_strategy: RECORD_NAME };"),
                    1,
                )
            })
        },
        breaks: Some("shop/orders/v1/orders.proto:32:3: SUBJECT_CHANGED shop.orders.v1.OrderPaid"),
        registry_breaks: None,
    },
    Case {
        name: "an event's level loosened",
        edit: |root| {
            rewrite(root, ORDERS, |s| {
                s.replacen(
                    PAID_OPTION,
                    &PAID_OPTION.replace(" };", " compatibility: NONE };"),
                    1,
                )
            })
        },
        breaks: Some("shop/orders/v1/orders.proto:32:3: LEVEL_LOOSENED shop.orders.v1.OrderPaid"),
        registry_breaks: Some(
            "shop.orders-shop.orders.v1.OrderPaid: the registry checks it as BACKWARD, the contract declares NONE",
        ),
    },
    Case {
        name: "an event removed",
        edit: |root| {
            rewrite(root, ORDERS, |s| {
                let start = s.find("message OrderShipped {").unwrap();
                let end = start + s[start..].find("}\n").unwrap() + 2;
                format!("{}{}", &s[..start], &s[end..])
            })
        },
        breaks: Some("EVENT_REMOVED shop.orders.v1.OrderShipped"),
        registry_breaks: Some("MESSAGE_REMOVED #/OrderShipped (Confluent)"),
    },
    Case {
        name: "safe: a field of a shared import deleted and reserved",
        edit: |root| {
            rewrite(root, MONEY, |s| {
                s.replace(
                    "  int64 minor_units = 2;\n",
                    "  reserved 2;\n  reserved \"minor_units\";\n",
                )
            })
        },
        breaks: None,
        registry_breaks: None,
    },
    Case {
        name: "safe: a shared type moved to another file unchanged",
        edit: |root| {
            let money = std::fs::read_to_string(root.join(MONEY)).unwrap();
            std::fs::remove_file(root.join(MONEY)).unwrap();
            std::fs::write(root.join("shop/common/v1/amounts.proto"), money).unwrap();
            for file in [ORDERS, "shop/customers/v1/customers.proto"] {
                rewrite(root, file, |s| {
                    s.replace(MONEY, "shop/common/v1/amounts.proto")
                });
            }
        },
        breaks: None,
        registry_breaks: None,
    },
];

fn protobus(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run protobus");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_case_is_caught_by_diff_baseline_and_check_or_passes_all_three() {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let url = common::serve_registry(protobus_registry::Registry::in_memory()).await;
    let (registered, text) = protobus(&["schema", "register", "--registry", &url]);
    assert!(registered, "{text}");
    let baseline = format!(
        "---\nsource: test\n---\n{}",
        crate::contract_baseline::render(&Contract::load(&proto).unwrap())
    );

    let mut reports = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        common::copy_dir(&proto, dir.path());
        (case.edit)(dir.path());
        let changed = dir.path().to_str().unwrap();

        let (diff_passed, diff) = protobus(&["schema", "diff", proto.to_str().unwrap(), changed]);
        let baseline_verdict = crate::contract_baseline::check(dir.path(), Some(&baseline));
        let (check_passed, check) =
            protobus(&["schema", "check", "--proto", changed, "--registry", &url]);
        match case.breaks {
            Some(expected) => {
                assert!(
                    !diff_passed && diff.contains(expected),
                    "{}: diff:\n{diff}",
                    case.name
                );
                let report = baseline_verdict.expect_err(case.name);
                assert!(
                    report.contains(expected),
                    "{}: baseline:\n{report}",
                    case.name
                );
            }
            None => {
                assert!(diff_passed, "{}: diff:\n{diff}", case.name);
                if let Err(report) = baseline_verdict {
                    panic!("{}: baseline:\n{report}", case.name);
                }
            }
        }
        match case.registry_breaks {
            Some(expected) => assert!(
                !check_passed && check.contains(expected),
                "{}: check:\n{check}",
                case.name
            ),
            None => assert!(check_passed, "{}: check:\n{check}", case.name),
        }
        reports.push(format!(
            "=== {}\n--- schema diff\n{diff}--- schema check\n{check}",
            case.name
        ));
    }
    insta::assert_snapshot!(reports.join("\n"));
}
