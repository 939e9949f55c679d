//! The contract's event types by name, with their descriptors, so payloads
//! can be checked and keys read without the generated Rust types: by the
//! ingest service and by `protobus publish`, which accept the same events.

use std::collections::HashMap;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use protobus_runtime::{Contract, EventInfo};

use crate::Error;

/// An event type that the service accepts.
#[derive(Debug, Clone)]
pub struct EventType {
    pub info: &'static EventInfo,
    descriptor: MessageDescriptor,
    /// The key field's path, looked up once rather than by name per event.
    key_path: Vec<FieldDescriptor>,
}

/// Why an event was rejected: the field of the request event, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: &'static str,
    pub reason: String,
}

impl Rejection {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Rejection {
            field,
            reason: reason.into(),
        }
    }
}

/// Every event type of a contract, by fully-qualified name.
#[derive(Debug)]
pub struct EventTypes {
    by_name: HashMap<&'static str, EventType>,
}

impl EventTypes {
    /// `descriptors` is the contract's encoded `FileDescriptorSet`.
    pub fn new(contract: &'static Contract, descriptors: &[u8]) -> Result<Self, Error> {
        let pool = DescriptorPool::decode(descriptors).map_err(Error::descriptors)?;
        let mut by_name = HashMap::new();
        for info in contract.events {
            let descriptor = pool.get_message_by_name(info.full_name).ok_or_else(|| {
                Error::descriptors(format!("{} is not in the descriptor set", info.full_name))
            })?;
            let key_path = key_path(&descriptor, info.key_field).ok_or_else(|| {
                Error::descriptors(format!(
                    "{} has no key field `{}`",
                    info.full_name, info.key_field
                ))
            })?;
            by_name.insert(
                info.full_name,
                EventType {
                    info,
                    descriptor,
                    key_path,
                },
            );
        }
        Ok(EventTypes { by_name })
    }

    pub fn get(&self, full_name: &str) -> Result<&EventType, Rejection> {
        self.by_name.get(full_name).ok_or_else(|| {
            let mut known: Vec<&str> = self.by_name.keys().copied().collect();
            known.sort_unstable();
            Rejection::new(
                "type",
                format!(
                    "`{full_name}` is not an event type of the contract (known: {})",
                    known.join(", ")
                ),
            )
        })
    }
}

impl EventType {
    /// A binary payload, checked: it must decode as this type with no field
    /// this type does not define (a payload of another type usually has some).
    pub fn decode_binary(&self, bytes: &[u8]) -> Result<DynamicMessage, Rejection> {
        let message = DynamicMessage::decode(self.descriptor.clone(), bytes).map_err(|e| {
            Rejection::new(
                "binary",
                format!("payload does not decode as {}: {e}", self.info.full_name),
            )
        })?;
        if let Some(unknown) = first_unknown_field(&message) {
            return Err(Rejection::new(
                "binary",
                format!(
                    "payload has {unknown}, which {} does not define",
                    self.info.full_name
                ),
            ));
        }
        Ok(message)
    }

    /// A proto3 JSON payload; unknown fields are rejected.
    pub fn decode_json(&self, json: &str) -> Result<DynamicMessage, Rejection> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let message = DynamicMessage::deserialize(self.descriptor.clone(), &mut deserializer)
            .and_then(|m| deserializer.end().map(|()| m))
            .map_err(|e| {
                Rejection::new(
                    "json",
                    format!(
                        "payload is not a {} in proto3 JSON: {e}",
                        self.info.full_name
                    ),
                )
            })?;
        Ok(message)
    }

    /// The binary form of an event that came as JSON.
    pub fn encode(message: &DynamicMessage) -> Vec<u8> {
        message.encode_to_vec()
    }

    /// The key field's value, as the generated `Event::key` gives it; `None`
    /// when unset or empty.
    pub fn key(&self, message: &DynamicMessage) -> Option<Vec<u8>> {
        key_at(message, &self.key_path)
    }
}

/// The fields along `key_field` (`customer.id`), from `descriptor` down;
/// `None` unless each but the last is a message field.
fn key_path(descriptor: &MessageDescriptor, key_field: &str) -> Option<Vec<FieldDescriptor>> {
    let mut path: Vec<FieldDescriptor> = Vec::new();
    let mut message = descriptor.clone();
    for segment in key_field.split('.') {
        if let Some(parent) = path.last() {
            let Kind::Message(next) = parent.kind() else {
                return None;
            };
            message = next;
        }
        path.push(message.get_field_by_name(segment)?);
    }
    Some(path)
}

fn key_at(message: &DynamicMessage, path: &[FieldDescriptor]) -> Option<Vec<u8>> {
    let (field, rest) = path.split_first()?;
    if field.supports_presence() && !message.has_field(field) {
        return None;
    }
    let value = message.get_field(field);
    if !rest.is_empty() {
        return match value.as_ref() {
            Value::Message(next) => key_at(next, rest),
            _ => None,
        };
    }
    match value.as_ref() {
        Value::String(s) if !s.is_empty() => Some(s.as_bytes().to_vec()),
        Value::Bytes(b) if !b.is_empty() => Some(b.to_vec()),
        Value::I32(v) | Value::EnumNumber(v) => Some(v.to_string().into_bytes()),
        Value::I64(v) => Some(v.to_string().into_bytes()),
        Value::U32(v) => Some(v.to_string().into_bytes()),
        Value::U64(v) => Some(v.to_string().into_bytes()),
        Value::Bool(v) => Some(v.to_string().into_bytes()),
        _ => None,
    }
}

/// The first field number that a message (or one nested in it) does not
/// define, and where. Nothing is allocated unless one is found: this runs for
/// every binary event.
fn first_unknown_field(message: &DynamicMessage) -> Option<String> {
    let mut path = Vec::new();
    let number = unknown_field_in(message, &mut path)?;
    let at = if path.is_empty() {
        "(top level)".to_owned()
    } else {
        let names: Vec<&str> = path.iter().rev().map(FieldDescriptor::name).collect();
        names.join(".")
    };
    Some(format!("field number {number} at `{at}`"))
}

/// The unknown field's number; `path` gets the fields leading to it,
/// innermost first.
fn unknown_field_in(message: &DynamicMessage, path: &mut Vec<FieldDescriptor>) -> Option<u32> {
    if let Some(unknown) = message.unknown_fields().next() {
        return Some(unknown.number());
    }
    for (field, value) in message.fields() {
        let found = match value {
            Value::Message(m) => unknown_field_in(m, path),
            Value::List(items) => items
                .iter()
                .filter_map(Value::as_message)
                .find_map(|m| unknown_field_in(m, path)),
            Value::Map(map) => map
                .values()
                .filter_map(Value::as_message)
                .find_map(|m| unknown_field_in(m, path)),
            _ => None,
        };
        if found.is_some() {
            path.push(field);
            return found;
        }
    }
    None
}
