//! What the registry stores: one record per registration, soft delete and
//! config change, keyed like Confluent Schema Registry's `_schemas` topic so
//! that compaction keeps exactly the current state.

use protobus_compat::CompatibilityLevel;
use serde::{Deserialize, Serialize};

/// A reference from one schema to another registered one, by import name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The import path the referring schema uses.
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// Its version in that subject.
    pub version: i32,
}

/// One change to the registry's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// A subject version (re)written; `None` when permanently deleted.
    Schema {
        subject: String,
        version: i32,
        value: Option<SchemaValue>,
    },
    /// A compatibility level set (`Some`) or removed (`None`); global when `subject` is `None`.
    Config {
        subject: Option<String>,
        level: Option<CompatibilityLevel>,
    },
    /// A mode set (`Some`) or removed (`None`); global when `subject` is `None`.
    Mode {
        subject: Option<String>,
        mode: Option<crate::registry::Mode>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    #[serde(default = "protobuf")]
    pub schema_type: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

fn protobuf() -> String {
    crate::registry::PROTOBUF.to_owned()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
enum Key {
    Schema {
        subject: String,
        version: i32,
        magic: i32,
    },
    Config {
        subject: Option<String>,
        magic: i32,
    },
    Mode {
        subject: Option<String>,
        magic: i32,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigValue {
    compatibility_level: CompatibilityLevel,
}

#[derive(Debug, Serialize, Deserialize)]
struct ModeValue {
    mode: crate::registry::Mode,
}

impl Record {
    /// `subject` `version` written with the Protobuf schema `id`
    /// (`deleted`: soft-deleted).
    pub(crate) fn version(
        subject: &str,
        version: i32,
        id: i32,
        schema: &str,
        references: Vec<Reference>,
        deleted: bool,
    ) -> Record {
        Record::Schema {
            subject: subject.to_owned(),
            version,
            value: Some(SchemaValue {
                subject: subject.to_owned(),
                version,
                id,
                schema_type: protobuf(),
                references,
                schema: schema.to_owned(),
                deleted,
            }),
        }
    }

    /// The schema id a (live or soft-deleted) subject version record holds.
    pub(crate) fn schema_id(&self) -> Option<i32> {
        match self {
            Record::Schema {
                value: Some(value), ..
            } => Some(value.id),
            _ => None,
        }
    }

    /// The record as Kafka key and value bytes (`None` value = tombstone).
    pub(crate) fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let (key, value) = match self {
            Record::Schema {
                subject,
                version,
                value,
            } => (
                Key::Schema {
                    subject: subject.clone(),
                    version: *version,
                    magic: 1,
                },
                value.as_ref().map(serde_json::to_vec),
            ),
            Record::Config { subject, level } => (
                Key::Config {
                    subject: subject.clone(),
                    magic: 0,
                },
                level.map(|l| {
                    serde_json::to_vec(&ConfigValue {
                        compatibility_level: l,
                    })
                }),
            ),
            Record::Mode { subject, mode } => (
                Key::Mode {
                    subject: subject.clone(),
                    magic: 0,
                },
                mode.map(|mode| serde_json::to_vec(&ModeValue { mode })),
            ),
        };
        let key = serde_json::to_vec(&key).expect("keys serialize");
        (key, value.map(|v| v.expect("values serialize")))
    }

    /// Reads a record back; `Ok(None)` for record kinds this registry does not use.
    pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Record>, String> {
        let key: Key = serde_json::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
        Ok(match key {
            Key::Schema {
                subject, version, ..
            } => Some(Record::Schema {
                subject,
                version,
                value: value
                    .map(serde_json::from_slice)
                    .transpose()
                    .map_err(|e| format!("bad schema value: {e}"))?,
            }),
            Key::Config { subject, .. } => Some(Record::Config {
                subject,
                level: value
                    .map(serde_json::from_slice::<ConfigValue>)
                    .transpose()
                    .map_err(|e| format!("bad config value: {e}"))?
                    .map(|c| c.compatibility_level),
            }),
            Key::Mode { subject, .. } => Some(Record::Mode {
                subject,
                mode: value
                    .map(serde_json::from_slice::<ModeValue>)
                    .transpose()
                    .map_err(|e| format!("bad mode value: {e}"))?
                    .map(|m| m.mode),
            }),
            Key::Other => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_confluents_format() {
        let record = Record::Schema {
            subject: "orders-value".into(),
            version: 2,
            value: Some(SchemaValue {
                subject: "orders-value".into(),
                version: 2,
                id: 7,
                schema_type: "PROTOBUF".into(),
                references: vec![Reference {
                    name: "money.proto".into(),
                    subject: "money".into(),
                    version: 1,
                }],
                schema: "syntax = \"proto3\";".into(),
                deleted: false,
            }),
        };
        let (key, value) = record.encode();
        assert_eq!(
            String::from_utf8(key.clone()).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#
        );
        assert_eq!(
            Record::decode(&key, value.as_deref()).unwrap(),
            Some(record)
        );

        let config = Record::Config {
            subject: None,
            level: Some(CompatibilityLevel::FullTransitive),
        };
        let (key, value) = config.encode();
        assert_eq!(
            String::from_utf8(value.clone().unwrap()).unwrap(),
            r#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#
        );
        assert_eq!(
            Record::decode(&key, value.as_deref()).unwrap(),
            Some(config)
        );
        let mode = Record::Mode {
            subject: Some("orders-value".into()),
            mode: Some(crate::registry::Mode::ReadonlyOverride),
        };
        let (key, value) = mode.encode();
        assert_eq!(
            String::from_utf8(key.clone()).unwrap(),
            r#"{"keytype":"MODE","subject":"orders-value","magic":0}"#
        );
        assert_eq!(
            String::from_utf8(value.clone().unwrap()).unwrap(),
            r#"{"mode":"READONLY_OVERRIDE"}"#
        );
        assert_eq!(Record::decode(&key, value.as_deref()).unwrap(), Some(mode));
        assert_eq!(
            Record::decode(br#"{"keytype":"NOOP","magic":0}"#, None).unwrap(),
            None
        );
    }
}
