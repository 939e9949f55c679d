//! `protobus contract export`: the contract this binary was built with (or
//! the one under `--proto DIR`), as other toolchains take it: the `.proto`
//! sources with `protobus/options.proto` and the ingest API (a directory for
//! `protoc -I` and a Buf module), the compiled `FileDescriptorSet`, and a
//! manifest of events and topics.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use protobus_contract::{
    DEFAULT_DEAD_LETTER_PARTITIONS, DEFAULT_PARTITIONS, TopicSettings, dead_letter_topic,
};
use protobus_ingest::ContractSource;
use protobus_runtime::Contract;
use serde_json::{Value, json};

use crate::contract::{CONTRACT, FILE_DESCRIPTOR_SET};

/// The descriptor set's file name in the export.
pub const DESCRIPTOR_SET: &str = "contract.binpb";
/// The manifest's file name in the export.
pub const MANIFEST: &str = "protobus.json";

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Write the contract for other toolchains: sources, descriptor set, manifest.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The directory to write (created if missing; files of the same names are replaced).
    #[arg(long, env = "PROTOBUS_CONTRACT_OUT", default_value = "contract")]
    pub out: PathBuf,

    /// Export the contract of the `.proto` files under DIR instead of this build's.
    #[arg(long, value_name = "DIR", env = "PROTOBUS_CONTRACT_PROTO_DIR")]
    pub proto: Option<PathBuf>,
}

pub async fn run(command: ContractCommand) -> Result<()> {
    match command {
        ContractCommand::Export(args) => {
            let (contract, descriptors) = chosen(args.proto.as_deref()).await?;
            export(contract, &descriptors, &args.out)
        }
    }
}

/// This build's contract and its encoded `FileDescriptorSet`, or those of
/// the `.proto` files under `proto`, compiled as the build compiles them.
pub(crate) async fn chosen(
    proto: Option<&Path>,
) -> Result<(&'static Contract, Cow<'static, [u8]>)> {
    match proto {
        None => Ok((&CONTRACT, Cow::Borrowed(FILE_DESCRIPTOR_SET))),
        Some(dir) => {
            let loaded = ContractSource::Sources(dir.to_path_buf())
                .load()
                .await
                .with_context(|| format!("compiling {}", dir.display()))?;
            Ok((
                loaded.contract()?,
                Cow::Owned(loaded.descriptors().to_vec()),
            ))
        }
    }
}

fn export(contract: &Contract, descriptors: &[u8], out: &Path) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    for file in contract.files {
        write(file.name, file.source.as_bytes())?;
    }
    // Clients publish through the ingest service with stubs generated from it.
    let api = protobus_ingest::api::PROTO_NAME;
    write(api, protobus_ingest::api::PROTO.as_bytes())?;
    // A Buf module rooted here; the well-known types are Buf's and protoc's own.
    write("buf.yaml", b"version: v2\n")?;
    write(DESCRIPTOR_SET, descriptors)?;
    let manifest = serde_json::to_string_pretty(&manifest(contract))? + "\n";
    write(MANIFEST, manifest.as_bytes())?;
    println!(
        "{}: {} files, {DESCRIPTOR_SET}, {MANIFEST} ({} events, {} topics)",
        out.display(),
        contract.files.len(),
        contract.events.len(),
        contract.topics.len()
    );
    Ok(())
}

/// Events and topics as other languages need them, in the contract's order.
pub fn manifest(contract: &Contract) -> Value {
    let settings = |s: &TopicSettings, default_partitions: u32| {
        json!({
            "partitions": s.partitions.unwrap_or(default_partitions),
            "replication_factor": s.replication_factor,
            "min_insync_replicas": s.min_insync_replicas,
            "retention_ms": s.retention_ms,
        })
    };
    json!({
        "events": contract.events.iter().map(|e| json!({
            "type": e.full_name,
            "file": e.file,
            "topic": e.topic,
            "key": e.key_field,
            "subject": e.subject(),
            "subject_name_strategy": e.subject_strategy.option_name(),
            "compatibility": e.compatibility,
            "message_indexes": e.message_indexes,
        })).collect::<Vec<_>>(),
        "topics": contract.topics.iter().map(|t| json!({
            "name": t.name,
            "settings": settings(&t.settings, DEFAULT_PARTITIONS),
            "dead_letter": {
                "name": dead_letter_topic(t.name),
                "settings": settings(&t.dead_letter, DEFAULT_DEAD_LETTER_PARTITIONS),
            },
        })).collect::<Vec<_>>(),
    })
}
