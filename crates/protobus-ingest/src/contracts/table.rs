//! The runtime's [`Contract`] for a contract loaded while the service runs:
//! the events and topics its files declare, read and checked as the build
//! reads them, with each file's source for registration.

use std::collections::BTreeMap;

use prost_reflect::DescriptorPool;
use protobus_contract::{OPTIONS_PROTO_NAME, builtin, declared_events, event_topics};
use protobus_runtime::{Contract, EventInfo, ProtoFile, TopicInfo};

use crate::Error;

/// Builds the contract of `descriptors` (an encoded `FileDescriptorSet`)
/// and keeps it for the life of the process.
pub(super) fn build(
    descriptors: &[u8],
    sources: &BTreeMap<String, String>,
) -> Result<&'static Contract, Error> {
    let pool = DescriptorPool::decode(descriptors).map_err(Error::contract)?;
    let names: Vec<String> = pool
        .files()
        .map(|f| f.name().to_owned())
        .filter(|name| !provided(name))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let declared = declared_events(&pool, &names).map_err(Error::contract)?;
    if declared.is_empty() {
        return Err(Error::contract(
            "the contract declares no events (messages with `option (protobus.event)`)",
        ));
    }
    let topics = event_topics(&pool, &names, &declared)
        .map_err(Error::contract)?
        .into_iter()
        .map(|t| TopicInfo {
            name: leak(t.name),
            settings: t.settings,
            dead_letter: t.dead_letter,
        })
        .collect::<Vec<_>>();
    let events = declared
        .iter()
        .map(|e| EventInfo {
            full_name: leak(e.full_name()),
            topic: leak(&e.topic),
            file: leak(e.file()),
            message_indexes: Box::leak(e.message_indexes.clone().into_boxed_slice()),
            subject_strategy: e.strategy,
            key_field: leak(&e.key_field),
            compatibility: e.compatibility,
        })
        .collect::<Vec<_>>();
    let files = pool
        .files()
        .filter(|f| !f.name().starts_with("google/protobuf/"))
        .map(|f| {
            let name = f.name();
            let source = sources
                .get(name)
                .map(String::as_str)
                .or_else(|| builtin(name))
                .unwrap_or_default();
            let imports: Vec<&'static str> = f
                .file_descriptor_proto()
                .dependency
                .iter()
                .map(|d| leak(d))
                .collect();
            ProtoFile {
                name: leak(name),
                source: leak(source),
                imports: Box::leak(imports.into_boxed_slice()),
            }
        })
        .collect::<Vec<_>>();
    Ok(Box::leak(Box::new(Contract {
        files: Box::leak(files.into_boxed_slice()),
        events: Box::leak(events.into_boxed_slice()),
        topics: Box::leak(topics.into_boxed_slice()),
    })))
}

/// Files every contract may import that are not its own.
fn provided(name: &str) -> bool {
    name.starts_with("google/protobuf/") || name == OPTIONS_PROTO_NAME
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.into())
}
