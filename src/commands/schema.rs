//! `protobus schema check|register|diff`: the contract against a registry,
//! into a registry, and against another version of itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use protobus_compat::{
    ConfluentFinding, Contract, Dependency, FileReport, Report, Schema, Subject, check, compare,
    wire_findings,
};
use protobus_runtime::RegistryUrl;
use serde_json::{Value, json};

use crate::commands::flags::{RegistryClientArgs, ReportFormat};
use crate::contract::CONTRACT;

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Compare the contract in a directory with what a registry has; non-zero exit when it breaks readers.
    Check(SchemaCheckArgs),
    /// Register the contract this binary was built with (idempotent).
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

/// Prints the report; exits with 1 when it breaks readers.
fn finish(report: &Report, format: ReportFormat, extra: Value) -> Result<()> {
    match format {
        ReportFormat::Human => print!("{}", report.render()),
        ReportFormat::Json => {
            let mut value = serde_json::to_value(report)?;
            value["breaking"] = json!(report.is_breaking());
            if let (Some(object), Value::Object(more)) = (value.as_object_mut(), extra) {
                object.extend(more);
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    if report.is_breaking() {
        std::process::exit(1);
    }
    Ok(())
}

fn diff(args: SchemaDiffArgs) -> Result<()> {
    let report = compare(&load(&args.old)?, &load(&args.new)?);
    finish(&report, args.format, json!({}))
}

async fn register(args: SchemaRegisterArgs) -> Result<()> {
    let registry = Arc::new(args.registry.client()?);
    for event in CONTRACT.events {
        let id = registry
            .id_for(&CONTRACT, event)
            .await
            .with_context(|| format!("registering {}", event.full_name))?;
        println!(
            "{} -> schema id {id} ({})",
            event.subject(),
            event.full_name
        );
    }
    Ok(())
}

/// A registry client for what `check` reads.
struct Registry {
    url: RegistryUrl,
    http: reqwest::Client,
}

impl Registry {
    async fn get(&self, path: &str) -> Result<Option<Value>> {
        let mut request = self.http.get(format!("{}{path}", self.url.url));
        if let Some((user, password)) = &self.url.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|err| {
            let mut cause: &dyn std::error::Error = &err;
            while let Some(next) = cause.source() {
                cause = next;
            }
            anyhow::anyhow!(protobus_runtime::unreachable(&self.url.url, cause))
        })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .context("reading the registry's answer")?;
        if !status.is_success() {
            bail!("the registry answered {status} to {path}: {body}");
        }
        Ok(Some(body))
    }

    /// A registered version with everything it references, compiled.
    async fn version(&self, subject: &str, version: i64, file: &str) -> Result<Schema> {
        let found = self
            .get(&format!("/subjects/{}/versions/{version}", encode(subject)))
            .await?
            .with_context(|| format!("{subject} version {version} disappeared"))?;
        let mut dependencies = Vec::new();
        self.references(&found["references"], &mut dependencies, 0)
            .await?;
        let source = found["schema"].as_str().unwrap_or_default();
        Schema::compile_named(file, source, &dependencies)
            .with_context(|| format!("{subject} version {version} does not compile"))
    }

    async fn references(
        &self,
        references: &Value,
        out: &mut Vec<Dependency>,
        depth: usize,
    ) -> Result<()> {
        if depth > 32 {
            bail!("references nest too deeply");
        }
        for reference in references.as_array().into_iter().flatten() {
            let (name, subject, version) = (
                reference["name"].as_str().unwrap_or_default(),
                reference["subject"].as_str().unwrap_or_default(),
                reference["version"].as_i64().unwrap_or(-1),
            );
            // Walked already, with all it imports: shared imports (diamonds)
            // are fetched once, not once per path to them.
            if out.iter().any(|d| d.name == name) {
                continue;
            }
            let found = self
                .get(&format!("/subjects/{}/versions/{version}", encode(subject)))
                .await?
                .with_context(|| {
                    format!("reference {name} ({subject} version {version}) is missing")
                })?;
            Box::pin(self.references(&found["references"], out, depth + 1)).await?;
            out.push(Dependency {
                name: name.to_owned(),
                source: found["schema"].as_str().unwrap_or_default().into(),
                reference: Some((subject.to_owned(), version as i32)),
            });
        }
        Ok(())
    }
}

fn encode(subject: &str) -> String {
    subject.replace('%', "%25").replace('/', "%2F")
}

async fn check_registry(args: SchemaCheckArgs) -> Result<()> {
    let local = load(&args.proto)?;
    let registry = Registry {
        url: RegistryUrl::parse(&args.registry.url)?,
        http: args.registry.tls().http_client()?,
    };
    let mut report = Report::default();
    let mut unregistered = Vec::new();
    let mut by_file: BTreeMap<&str, Vec<&Subject>> = BTreeMap::new();
    for subject in local.subjects() {
        by_file.entry(&subject.file).or_default().push(subject);
    }
    for (file, subjects) in by_file {
        let new = local.file(file).context("a compiled file")?;
        let mut confluent = std::collections::BTreeSet::new();
        let mut wire = Vec::new();
        for subject in &subjects {
            let Some(versions) = registry
                .get(&format!("/subjects/{}/versions", encode(&subject.subject)))
                .await?
            else {
                unregistered.push(subject.subject.clone());
                continue;
            };
            let mut numbers: Vec<i64> = versions
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            numbers.sort_unstable();
            if !subject.level.is_transitive() {
                numbers = numbers.split_off(numbers.len().saturating_sub(1));
            }
            let mut previous = Vec::new();
            for number in numbers {
                previous.push(registry.version(&subject.subject, number, file).await?);
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
            }
        }
        if !confluent.is_empty() || !wire.is_empty() {
            report.files.push(FileReport {
                file: file.to_owned(),
                subjects: subjects.into_iter().cloned().collect(),
                confluent: confluent
                    .into_iter()
                    .map(|d| ConfluentFinding::locate(d, new))
                    .collect(),
                wire,
            });
        }
    }
    if args.format == ReportFormat::Human && !unregistered.is_empty() {
        println!(
            "not registered yet (nothing to break): {}",
            unregistered.join(", ")
        );
    }
    finish(
        &report,
        args.format,
        json!({ "unregistered": unregistered }),
    )
}
