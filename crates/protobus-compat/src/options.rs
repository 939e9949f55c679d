//! The `(protobus.event)` option, read from compiled descriptors: one reader
//! for the code generator, the contract checks and the CLI.

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

use protobus_contract::SubjectNameStrategy;

use crate::CompatibilityLevel;

/// The full name of the option that marks events.
pub const EVENT_OPTION: &str = "protobus.event";

/// A message's `(protobus.event)` option as written (not yet validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOption {
    /// The Kafka topic (trimmed; empty when missing).
    pub topic: String,
    /// The key field path (trimmed; empty when missing).
    pub key: String,
    /// How the subject is named.
    pub strategy: SubjectNameStrategy,
    /// The subject's compatibility level.
    pub compatibility: CompatibilityLevel,
}

/// Every message of the files named `files` that carries `(protobus.event)`,
/// nested ones included, with its option. Empty when the pool does not know
/// the option at all.
pub fn events(pool: &DescriptorPool, files: &[&str]) -> Vec<(MessageDescriptor, EventOption)> {
    let Some(extension) = pool.get_extension_by_name(EVENT_OPTION) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for file in pool.files().filter(|f| files.contains(&f.name())) {
        let mut pending: Vec<MessageDescriptor> = file.messages().collect();
        while let Some(message) = pending.pop() {
            pending.extend(message.child_messages());
            let options = message.options();
            if !options.has_extension(&extension) {
                continue;
            }
            if let Value::Message(event) = options.get_extension(&extension).as_ref() {
                found.push((message.clone(), read(event)));
            }
        }
    }
    found
}

fn read(event: &DynamicMessage) -> EventOption {
    let text = |name: &str| match event.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.trim().to_owned(),
        _ => String::new(),
    };
    let number = |name: &str| match event.get_field_by_name(name).as_deref() {
        Some(Value::EnumNumber(n)) => *n,
        _ => 0,
    };
    EventOption {
        topic: text("topic"),
        key: text("key"),
        strategy: SubjectNameStrategy::from_option(number("subject_name_strategy")),
        compatibility: match number("compatibility") {
            1 => CompatibilityLevel::None,
            3 => CompatibilityLevel::BackwardTransitive,
            4 => CompatibilityLevel::Forward,
            5 => CompatibilityLevel::ForwardTransitive,
            6 => CompatibilityLevel::Full,
            7 => CompatibilityLevel::FullTransitive,
            _ => CompatibilityLevel::Backward,
        },
    }
}
