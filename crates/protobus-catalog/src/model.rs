//! The catalog's content, read from a compiled contract: what every
//! rendering shows, in the contract's order (topics by name, events by
//! name within a topic).

use std::collections::BTreeMap;

use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use protobus_contract::{
    DEFAULT_DEAD_LETTER_PARTITIONS, DEFAULT_PARTITIONS, EventDeclaration, OPTIONS_PROTO_NAME,
    SubjectNameStrategy, TopicSettings, dead_letter_topic, declared_events, event_topics,
};
use serde::Serialize;

/// Why a catalog could not be made: the descriptors do not decode, or the
/// contract is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(String);

/// Every topic of a contract and the event types written to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Catalog {
    /// The catalog's title (AsyncAPI `info.title`).
    pub title: String,
    /// The contract's version as its owners name it (AsyncAPI `info.version`).
    pub version: String,
    /// The topics, by name.
    pub topics: Vec<TopicEntry>,
}

/// A topic, with how the contract provisions it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicEntry {
    /// The topic.
    pub name: String,
    /// Partitions (declared, or Protobus's default).
    pub partitions: u32,
    /// Replication factor, when declared (else 3, or every broker when fewer).
    pub replication_factor: Option<u32>,
    /// `min.insync.replicas`, when declared.
    pub min_insync_replicas: Option<u32>,
    /// `retention.ms`, when declared (else the broker's).
    pub retention_ms: Option<i64>,
    /// Where events go that no handler could take.
    pub dead_letter_topic: String,
    /// Partitions of the dead-letter topic.
    pub dead_letter_partitions: u32,
    /// The event types written to it.
    pub events: Vec<EventEntry>,
}

/// An event type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventEntry {
    /// Its full Protobuf name.
    pub full_name: String,
    /// The message's own name.
    pub name: String,
    /// The `.proto` file that defines it.
    pub file: String,
    /// Its comment in the `.proto` file.
    pub description: Option<String>,
    /// The key field path.
    pub key: String,
    /// The key field's type, as `.proto` spells it.
    pub key_type: String,
    /// Its registry subject.
    pub subject: String,
    /// How the subject is named (`TOPIC_RECORD_NAME`… when serialized).
    #[serde(serialize_with = "option_name")]
    pub subject_name_strategy: SubjectNameStrategy,
    /// The compatibility level of its subject.
    pub compatibility: &'static str,
    /// Its position in its file, as the wire format's message indexes.
    pub message_indexes: Vec<i32>,
    /// Its fields, in declaration order.
    pub fields: Vec<FieldEntry>,
    /// The source of its file (empty when the contract came without sources).
    pub schema: String,
}

/// A field of an event type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldEntry {
    /// The field's name.
    pub name: String,
    /// Its number.
    pub number: u32,
    /// Its type, as `.proto` spells it (`repeated shop.orders.v1.LineItem`).
    pub r#type: String,
    /// Its comment.
    pub description: Option<String>,
}

impl Catalog {
    /// The catalog of the contract whose encoded `FileDescriptorSet` is
    /// `descriptors` (with source info, for the comments); `sources` gives
    /// each file's text by import path.
    pub fn new(
        descriptors: &[u8],
        sources: &BTreeMap<String, String>,
        title: &str,
        version: &str,
    ) -> Result<Self, CatalogError> {
        let pool = DescriptorPool::decode(descriptors).map_err(|e| CatalogError(e.to_string()))?;
        let names: Vec<String> = pool
            .files()
            .map(|f| f.name().to_owned())
            .filter(|n| !n.starts_with("google/protobuf/") && n != OPTIONS_PROTO_NAME)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let events = declared_events(&pool, &names).map_err(|e| CatalogError(e.to_string()))?;
        let topics = event_topics(&pool, &names, &events)
            .map_err(|e| CatalogError(e.to_string()))?
            .into_iter()
            .map(|topic| TopicEntry {
                name: topic.name.to_owned(),
                partitions: topic.settings.partitions.unwrap_or(DEFAULT_PARTITIONS),
                replication_factor: topic.settings.replication_factor,
                min_insync_replicas: topic.settings.min_insync_replicas,
                retention_ms: topic.settings.retention_ms,
                dead_letter_topic: dead_letter_topic(topic.name),
                dead_letter_partitions: partitions(&topic.dead_letter),
                events: events
                    .iter()
                    .filter(|e| e.topic == topic.name)
                    .map(|e| event(e, sources))
                    .collect(),
            })
            .collect();
        Ok(Catalog {
            title: title.to_owned(),
            version: version.to_owned(),
            topics,
        })
    }
}

fn option_name<S: serde::Serializer>(
    strategy: &SubjectNameStrategy,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(strategy.option_name())
}

fn partitions(dead_letter: &TopicSettings) -> u32 {
    dead_letter
        .partitions
        .unwrap_or(DEFAULT_DEAD_LETTER_PARTITIONS)
}

fn event(declared: &EventDeclaration, sources: &BTreeMap<String, String>) -> EventEntry {
    let message = &declared.message;
    EventEntry {
        full_name: message.full_name().to_owned(),
        name: message.name().to_owned(),
        file: declared.file().to_owned(),
        description: comment(message, message.path()),
        key: declared.key_field.clone(),
        key_type: declared
            .key
            .fields()
            .last()
            .map(type_name)
            .unwrap_or_default(),
        subject: declared.subject.clone(),
        subject_name_strategy: declared.strategy,
        compatibility: declared.compatibility,
        message_indexes: declared.message_indexes.clone(),
        fields: message
            .fields()
            .map(|field| FieldEntry {
                name: field.name().to_owned(),
                number: field.number(),
                r#type: field_type(&field),
                description: comment(message, field.path()),
            })
            .collect(),
        schema: sources.get(declared.file()).cloned().unwrap_or_default(),
    }
}

/// The comment of the element at `path` of the message's file: the one
/// above it, else the one after it on its line (for a message, after `{`).
fn comment(message: &MessageDescriptor, path: &[i32]) -> Option<String> {
    let file = message.parent_file_descriptor_proto();
    let location = file
        .source_code_info
        .as_ref()?
        .location
        .iter()
        .find(|l| l.path == path)?;
    let text = location
        .leading_comments
        .as_deref()
        .or(location.trailing_comments.as_deref())?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn field_type(field: &FieldDescriptor) -> String {
    if let (true, Kind::Message(entry)) = (field.is_map(), field.kind()) {
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        return format!("map<{}, {}>", type_name(&key), type_name(&value));
    }
    match field.cardinality() {
        Cardinality::Repeated => format!("repeated {}", type_name(field)),
        Cardinality::Optional if field.field_descriptor_proto().proto3_optional() => {
            format!("optional {}", type_name(field))
        }
        _ => type_name(field),
    }
}

fn type_name(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        scalar => format!("{scalar:?}").to_lowercase(),
    }
}
