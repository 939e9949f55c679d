//! `protobus catalog`: the event catalog of this build's contract (or the
//! one under `--proto DIR`): an AsyncAPI 3.0 document and a Markdown page
//! per topic, for people who would rather browse than read `.proto` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use protobus_catalog::Catalog;

/// The AsyncAPI document's file name.
pub const ASYNCAPI: &str = "asyncapi.json";
/// The index page's file name.
pub const INDEX: &str = "README.md";

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// The directory to write (created if missing; files of the same names are replaced).
    #[arg(long, env = "PROTOBUS_CATALOG_OUT", default_value = "catalog")]
    pub out: PathBuf,

    /// The catalog of the `.proto` files under DIR instead of this build's.
    #[arg(long, value_name = "DIR", env = "PROTOBUS_CONTRACT_PROTO_DIR")]
    pub proto: Option<PathBuf>,

    /// The catalog's title (AsyncAPI `info.title`).
    #[arg(
        long,
        env = "PROTOBUS_CATALOG_TITLE",
        default_value = "Protobus events"
    )]
    pub title: String,

    /// The contract's version, as its owners name it (AsyncAPI `info.version`).
    #[arg(
        long = "contract-version",
        env = "PROTOBUS_CONTRACT_VERSION",
        default_value = "1.0.0"
    )]
    pub contract_version: String,
}

pub async fn run(args: CatalogArgs) -> Result<()> {
    let (contract, descriptors) = crate::commands::contract::chosen(args.proto.as_deref()).await?;
    let sources: BTreeMap<String, String> = contract
        .files
        .iter()
        .map(|f| (f.name.to_owned(), f.source.to_owned()))
        .collect();
    let catalog = Catalog::new(&descriptors, &sources, &args.title, &args.contract_version)?;
    write(
        &args.out,
        ASYNCAPI,
        &(serde_json::to_string_pretty(&catalog.asyncapi())? + "\n"),
    )?;
    write(&args.out, INDEX, &catalog.markdown_index())?;
    for topic in &catalog.topics {
        write(
            &args.out,
            &Catalog::markdown_file(&topic.name),
            &Catalog::markdown(topic),
        )?;
    }
    println!(
        "{}: {ASYNCAPI}, {INDEX} and {} topic page(s)",
        args.out.display(),
        catalog.topics.len()
    );
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
