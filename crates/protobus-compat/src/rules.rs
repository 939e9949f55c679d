//! Rules about the contract itself, which no Protobuf checker has: between
//! two versions of a contract, an event's key, topic, subject, presence and
//! compatibility level. Each can be accepted deliberately ([`Accepted`]),
//! never silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::{CompatibilityLevel, Location, Subject};

/// A contract-level rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContractRule {
    /// The event's key is another field or of another type.
    KeyChanged,
    /// The event goes to another topic.
    TopicChanged,
    /// The event's registry subject is named another way.
    SubjectChanged,
    /// The event type is gone from the contract.
    EventRemoved,
    /// The event's compatibility level accepts changes the old one refused.
    LevelLoosened,
}

impl ContractRule {
    /// Every rule, for listing.
    pub const ALL: [ContractRule; 5] = [
        ContractRule::KeyChanged,
        ContractRule::TopicChanged,
        ContractRule::SubjectChanged,
        ContractRule::EventRemoved,
        ContractRule::LevelLoosened,
    ];

    /// The rule's id, e.g. `KEY_CHANGED`.
    pub fn id(self) -> &'static str {
        match self {
            ContractRule::KeyChanged => "KEY_CHANGED",
            ContractRule::TopicChanged => "TOPIC_CHANGED",
            ContractRule::SubjectChanged => "SUBJECT_CHANGED",
            ContractRule::EventRemoved => "EVENT_REMOVED",
            ContractRule::LevelLoosened => "LEVEL_LOOSENED",
        }
    }

    /// The change it refuses, in a few words.
    pub fn change(self) -> &'static str {
        match self {
            ContractRule::KeyChanged => "an event's key moved to another field or type",
            ContractRule::TopicChanged => "an event moved to another topic",
            ContractRule::SubjectChanged => "an event's subject name strategy changed",
            ContractRule::EventRemoved => "an event type removed from the contract",
            ContractRule::LevelLoosened => {
                "a compatibility level that lets through what the old one refused"
            }
        }
    }

    /// What breaks when the rule is broken.
    pub fn protects(self) -> &'static str {
        match self {
            ContractRule::KeyChanged => {
                "per-entity order: the events of one entity land on other partitions than before, so consumers see them out of order across the change"
            }
            ContractRule::TopicChanged => {
                "consumers of the old topic stop receiving the event, and those of the new one get it without its history"
            }
            ContractRule::SubjectChanged => {
                "the registry starts a new subject: compatibility is no longer checked against the old versions, and readers looking up the old subject lose the type"
            }
            ContractRule::EventRemoved => {
                "readers of its topic still meet its events (and its subject keeps its versions), but no code is generated for them any more"
            }
            ContractRule::LevelLoosened => {
                "changes the old level refused pass from now on: readers that relied on it can break without a check failing"
            }
        }
    }

    /// What to do instead.
    pub fn hint(self) -> &'static str {
        match self {
            ContractRule::KeyChanged => {
                "keep the key; to key by something else, publish a new event type (or a new package version) on a new topic"
            }
            ContractRule::TopicChanged => {
                "keep the topic; to move events, publish a new event type on the new topic and retire the old one once its readers moved"
            }
            ContractRule::SubjectChanged => {
                "keep subject_name_strategy; a new strategy is a new subject, which is a new event type in all but name"
            }
            ContractRule::EventRemoved => {
                "keep the message (it may stop being produced); retire it only together with its topic"
            }
            ContractRule::LevelLoosened => {
                "keep the level, or move to a stricter one; loosen it only when every reader agreed"
            }
        }
    }
}

impl fmt::Display for ContractRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One contract-level finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ContractFinding {
    /// Where: the event's option in the new contract (the old one for a
    /// removed event).
    pub location: Option<Location>,
    /// The rule.
    pub rule: ContractRule,
    /// The event type.
    pub event: String,
    /// What changed.
    pub message: String,
    /// What to do instead.
    pub hint: &'static str,
    /// Accepted deliberately: reported, not breaking.
    pub accepted: bool,
}

impl fmt::Display for ContractFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{} {}: {}", self.rule, self.event, self.message)?;
        if self.accepted {
            write!(f, "\n  accepted: listed in the accepted changes")
        } else {
            write!(f, "\n  fix: {}", self.hint)
        }
    }
}

/// Contract-level changes accepted deliberately: a text file of
/// `RULE full.event.Name` lines (`#` starts a comment, say why there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted(BTreeSet<(String, String)>);

