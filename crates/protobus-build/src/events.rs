//! Events of a compiled contract: the messages carrying `(protobus.event)`,
//! checked so that a bad option fails the build at its line in the `.proto` file.

use prost_reflect::DescriptorPool;
use protobus_contract::rust_names as names;
use protobus_contract::{ContractError, EventDeclaration, KeyKind, TopicSettings};

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

/// Every topic of `events`, with its declared settings.
pub(crate) fn topics(
    pool: &DescriptorPool,
    files: &[String],
    events: &[EventDeclaration],
) -> Result<Vec<TopicSpec>, Error> {
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let topics = protobus_contract::event_topics(pool, &files, events).map_err(contract_error)?;
    Ok(topics
        .into_iter()
        .map(|t| TopicSpec {
            name: t.name.to_owned(),
            settings: t.settings,
            dead_letter: t.dead_letter,
        })
        .collect())
}

fn contract_error(e: ContractError) -> Error {
    ErrorKind::Contract {
        location: e.location,
        message: e.message,
    }
    .into()
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

/// Every event in the files named `files` (imports are not searched),
/// with the declarations it was made from (for [`topics`]).
pub(crate) fn collect(
    pool: &DescriptorPool,
    files: &[String],
) -> Result<(Vec<EventSpec>, Vec<EventDeclaration>), Error> {
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let declared = protobus_contract::declared_events(pool, &files).map_err(contract_error)?;
    Ok((declared.iter().map(spec).collect(), declared))
}

fn spec(event: &EventDeclaration) -> EventSpec {
    let message = &event.message;
    let nesting: Vec<&str> = message
        .full_name()
        .strip_prefix(message.package_name())
        .unwrap_or(message.full_name())
        .trim_start_matches('.')
        .split('.')
        .collect();
    EventSpec {
        full_name: message.full_name().to_owned(),
        rust_path: names::message_path(message.package_name(), &nesting),
        method: names::handler_method(message.name()),
        topic: event.topic.clone(),
        file: event.file().to_owned(),
        location: event.location.clone(),
        subject: event.subject.clone(),
        message_indexes: event.message_indexes.clone(),
        strategy: event.strategy.variant(),
        compatibility: event.compatibility,
        key_field: event.key_field.clone(),
        key: key_steps(&event.key),
    }
}

fn key_steps(key: &protobus_contract::KeyPath) -> Vec<KeyStep> {
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
    steps.collect()
}
