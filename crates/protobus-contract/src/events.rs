//! Events of a compiled contract: the messages carrying `(protobus.event)`,
//! read and checked once for the code generator, the compatibility checks
//! and the services that load a contract at run time. A bad option is
//! reported at its line in the `.proto` file.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

use crate::{KeyPath, Location, SubjectNameStrategy, TopicDeclaration, TopicSettings};

/// The full name of the option that marks events.
pub const EVENT_OPTION: &str = "protobus.event";

/// A message's `(protobus.event)` option as written (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOption {
    /// The Kafka topic (trimmed; empty when missing).
    pub topic: String,
    /// The key field path (trimmed; empty when missing).
    pub key: String,
    /// How the subject is named.
    pub strategy: SubjectNameStrategy,
    /// The subject's compatibility level, as the registry's REST API names
    /// it (`BACKWARD` when left out).
    pub compatibility: &'static str,
}

/// Every message of the files named `files` that carries `(protobus.event)`,
/// nested ones included, with its option. Empty when the pool does not know
/// the option at all.
pub fn event_options(
    pool: &DescriptorPool,
    files: &[&str],
) -> Vec<(MessageDescriptor, EventOption)> {
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
        // The numbers of `protobus.Compatibility` in options.proto.
        compatibility: match number("compatibility") {
            1 => "NONE",
            3 => "BACKWARD_TRANSITIVE",
            4 => "FORWARD",
            5 => "FORWARD_TRANSITIVE",
            6 => "FULL",
            7 => "FULL_TRANSITIVE",
            _ => "BACKWARD",
        },
    }
}

/// A mistake in a contract, at the line of the option to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ContractError {
    /// `file:line:column` (the file alone when the compiler kept no position).
    pub location: String,
    /// What is wrong, and how to fix it.
    pub message: String,
}

/// An event type of a contract, checked: a valid topic, a key path that
/// resolves, a subject of its own.
#[derive(Debug, Clone)]
pub struct EventDeclaration {
    /// The message.
    pub message: MessageDescriptor,
    /// The topic its events go to.
    pub topic: String,
    /// Its key field path.
    pub key: KeyPath,
    /// The key field path as written.
    pub key_field: String,
    /// How its subject is named.
    pub strategy: SubjectNameStrategy,
    /// Its registry subject.
    pub subject: String,
    /// Its compatibility level, as the registry names it.
    pub compatibility: &'static str,
    /// Its position in its file, as the wire format's message indexes.
    pub message_indexes: Vec<i32>,
    /// `file:line:column` of its `(protobus.event)` option.
    pub location: String,
}

impl EventDeclaration {
    /// The message's fully-qualified name.
    pub fn full_name(&self) -> &str {
        self.message.full_name()
    }

    /// The file that defines it.
    pub fn file(&self) -> &str {
        self.message.parent_file_descriptor_proto().name()
    }
}

/// Every event of the files named `files` (imports are not searched),
/// checked, ordered by topic and name.
pub fn declared_events(
    pool: &DescriptorPool,
    files: &[&str],
) -> Result<Vec<EventDeclaration>, ContractError> {
    let mut events = event_options(pool, files)
        .iter()
        .map(|(message, option)| declare(message, option))
        .collect::<Result<Vec<_>, _>>()?;
    events.sort_by(|a, b| (&a.topic, a.full_name()).cmp(&(&b.topic, b.full_name())));
    let subjects = events.iter().map(|e| (e.subject.as_str(), e.full_name()));
    crate::check_subjects(subjects).map_err(|clash| ContractError {
        location: events[clash.index].location.clone(),
        message: clash.to_string(),
    })?;
    Ok(events)
}

fn declare(
    message: &MessageDescriptor,
    event: &EventOption,
) -> Result<EventDeclaration, ContractError> {
    let location = location(message);
    let fail = |what: String| ContractError {
        location: location.clone(),
        message: format!("event {}: {what}", message.full_name()),
    };
    let topic = event.topic.clone();
    if topic.is_empty() {
        return Err(fail("`(protobus.event)` has no `topic`".into()));
    }
    if !is_topic_name(&topic) {
        return Err(fail(format!(
            "topic `{topic}` is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)"
        )));
    }
    if event.key.is_empty() {
        return Err(fail(
            "`(protobus.event)` has no `key` (a field path such as \"order_id\")".into(),
        ));
    }
    let key = KeyPath::resolve(message, &event.key).map_err(|e| fail(e.to_string()))?;
    // The message's position among messages, from the top of its file down.
    let message_indexes = message.path().iter().skip(1).step_by(2).copied().collect();
    Ok(EventDeclaration {
        message: message.clone(),
        subject: event.strategy.subject(&topic, message.full_name()),
        topic,
        key,
        key_field: event.key.clone(),
        strategy: event.strategy,
        compatibility: event.compatibility,
        message_indexes,
        location,
    })
}

/// Whether Kafka accepts `name` as a topic name.
pub fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `file:line:column` of the message's `(protobus.event)` option (the file
/// alone when the compiler recorded no position).
fn location(message: &MessageDescriptor) -> String {
    Location::of_event(message).map_or_else(
        || message.parent_file().name().to_owned(),
        |at| at.to_string(),
    )
}

/// A topic the events are written to, with its declared settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTopic<'a> {
    /// The topic.
    pub name: &'a str,
    /// Its settings (`option (protobus.topic)`; defaults when not declared).
    pub settings: TopicSettings,
    /// The settings of its dead-letter topic.
    pub dead_letter: TopicSettings,
}

/// Every topic of `events`, with the settings `(protobus.topic)` declares
/// for it in `files`. A topic declared twice, or that no event is written
/// to, is refused at its declaration.
pub fn event_topics<'a>(
    pool: &DescriptorPool,
    files: &[&str],
    events: &'a [EventDeclaration],
) -> Result<Vec<EventTopic<'a>>, ContractError> {
    let declared = crate::declarations(pool, files).map_err(|e| ContractError {
        location: e.location.to_string(),
        message: format!("topic {:?}: {}", e.name, e.message),
    })?;
    let mut by_name: BTreeMap<&str, &TopicDeclaration> = BTreeMap::new();
    for declaration in &declared {
        let fail = |message: String| ContractError {
            location: declaration.location.to_string(),
            message,
        };
        if !events.iter().any(|e| e.topic == declaration.name) {
            return Err(fail(format!(
                "topic {:?} is declared, but no event is written to it; declare the topics of events only",
                declaration.name
            )));
        }
        if let Some(first) = by_name.insert(&declaration.name, declaration) {
            return Err(fail(format!(
                "topic {:?} is declared twice (first at {}); declare each topic once",
                declaration.name, first.location
            )));
        }
    }
    let names: BTreeSet<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    Ok(names
        .into_iter()
        .map(|name| {
            let declared = by_name.get(name);
            EventTopic {
                name,
                settings: declared.map(|d| d.topic).unwrap_or_default(),
                dead_letter: declared.map(|d| d.dead_letter).unwrap_or_default(),
            }
        })
        .collect())
}
