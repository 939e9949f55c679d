//! Time to check a contract of 200 files against its baseline (compile both,
//! Confluent's rules and the wire rules per subject). Target: under 1 s.
//!
//! `cargo bench -p protobus-compat --bench contract_check`

use std::collections::BTreeMap;
use std::time::Instant;

use protobus_compat::{Accepted, Contract, compare};

const FILES: usize = 200;

/// A contract of `FILES` files: a shared one, and event files that import it
/// and the one before them. `evolved` adds a field to every event.
fn contract(evolved: bool) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    files.insert(
        "acme/common/v1/common.proto".to_owned(),
        "syntax = \"proto3\";\npackage acme.common.v1;\nmessage Money { string currency = 1; int64 units = 2; }\nenum Status { STATUS_UNSPECIFIED = 0; ACTIVE = 1; CLOSED = 2; }\n".to_owned(),
    );
    for i in 1..FILES {
        let previous = if i > 1 {
            format!("import \"acme/domain{}/v1/events.proto\";\n", i - 1)
        } else {
            String::new()
        };
        let extra = if evolved { "  string note = 9;\n" } else { "" };
        files.insert(
            format!("acme/domain{i}/v1/events.proto"),
            format!(
                "syntax = \"proto3\";\npackage acme.domain{i}.v1;\nimport \"protobus/options.proto\";\nimport \"acme/common/v1/common.proto\";\n{previous}\
                 message Happened{i} {{\n  option (protobus.event) = {{ topic: \"acme.domain{i}\" key: \"id\" }};\n  string id = 1;\n  acme.common.v1.Money amount = 2;\n  acme.common.v1.Status status = 3;\n  repeated string tags = 4;\n  map<string, string> labels = 5;\n  Detail detail = 6;\n{extra}}}\n\
                 message Detail {{ string text = 1; int32 count = 2; oneof choice {{ string a = 3; int64 b = 4; }} }}\n"
            ),
        );
    }
    files
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = if measuring { 7 } else { 1 };
    let (baseline, current) = (contract(false), contract(true));
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let report = compare(
            &Contract::from_sources(baseline.clone()),
            &Contract::from_sources(current.clone()),
            &Accepted::default(),
        );
        times.push(started.elapsed().as_secs_f64());
        assert!(!report.is_breaking(), "{}", report.render());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "check {FILES} files against their baseline: median {:.3} s over {rounds} rounds (min {:.3} s, max {:.3} s); target < 1 s: {}",
        median,
        times[0],
        times[times.len() - 1],
        if median < 1.0 { "met" } else { "NOT met" }
    );
}
