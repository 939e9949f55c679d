//! `protobus schema check|register|diff`: the contract against a registry,
//! into a registry, and against another version of itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use protobus_compat::{
    Accepted, ConfluentFinding, Contract, Dependency, FileReport, Report, Schema, Subject, check,
    compare, wire_findings,
};
use protobus_contract::OPTIONS_PROTO_NAME;
use protobus_runtime::SchemaRegistry;
use serde_json::{Value, json};

use crate::commands::flags::{RegistryClientArgs, ReportFormat};
use crate::contract::CONTRACT;

/// Most files a registered schema may import, transitively.
const MAX_REFERENCES: usize = 10_000;

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Compare the contract in a directory with what a registry has; non-zero exit when it breaks readers.
    Check(SchemaCheckArgs),
    /// Register the contract this binary was built with, with each subject's
    /// declared compatibility level (idempotent).
    Register(SchemaRegisterArgs),
    /// Compare two contract directories: what in NEW breaks readers of OLD.
    Diff(SchemaDiffArgs),
}

#[derive(Debug, Args)]
pub struct SchemaCheckArgs {
    /// The contract directory.
    #[arg(long, env = "PROTOBUS_PROTO_DIR", default_value = "proto")]
    pub proto: std::path::PathBuf,

    #[command(flatten)]
    pub registry: RegistryClientArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_SCHEMA_FORMAT")]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct SchemaRegisterArgs {
    #[command(flatten)]
    pub registry: RegistryClientArgs,
}

#[derive(Debug, Args)]
pub struct SchemaDiffArgs {
    /// The old contract directory (what readers were built with).
    pub old: std::path::PathBuf,
    /// The new contract directory.
    pub new: std::path::PathBuf,

    /// Contract-level changes accepted deliberately: a file of
    /// `RULE full.event.Name` lines (e.g. `KEY_CHANGED shop.orders.v1.OrderPaid`).
    #[arg(long, env = "PROTOBUS_SCHEMA_ACCEPT")]
    pub accept: Option<std::path::PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_SCHEMA_FORMAT")]
    pub format: ReportFormat,
}

pub async fn run(command: SchemaCommand) -> Result<()> {
    match command {
        SchemaCommand::Diff(args) => diff(args),
        SchemaCommand::Register(args) => register(args).await,
        SchemaCommand::Check(args) => check_registry(args).await,
    }
}

fn load(dir: &Path) -> Result<Contract> {
    let contract = Contract::load(dir).with_context(|| format!("reading {}", dir.display()))?;
    let errors = contract.errors();
    if !errors.is_empty() {
        bail!("{} does not compile:\n{}", dir.display(), errors.join("\n"));
    }
    Ok(contract)
}