impl Accepted {
    /// Parses the accepted changes; names the line of anything else.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut accepted = BTreeSet::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(rule), Some(event), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!(
                    "line {}: expected `RULE full.event.Name`, got `{line}`",
                    number + 1
                ));
            };
            if !ContractRule::ALL.iter().any(|r| r.id() == rule) {
                let ids: Vec<&str> = ContractRule::ALL.iter().map(|r| r.id()).collect();
                return Err(format!(
                    "line {}: `{rule}` is not a contract rule (one of {})",
                    number + 1,
                    ids.join(", ")
                ));
            }
            accepted.insert((rule.to_owned(), event.to_owned()));
        }
        Ok(Accepted(accepted))
    }

    fn contains(&self, rule: ContractRule, event: &str) -> bool {
        self.0.contains(&(rule.id().to_owned(), event.to_owned()))
    }
}

/// Whether `new` refuses every change `old` refused.
fn covers(new: CompatibilityLevel, old: CompatibilityLevel) -> bool {
    use CompatibilityLevel::*;
    let backward = |l| matches!(l, Backward | BackwardTransitive | Full | FullTransitive);
    let forward = |l| matches!(l, Forward | ForwardTransitive | Full | FullTransitive);
    (!backward(old) || backward(new))
        && (!forward(old) || forward(new))
        && (!old.is_transitive() || new.is_transitive())
}

/// The contract-level findings between `old` and `new`, events matched by
/// full name.
pub(crate) fn findings(
    old: &[Subject],
    new: &[Subject],
    accepted: &Accepted,
) -> Vec<ContractFinding> {
    let current: BTreeMap<&str, &Subject> = new.iter().map(|s| (s.full_name.as_str(), s)).collect();
    let mut found = Vec::new();
    let mut push = |rule: ContractRule, subject: &Subject, message: String| {
        found.push(ContractFinding {
            location: subject.location.clone(),
            rule,
            event: subject.full_name.clone(),
            message,
            hint: rule.hint(),
            accepted: accepted.contains(rule, &subject.full_name),
        });
    };
    for before in old {
        let Some(after) = current.get(before.full_name.as_str()) else {
            push(
                ContractRule::EventRemoved,
                before,
                format!(
                    "the event type is gone from the contract, but subject {} has versions and topic {} may hold its events",
                    before.subject, before.topic
                ),
            );
            continue;
        };
        if before.key != after.key || before.key_type != after.key_type {
            push(
                ContractRule::KeyChanged,
                after,
                format!(
                    "the key changed from `{}` ({}) to `{}` ({}): {}",
                    before.key,
                    before.key_type,
                    after.key,
                    after.key_type,
                    ContractRule::KeyChanged.protects()
                ),
            );
        }
        if before.topic != after.topic {
            push(
                ContractRule::TopicChanged,
                after,
                format!(
                    "the topic changed from {} to {}: {}",
                    before.topic,
                    after.topic,
                    ContractRule::TopicChanged.protects()
                ),
            );
        } else if before.subject != after.subject {
            push(
                ContractRule::SubjectChanged,
                after,
                format!(
                    "the subject changed from {} ({}) to {} ({}): {}",
                    before.subject,
                    before.strategy,
                    after.subject,
                    after.strategy,
                    ContractRule::SubjectChanged.protects()
                ),
            );
        }
        if !covers(after.level, before.level) {
            push(
                ContractRule::LevelLoosened,
                after,
                format!(
                    "the compatibility level changed from {} to {}: {}",
                    before.level.name(),
                    after.level.name(),
                    ContractRule::LevelLoosened.protects()
                ),
            );
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use CompatibilityLevel::*;

    #[test]
    fn a_level_is_loosened_when_it_lets_through_what_the_old_one_refused() {
        for (old, new) in [
            (Backward, None),
            (Full, Backward),
            (BackwardTransitive, Backward),
            (Forward, Backward),
            (FullTransitive, Full),
        ] {
            assert!(!covers(new, old), "{old:?} -> {new:?} loosens");
        }
        for (old, new) in [
            (None, Backward),
            (Backward, Full),
            (Backward, BackwardTransitive),
            (Forward, FullTransitive),
            (Full, Full),
        ] {
            assert!(covers(new, old), "{old:?} -> {new:?} does not loosen");
        }
    }

    #[test]
    fn accepted_changes_name_a_rule_and_an_event_per_line() {
        let accepted = Accepted::parse(
            "# ordering per payment, agreed with billing\nKEY_CHANGED shop.orders.v1.OrderPaid\n\n",
        )
        .unwrap();
        assert!(accepted.contains(ContractRule::KeyChanged, "shop.orders.v1.OrderPaid"));
        assert!(!accepted.contains(ContractRule::TopicChanged, "shop.orders.v1.OrderPaid"));
        assert_eq!(
            Accepted::parse("KEY_CHANGE a.B").unwrap_err(),
            "line 1: `KEY_CHANGE` is not a contract rule (one of KEY_CHANGED, TOPIC_CHANGED, SUBJECT_CHANGED, EVENT_REMOVED, LEVEL_LOOSENED)"
        );
        assert!(Accepted::parse("KEY_CHANGED").is_err());
    }
}
