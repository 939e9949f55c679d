//! Every rule a contract change is checked by, as one Markdown table. The
//! README shows it, and a test keeps the two the same.

use crate::{Category, ContractRule, DifferenceKind, Rule};

/// The rules as a Markdown table: the rule, what it refuses, what it
/// protects, and how a change it refuses is made deliberately.
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "| rule | refuses | protects | to make the change deliberately |\n| --- | --- | --- | --- |\n",
    );
    let new_version = "a new package version";
    for kind in DifferenceKind::ALL
        .into_iter()
        .filter(|k| !k.is_compatible())
    {
        out.push_str(&format!(
            "| `{}` (Confluent) | {} | readers the subject's level covers | {new_version}, or the level `NONE` |\n",
            kind.name(),
            kind.description()
        ));
    }
    for rule in Rule::ALL {
        let readers = match rule.category() {
            Category::Wire => "readers of Kafka records (binary)",
            Category::WireJson => "readers of the proto3 JSON mapping (ingest, tools)",
        };
        out.push_str(&format!(
            "| `{}` (wire) | {} | {readers} | {new_version}, or the level `NONE` |\n",
            rule.id(),
            rule.change()
        ));
    }
    for rule in ContractRule::ALL {
        out.push_str(&format!(
            "| `{}` (contract) | {} | {} | an entry `{} full.event.Name` in the accepted changes |\n",
            rule.id(),
            rule.change(),
            rule.protects(),
            rule.id()
        ));
    }
    out
}
