//! Events of a compiled contract: the messages carrying `(protobus.event)`,
//! checked so that a bad option fails the build at its line in the `.proto` file.

use prost_reflect::{DescriptorPool, MessageDescriptor};
use protobus_compat::options::{self, EventOption};
use protobus_contract::rust_names as names;
use std::collections::{BTreeMap, BTreeSet};

use protobus_contract::{KeyKind, KeyPath, Location, TopicDeclaration, TopicSettings};

use crate::error::{Error, ErrorKind};

/// One event type, with everything code generation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventSpec {
    pub(crate) full_name: String,
    pub(crate) rust_path: String,
    pub(crate) method: String,
    pub(crate) topic: String,
    pub(crate) file: String,
    /// `file:line:column` of its `(protobus.event)` option.
    pub(crate) location: String,
    /// Its registry subject.
    pub(crate) subject: String,
    pub(crate) message_indexes: Vec<i32>,
    pub(crate) strategy: &'static str,
    /// The declared compatibility level, as the registry names it.
    pub(crate) compatibility: &'static str,
    pub(crate) key_field: String,
    pub(crate) key: Vec<KeyStep>,
}

impl EventSpec {
    /// The message's own name: `OrderPlaced` of `shop.orders.v1.OrderPlaced`.
    pub(crate) fn message_name(&self) -> &str {
        self.full_name.rsplit('.').next().unwrap_or(&self.full_name)
    }
}

/// A topic the events are written to, with its declared settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) settings: TopicSettings,
    pub(crate) dead_letter: TopicSettings,
}

/// Every topic of `events`, with the settings `(protobus.topic)` declares
/// for it in `files`. A topic declared twice, or that no event is written
/// to, fails the build at its declaration.
pub(crate) fn topics(
    pool: &DescriptorPool,
    files: &[String],
    events: &[EventSpec],
) -> Result<Vec<TopicSpec>, Error> {
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let declared = protobus_contract::declarations(pool, &files).map_err(|e| {
        Error::from(ErrorKind::Contract {
            location: e.location.to_string(),
            message: format!("topic {:?}: {}", e.name, e.message),
        })
    })?;
    let mut by_name: BTreeMap<&str, &TopicDeclaration> = BTreeMap::new();
    for declaration in &declared {
        let fail = |message: String| -> Error {
            ErrorKind::Contract {
                location: declaration.location.to_string(),
                message,
            }
            .into()
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
            TopicSpec {
                name: name.to_owned(),
                settings: declared.map(|d| d.topic).unwrap_or_default(),
                dead_letter: declared.map(|d| d.dead_letter).unwrap_or_default(),
            }
        })
        .collect())
}

/// One step of the key field path: the Rust field name and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyStep {
    pub(crate) field: String,
    pub(crate) read: KeyRead,
    /// proto2 `optional` / proto3 `optional` scalars, and message fields, are `Option`s.
    pub(crate) optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRead {
    Message,
    Text,
    Bytes,
    Number,
}

/// Every event in the files named `files` (imports are not searched).
pub(crate) fn collect(pool: &DescriptorPool, files: &[String]) -> Result<Vec<EventSpec>, Error> {
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut events = options::events(pool, &files)
        .iter()
        .map(|(message, option)| spec(message, option))
        .collect::<Result<Vec<_>, _>>()?;
    events.sort_by(|a, b| (&a.topic, &a.full_name).cmp(&(&b.topic, &b.full_name)));
    Ok(events)
}

fn spec(message: &MessageDescriptor, event: &EventOption) -> Result<EventSpec, Error> {
    let fail = |what: String| -> Error {
        ErrorKind::Contract {
            location: location(message),
            message: format!("event {}: {what}", message.full_name()),
        }
        .into()
    };
    let topic = event.topic.clone();
    if topic.is_empty() {
        return Err(fail("`(protobus.event)` has no `topic`".into()));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        || topic.len() > 249
    {
        return Err(fail(format!(
            "topic `{topic}` is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)"
        )));
    }
    let key_field = event.key.clone();
    if key_field.is_empty() {
        return Err(fail(
            "`(protobus.event)` has no `key` (a field path such as \"order_id\")".into(),
        ));
    }
    let key = key_steps(message, &key_field).map_err(fail)?;
    let strategy = event.strategy.variant();

    // The message's position among messages, from the top of its file down.
    let path = message.path();
    let message_indexes = path.iter().skip(1).step_by(2).copied().collect();
    let nesting: Vec<&str> = message
        .full_name()
        .strip_prefix(message.package_name())
        .unwrap_or(message.full_name())
        .trim_start_matches('.')
        .split('.')
        .collect();
    let subject = event.strategy.subject(&topic, message.full_name());
    Ok(EventSpec {
        full_name: message.full_name().to_owned(),
        rust_path: names::message_path(message.package_name(), &nesting),
        method: names::handler_method(message.name()),
        topic,
        file: message.parent_file().name().to_owned(),
        location: location(message),
        subject,
        message_indexes,
        strategy,
        compatibility: event.compatibility.name(),
        key_field,
        key,
    })
}

fn key_steps(message: &MessageDescriptor, path: &str) -> Result<Vec<KeyStep>, String> {
    let key = KeyPath::resolve(message, path).map_err(|e| e.to_string())?;
    let fields = key.fields();
    let steps = fields.iter().enumerate().map(|(i, field)| {
        let read = if i + 1 < fields.len() {
            KeyRead::Message
        } else {
            match key.kind() {
                KeyKind::Text => KeyRead::Text,
                KeyKind::Bytes => KeyRead::Bytes,
                // Both print with `to_string()`: decimal, or `true`/`false`.
                KeyKind::Number | KeyKind::Bool => KeyRead::Number,
            }
        };
        KeyStep {
            field: names::snake(field.name()),
            optional: read == KeyRead::Message || field.supports_presence(),
            read,
        }
    });
    Ok(steps.collect())
}

/// `file:line:column` of the message's `(protobus.event)` option (the file
/// alone when the compiler recorded no position).
fn location(message: &MessageDescriptor) -> String {
    Location::of_event(message).map_or_else(
        || message.parent_file().name().to_owned(),
        |at| at.to_string(),
    )
}
