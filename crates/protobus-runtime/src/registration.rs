//! How a client finds the schema id of an event type, as Confluent's
//! serializers choose it: register it (`auto.register.schemas`, the
//! default), only look it up (`auto.register.schemas=false`), or use the
//! subject's latest version (`use.latest.version=true`).

use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, ErrorKind};
use crate::event::{Contract, EventInfo};
use crate::schemas::{SchemaRegistry, is_builtin, parse_schema};

/// How a client gets the id of an event type's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    /// Registers the schema (and its imports) when the registry lacks it.
    #[default]
    AutoRegister,
    /// Finds the id of this exact schema; fails when the registry lacks it.
    /// Makes no write request.
    LookupOnly,
    /// Uses the subject's latest version, once the registry says this
    /// build's type is compatible with it and it places the type at the
    /// same message indexes. Makes no write request.
    UseLatest,
}

impl Registration {
    /// The name on the command line (`auto`, `lookup`, `latest`).
    pub fn name(self) -> &'static str {
        match self {
            Registration::AutoRegister => "auto",
            Registration::LookupOnly => "lookup",
            Registration::UseLatest => "latest",
        }
    }
}

#[derive(Deserialize)]
struct Found {
    id: u32,
    #[serde(default)]
    schema: String,
}

#[derive(Deserialize)]
struct Compatibility {
    is_compatible: bool,
}

impl SchemaRegistry {
    /// The id of `event`'s schema under this client's [`Registration`].
    pub(crate) async fn resolve_id(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
    ) -> Result<u32, Error> {
        let subject = event.subject();
        if self.registration != Registration::AutoRegister {
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match self.registration {
            Registration::AutoRegister => {
                self.register_file(contract, event.file, &subject, event.full_name)
                    .await
            }
            Registration::LookupOnly => {
                let body = self.schema_body(contract, event)?;
                let path = format!("/subjects/{}", crate::registry_rest::encode(&subject));
                let not_registered = |said: &str| -> Error {
                    ErrorKind::Registry(format!(
                        "the schema of {} is not registered under subject {subject} \
                         (lookup only: register it first, e.g. with `protobus schema register`){said}",
                        event.full_name
                    ))
                    .into()
                };
                match self.post::<Found>(&path, &body).await {
                    Ok(Some(found)) => Ok(found.id),
                    Ok(None) => Err(not_registered("")),
                    // An import it names is not registered either (422).
                    Err(err) if matches!(err.kind(), ErrorKind::Registry(_)) => {
                        Err(not_registered(&format!("; the registry said: {err}")))
                    }
                    Err(err) => Err(err),
                }
            }
            Registration::UseLatest => self.use_latest(contract, event, &subject).await,
        }
    }

    async fn use_latest(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
        subject: &str,
    ) -> Result<u32, Error> {
        let encoded = crate::registry_rest::encode(subject);
        let latest: Found = self
            .get(&format!("/subjects/{encoded}/versions/latest"))
            .await?
            .ok_or_else(|| {
                ErrorKind::Registry(format!(
                    "subject {subject} has no version to use for {} (use latest: register it first)",
                    event.full_name
                ))
            })?;
        // A contract loaded from a descriptor set has no source text to ask
        // about; the type's place in the latest version is still checked.
        if contract
            .file(event.file)
            .is_some_and(|f| !f.source.is_empty())
        {
            let body = self.schema_body(contract, event)?;
            let verdict: Option<Compatibility> = self
                .post(
                    &format!("/compatibility/subjects/{encoded}/versions/latest"),
                    &body,
                )
                .await?;
            if !verdict.is_some_and(|v| v.is_compatible) {
                return Err(ErrorKind::Registry(format!(
                    "this build's {} is not compatible with the latest version of subject {subject} \
                     (schema id {}): rebuild from the registered contract",
                    event.full_name, latest.id
                ))
                .into());
            }
        }
        let file = parse_schema(&latest.schema).map_err(|e| {
            ErrorKind::Registry(format!("schema id {} does not parse: {e}", latest.id))
        })?;
        let indexes = message_indexes(&file, event.full_name);
        if indexes.as_deref() != Some(event.message_indexes) {
            return Err(ErrorKind::Registry(format!(
                "the latest version of subject {subject} (schema id {}) places {} at message \
                 indexes {indexes:?}, this build at {:?}: rebuild from the registered contract",
                latest.id, event.full_name, event.message_indexes
            ))
            .into());
        }
        Ok(latest.id)
    }

    /// The event's file as a lookup or compatibility request gives it: its
    /// imports as references to their latest versions.
    fn schema_body(
        &self,
        contract: &Contract,
        event: &'static EventInfo,
    ) -> Result<serde_json::Value, Error> {
        let file = contract.file(event.file).ok_or_else(|| {
            ErrorKind::Config(format!("{} is not part of the contract", event.file))
        })?;
        let references: Vec<serde_json::Value> = file
            .imports
            .iter()
            .filter(|import| !is_builtin(import))
            .map(|import| json!({ "name": import, "subject": import, "version": -1 }))
            .collect();
        Ok(json!({
            "schemaType": "PROTOBUF",
            "schema": file.source,
            "references": references,
        }))
    }
}

/// Where `full_name` is among the messages of `file`, as message indexes.
fn message_indexes(file: &prost_types::FileDescriptorProto, full_name: &str) -> Option<Vec<i32>> {
    let local = match file.package() {
        "" => full_name,
        package => full_name.strip_prefix(package)?.strip_prefix('.')?,
    };
    let mut indexes = Vec::new();
    let mut messages = &file.message_type;
    for name in local.split('.') {
        let (index, message) = messages
            .iter()
            .enumerate()
            .find(|(_, m)| m.name() == name)?;
        indexes.push(i32::try_from(index).ok()?);
        messages = &message.nested_type;
    }
    Some(indexes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_indexes_follow_nesting_and_skip_enums() {
        let file = protox_parse::parse(
            "x.proto",
            "syntax = \"proto3\"; package shop;\nmessage A { message B {} message C {} }\nenum E { E0 = 0; }\nmessage F {}",
        )
        .unwrap();
        assert_eq!(message_indexes(&file, "shop.F"), Some(vec![1]));
        assert_eq!(message_indexes(&file, "shop.A.C"), Some(vec![0, 1]));
        assert_eq!(message_indexes(&file, "other.F"), None);
    }
}
