//! The catalog as an AsyncAPI 3.0 document: a channel per topic, a message
//! per event type (its Protobuf schema, key, headers and Kafka bindings),
//! and the operations producers and consumers perform on each topic.
//!
//! The payload is the event's `.proto` file as written, with the schema
//! format `application/vnd.google.protobuf;version=3`. AsyncAPI's Protobuf
//! schema parser cannot follow imports, so tools show it as text rather
//! than expanding it into JSON Schema.

use serde_json::{Map, Value, json};

use crate::{Catalog, EventEntry, HEADERS, TopicEntry};

/// The Kafka bindings version the document uses.
const KAFKA_BINDINGS: &str = "0.5.0";

impl Catalog {
    /// The AsyncAPI 3.0 document of the catalog.
    pub fn asyncapi(&self) -> Value {
        let mut channels = Map::new();
        let mut operations = Map::new();
        let mut messages = Map::new();
        for topic in &self.topics {
            let id = channel_id(&topic.name);
            let refs: Map<String, Value> = topic
                .events
                .iter()
                .map(|e| {
                    let reference = format!("#/components/messages/{}", message_id(e));
                    (e.name.clone(), json!({ "$ref": reference }))
                })
                .collect();
            let channel_messages: Vec<Value> = topic
                .events
                .iter()
                .map(|e| json!({ "$ref": format!("#/channels/{id}/messages/{}", e.name) }))
                .collect();
            channels.insert(id.clone(), channel(topic, refs));
            for (action, verb) in [("send", "Produce"), ("receive", "Consume")] {
                operations.insert(
                    format!("{action}-{id}"),
                    json!({
                        "action": action,
                        "channel": { "$ref": format!("#/channels/{id}") },
                        "summary": format!("{verb} the events of {}.", topic.name),
                        "messages": channel_messages,
                    }),
                );
            }
            for event in &topic.events {
                messages.insert(message_id(event), message(event));
            }
        }
        json!({
            "asyncapi": "3.0.0",
            "info": {
                "title": self.title,
                "version": self.version,
                "description": "The events of a Protobus contract: one channel per Kafka topic, one message per event type. Values are in Confluent's wire format (a magic byte, the schema id, the message indexes, the Protobuf payload).",
            },
            "defaultContentType": "application/vnd.google.protobuf",
            "channels": channels,
            "operations": operations,
            "components": { "messages": messages },
        })
    }
}

/// Channel and operation ids keep to letters, digits, `-` and `_`.
fn channel_id(topic: &str) -> String {
    topic.replace('.', "_")
}

fn message_id(event: &EventEntry) -> String {
    event.full_name.replace('.', "_")
}

fn channel(topic: &TopicEntry, messages: Map<String, Value>) -> Value {
    let mut configuration = Map::new();
    if let Some(retention) = topic.retention_ms {
        configuration.insert("retention.ms".into(), json!(retention));
    }
    let mut kafka = json!({
        "topic": topic.name,
        "partitions": topic.partitions,
        "bindingVersion": KAFKA_BINDINGS,
    });
    if let Some(replicas) = topic.replication_factor {
        kafka["replicas"] = json!(replicas);
    }
    if !configuration.is_empty() {
        kafka["topicConfiguration"] = Value::Object(configuration);
    }
    let mut protobus = json!({
        "deadLetterTopic": topic.dead_letter_topic,
        "deadLetterPartitions": topic.dead_letter_partitions,
    });
    if let Some(min_insync) = topic.min_insync_replicas {
        protobus["minInsyncReplicas"] = json!(min_insync);
    }
    json!({
        "address": topic.name,
        "title": topic.name,
        "description": format!(
            "Dead letters go to {} ({} partition(s)).",
            topic.dead_letter_topic, topic.dead_letter_partitions
        ),
        "messages": messages,
        "bindings": { "kafka": kafka },
        "x-protobus-topic": protobus,
    })
}

fn message(event: &EventEntry) -> Value {
    let headers: Map<String, Value> = HEADERS
        .iter()
        .map(|(name, what)| {
            (
                (*name).to_owned(),
                json!({ "type": "string", "description": what }),
            )
        })
        .collect();
    let mut message = json!({
        "name": event.name,
        "title": event.full_name,
        "contentType": "application/vnd.google.protobuf",
        "headers": {
            "type": "object",
            "properties": headers,
            "required": ["protobus-event-type"],
        },
        "payload": {
            "schemaFormat": "application/vnd.google.protobuf;version=3",
            "schema": event.schema,
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": format!(
                        "The `{}` field ({}): a string's UTF-8 bytes, bytes as they are, a number in decimal.",
                        event.key, event.key_type
                    ),
                },
                "schemaIdLocation": "payload",
                "schemaIdPayloadEncoding": "confluent",
                "schemaLookupStrategy": event.subject_name_strategy.class_name(),
                "bindingVersion": KAFKA_BINDINGS,
            },
        },
        "x-protobus-event": {
            "file": event.file,
            "key": event.key,
            "subject": event.subject,
            "subjectNameStrategy": event.subject_name_strategy.option_name(),
            "compatibility": event.compatibility,
            "messageIndexes": event.message_indexes,
        },
    });
    if let Some(description) = &event.description {
        message["summary"] = json!(description.lines().next().unwrap_or_default());
        message["description"] = json!(description);
    }
    message
}
