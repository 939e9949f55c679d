//! The contract's event types by name, with their descriptors, so payloads
//! can be checked and keys read without the generated Rust types: by the
//! ingest service and by `protobus publish`, which accept the same events.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use protobus_runtime::{Contract, EventInfo};

use crate::Error;
use crate::wire_check::{Problem, WireCheck};

/// An event type that the service accepts.
#[derive(Debug, Clone)]
pub struct EventType {
    /// What the contract says of the type.
    pub info: &'static EventInfo,
    descriptor: MessageDescriptor,
    /// Checks binary payloads and reads their key, without decoding them.
    check: WireCheck,
}

/// Why an event was rejected: the field of the request event, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The field of the request's event at fault (`binary`, `key`, …).
    pub field: &'static str,
    /// Why, for the caller.
    pub reason: String,
}

impl Rejection {
    /// A rejection of `field`, saying `reason`.
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
    /// Looked up once per event: foldhash is seeded per process like the
    /// standard hasher, at a quarter of SipHash's cost on a type name.
    by_name: foldhash::HashMap<&'static str, EventType>,
}

impl EventTypes {
    /// `descriptors` is the contract's encoded `FileDescriptorSet`.
    pub fn new(contract: &'static Contract, descriptors: &[u8]) -> Result<Self, Error> {
        let pool = DescriptorPool::decode(descriptors).map_err(Error::descriptors)?;
        let mut by_name = foldhash::HashMap::default();
        for info in contract.events {
            let descriptor = pool.get_message_by_name(info.full_name).ok_or_else(|| {
                Error::descriptors(format!("{} is not in the descriptor set", info.full_name))
            })?;
            let check = WireCheck::new(&descriptor, info.key_field).ok_or_else(|| {
                Error::descriptors(format!(
                    "{} has no key field `{}` (a path of singular fields, none in a oneof, ending in a string, bytes, integer, enum or bool)",
                    info.full_name, info.key_field
                ))
            })?;
            by_name.insert(
                info.full_name,
                EventType {
                    info,
                    descriptor,
                    check,
                },
            );
        }
        Ok(EventTypes { by_name })
    }

    /// The type named `full_name`; a rejection naming the known ones otherwise.
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
    /// Checks a binary payload and reads its key: it must decode as this
    /// type with no field this type does not define (a payload of another
    /// type usually has some). The key is `None` when unset or empty, as the
    /// generated `Event::key` gives it.
    pub fn check_binary(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, Rejection> {
        self.check.check(bytes).map_err(|problem| {
            let full_name = self.info.full_name;
            let at = problem.location();
            let reason = match problem {
                Problem::Unknown { number, .. } => format!(
                    "payload has field number {number} at `{at}`, which {full_name} does not define"
                ),
                Problem::Malformed { what, .. } => {
                    format!("payload does not decode as {full_name}: {what} at `{at}`")
                }
            };
            Rejection::new("binary", reason)
        })
    }

    /// A proto3 JSON payload (unknown fields are rejected), encoded, and its key.
    pub fn check_json(&self, json: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), Rejection> {
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
        let bytes = message.encode_to_vec();
        // Refuses what JSON allows but decoders do not: messages nested
        // deeper than 100 levels.
        let key = self
            .check_binary(&bytes)
            .map_err(|r| Rejection::new("json", r.reason))?;
        Ok((bytes, key))
    }
}