/// Prints the report; exits with 1 when it breaks readers or `failing`.
fn finish(report: &Report, format: ReportFormat, extra: Value, failing: bool) -> Result<()> {
    let breaking = report.is_breaking() || failing;
    match format {
        ReportFormat::Human => print!("{}", report.render()),
        ReportFormat::Json => {
            let mut value = serde_json::to_value(report)?;
            value["breaking"] = json!(breaking);
            if let (Some(object), Value::Object(more)) = (value.as_object_mut(), extra) {
                object.extend(more);
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    if breaking {
        std::process::exit(1);
    }
    Ok(())
}

fn diff(args: SchemaDiffArgs) -> Result<()> {
    let accepted = match &args.accept {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Accepted::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Accepted::default(),
    };
    let report = compare(&load(&args.old)?, &load(&args.new)?, &accepted);
    finish(&report, args.format, json!({}), false)
}

async fn register(args: SchemaRegisterArgs) -> Result<()> {
    let registry = Arc::new(args.registry.client()?);
    for event in CONTRACT.events {
        let subject = event.subject();
        // The level first: the registration is then judged by it.
        registry
            .set_level(&subject, event.compatibility)
            .await
            .with_context(|| format!("setting the level of {subject}"))?;
        let id = registry
            .id_for(&CONTRACT, event)
            .await
            .with_context(|| format!("registering {}", event.full_name))?;
        println!(
            "{subject} -> schema id {id} ({}, {})",
            event.full_name, event.compatibility
        );
    }
    Ok(())
}

/// A registered version with everything it references, compiled.
async fn registered(
    registry: &SchemaRegistry,
    subject: &str,
    version: i32,
    file: &str,
) -> Result<Schema> {
    let found = registry
        .version_with_imports(subject, version, MAX_REFERENCES)
        .await?
        .with_context(|| format!("{subject} version {version} disappeared"))?;
    let dependencies: Vec<Dependency> = found
        .imports
        .into_iter()
        .map(|import| Dependency {
            name: import.reference.name,
            source: import.schema.into(),
            reference: Some((import.reference.subject, import.reference.version)),
        })
        .collect();
    Schema::compile_named(file, &found.schema, &dependencies)
        .with_context(|| format!("{subject} version {version} does not compile"))
}

async fn check_registry(args: SchemaCheckArgs) -> Result<()> {
    let local = load(&args.proto)?;
    let registry = args.registry.client()?;
    let mut report = Report::default();
    let mut unregistered = Vec::new();
    // Subjects whose registry level is not the contract's.
    let mut levels = Vec::new();
    let mut by_file: BTreeMap<&str, Vec<&Subject>> = BTreeMap::new();
    for subject in local.subjects() {
        by_file.entry(&subject.file).or_default().push(subject);
    }
    // Imported files the registered versions hold: (registered, local, the
    // events reaching them), each compared once with the wire rules.
    let mut imports: BTreeMap<String, (Schema, Vec<Subject>)> = BTreeMap::new();
    for (file, subjects) in by_file {
        let new = local.file(file).context("a compiled file")?;
        let mut confluent = std::collections::BTreeSet::new();
        let mut wire = Vec::new();
        for subject in &subjects {
            let Some(mut numbers) = registry.versions(&subject.subject).await? else {
                unregistered.push(subject.subject.clone());
                continue;
            };
            let level = registry.level(&subject.subject).await?;
            if level != subject.level.name() {
                levels.push(json!({
                    "subject": subject.subject,
                    "registry": level,
                    "contract": subject.level.name(),
                }));
            }
            if !subject.level.is_transitive() {
                numbers = numbers.split_off(numbers.len().saturating_sub(1));
            }
            let mut previous = Vec::new();
            for number in numbers {
                previous.push(registered(&registry, &subject.subject, number, file).await?);
            }
            let previous_refs: Vec<&Schema> = previous.iter().collect();
            confluent.extend(
                check(subject.level, new, &previous_refs)
                    .incompatibilities()
                    .into_iter()
                    .cloned(),
            );
            if let Some(latest) = previous
                .last()
                .filter(|_| subject.level != protobus_compat::CompatibilityLevel::None)
            {
                wire = wire_findings(latest, new);
                for imported in latest.files() {
                    let name = imported.name();
                    let ours = name != file && local.file(name).is_some();
                    if ours && !name.starts_with("google/protobuf/") && name != OPTIONS_PROTO_NAME {
                        let (_, reaching) = imports.entry(name.to_owned()).or_insert_with(|| {
                            (latest.import(name).expect("a compiled import"), Vec::new())
                        });
                        reaching.push((*subject).clone());
                    }
                }
            }
        }
        if !confluent.is_empty() || !wire.is_empty() {
            report.files.push(FileReport {
                file: file.to_owned(),
                moved_from: None,
                moved_event: None,
                subjects: subjects.into_iter().cloned().collect(),
                confluent: confluent
                    .into_iter()
                    .map(|d| ConfluentFinding::locate_in(d, new, &local))
                    .collect(),
                wire,
            });
        }
    }
    for (name, (registered, subjects)) in imports {
        let current = local.file(&name).context("a compiled import")?;
        let wire = wire_findings(&registered, current);
        if !wire.is_empty() {
            report.files.push(FileReport {
                file: name,
                moved_from: None,
                moved_event: None,
                subjects,
                confluent: Vec::new(),
                wire,
            });
        }
    }
    if args.format == ReportFormat::Human {
        for drift in &levels {
            println!(
                "{}: the registry checks it as {}, the contract declares {}\n  fix: `protobus schema register` sets the contract's level\n",
                drift["subject"].as_str().unwrap_or_default(),
                drift["registry"].as_str().unwrap_or_default(),
                drift["contract"].as_str().unwrap_or_default()
            );
        }
        if !unregistered.is_empty() {
            println!(
                "not registered yet (nothing to break): {}",
                unregistered.join(", ")
            );
        }
    }
    let drifted = !levels.is_empty();
    finish(
        &report,
        args.format,
        json!({ "unregistered": unregistered, "levels": levels }),
        drifted,
    )
}
