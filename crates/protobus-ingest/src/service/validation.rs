//! Validation: an event must be of the contract, decode as its type with no
//! field the type does not define, carry its key, stay within the limits,
//! and set no header Protobus writes itself.

use protobus_runtime::{EventInfo, traceparent};
use tonic::metadata::MetadataMap;

use super::{Inner, Table};
use crate::api::event;
use crate::types::{EventType, Rejection};

/// Header names Protobus writes itself; clients cannot set them.
const RESERVED_HEADER_PREFIX: &str = "protobus-";

/// What the request's metadata adds to its events.
#[derive(Debug, Clone, Default)]
pub(super) struct Meta {
    pub(super) correlation_id: Option<String>,
    pub(super) traceparent: Option<Vec<u8>>,
}

impl Meta {
    pub(super) fn from(metadata: &MetadataMap) -> Self {
        let text = |name: &str| {
            metadata
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Meta {
            correlation_id: text("x-correlation-id"),
            // An invalid trace context is dropped, as W3C Trace Context asks.
            traceparent: text(traceparent::HEADER)
                .filter(|t| traceparent::TraceParent::parse(t).is_some())
                .map(String::into_bytes),
        }
    }
}

/// An event that passed validation, ready to write.
pub(super) struct Prepared {
    pub(super) info: &'static EventInfo,
    pub(super) payload: prost::bytes::Bytes,
    pub(super) key: Option<Vec<u8>>,
}

/// Checks `event` against its type and the limits; takes its payload.
pub(super) fn prepare(
    inner: &Inner,
    table: &Table,
    event: &mut crate::api::Event,
) -> Result<Prepared, Rejection> {
    let event_type: &EventType = table.types.get(&event.r#type)?;
    let key_limit = inner.settings.max_idempotency_key_bytes;
    if event.idempotency_key.len() > key_limit {
        return Err(Rejection::new(
            "idempotency_key",
            format!(
                "idempotency key of {} bytes exceeds the limit of {key_limit} bytes",
                event.idempotency_key.len()
            ),
        ));
    }
    let limit = inner.settings.max_event_bytes;
    let too_large = |field, len: usize| {
        Rejection::new(
            field,
            format!("event of {len} bytes exceeds the limit of {limit} bytes"),
        )
    };
    // Binary payloads are checked and written as sent (no copy, no
    // re-encoding); JSON is encoded once.
    let (payload, key) = match &mut event.payload {
        Some(event::Payload::Binary(bytes)) if bytes.len() > limit => {
            return Err(too_large("binary", bytes.len()));
        }
        Some(event::Payload::Json(json)) if json.len() > limit => {
            return Err(too_large("json", json.len()));
        }
        Some(event::Payload::Binary(bytes)) => {
            let key = event_type.check_binary(bytes)?;
            (std::mem::take(bytes), key)
        }
        Some(event::Payload::Json(json)) => {
            let (bytes, key) = event_type.check_json(json)?;
            (bytes.into(), key)
        }
        None => {
            return Err(Rejection::new(
                "payload",
                "an event needs its payload as `binary` or `json`",
            ));
        }
    };
    if let Some(header) = event
        .headers
        .iter()
        .find(|h| h.key.starts_with(RESERVED_HEADER_PREFIX) || h.key.is_empty())
    {
        return Err(Rejection::new(
            "headers",
            format!(
                "header name `{}` is empty or reserved (`{RESERVED_HEADER_PREFIX}*`)",
                header.key
            ),
        ));
    }
    if key.is_none() && event.key.as_ref().is_none_or(|k| k.is_empty()) {
        return Err(Rejection::new(
            "key",
            format!(
                "the key field `{}` of {} is unset or empty; set it or send a `key`",
                event_type.info.key_field, event_type.info.full_name
            ),
        ));
    }
    Ok(Prepared {
        info: event_type.info,
        payload,
        key,
    })
}
