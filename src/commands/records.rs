//! Kafka records as JSON for people and scripts (`tail`, `dlq list`): the
//! event decoded to proto3 JSON, and keys and headers as text when they are
//! UTF-8, base64 otherwise, so nothing is lost on the way to a terminal.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use protobus_runtime::{SchemaRegistry, wire};
use rdkafka::message::{Headers, Message};
use serde_json::{Map, Value, json};

use crate::contract::FILE_DESCRIPTOR_SET;

/// Decodes framed values with this build's contract, naming each writer's
/// type from the registry (cached per schema id).
pub(crate) struct Decoder {
    registry: SchemaRegistry,
    pool: DescriptorPool,
}

/// What a record's value holds.
pub(crate) struct Decoded {
    pub(crate) schema_id: Option<u32>,
    pub(crate) event_type: Option<String>,
    pub(crate) event: Option<Value>,
    /// Why the value could not be decoded (fully or at all).
    pub(crate) error: Option<String>,
}

impl Decoder {
    pub(crate) fn new(registry: SchemaRegistry) -> Result<Self> {
        Ok(Decoder {
            registry,
            pool: DescriptorPool::decode(FILE_DESCRIPTOR_SET)
                .context("the contract's descriptors")?,
        })
    }

    pub(crate) async fn decode(&self, value: Option<&[u8]>) -> Decoded {
        let mut decoded = Decoded {
            schema_id: None,
            event_type: None,
            event: None,
            error: None,
        };
        let Some(frame) = value else {
            decoded.error = Some("the record has no value".into());
            return decoded;
        };
        let header = match wire::read_header(frame) {
            Ok(header) => header,
            Err(err) => {
                decoded.error = Some(format!("not a Protobus event: {err}"));
                return decoded;
            }
        };
        decoded.schema_id = Some(header.schema_id);
        let name = match self
            .registry
            .writer_type(header.schema_id, &header.indexes)
            .await
        {
            Ok(name) => name,
            Err(err) => {
                decoded.error = Some(err.to_string());
                return decoded;
            }
        };
        decoded.event_type = Some(name.to_string());
        let Some(descriptor) = self.pool.get_message_by_name(&name) else {
            decoded.error = Some(format!(
                "{name} is not in this build's contract; rebuild with the contract that has it"
            ));
            return decoded;
        };
        match DynamicMessage::decode(descriptor, &frame[header.payload_offset..]) {
            Ok(message) => match serde_json::to_value(&message) {
                Ok(event) => decoded.event = Some(event),
                Err(err) => decoded.error = Some(format!("{name} has no JSON form: {err}")),
            },
            Err(err) => decoded.error = Some(format!("payload does not decode as {name}: {err}")),
        }
        decoded
    }
}

/// Bytes as a JSON string when they are UTF-8, else `{"base64": …}`.
pub(crate) fn bytes_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!(text),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    }
}

/// A record's position, key, headers and decoded value, in one object.
pub(crate) async fn record_json<M: Message>(message: &M, decoder: &Decoder) -> Value {
    let mut object = Map::new();
    object.insert("topic".into(), json!(message.topic()));
    object.insert("partition".into(), json!(message.partition()));
    object.insert("offset".into(), json!(message.offset()));
    let timestamp = message.timestamp().to_millis();
    object.insert("timestamp_ms".into(), json!(timestamp));
    object.insert(
        "timestamp".into(),
        timestamp
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| {
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
                json!(humantime::format_rfc3339_millis(at).to_string())
            })
            .unwrap_or(Value::Null),
    );
    object.insert("key".into(), message.key().map_or(Value::Null, bytes_json));
    let headers: Vec<Value> = message
        .headers()
        .into_iter()
        .flat_map(|h| h.iter())
        .map(|h| json!({ "key": h.key, "value": h.value.map_or(Value::Null, bytes_json) }))
        .collect();
    object.insert("headers".into(), Value::Array(headers));
    let decoded = decoder.decode(message.payload()).await;
    object.insert("schema_id".into(), json!(decoded.schema_id));
    object.insert("event_type".into(), json!(decoded.event_type));
    object.insert("event".into(), decoded.event.unwrap_or(Value::Null));
    if let Some(error) = decoded.error {
        object.insert("error".into(), json!(error));
        object.insert(
            "value".into(),
            message.payload().map_or(
                Value::Null,
                |v| json!({ "base64": base64::engine::general_purpose::STANDARD.encode(v) }),
            ),
        );
    }
    Value::Object(object)
}
