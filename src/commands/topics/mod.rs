//! `protobus topics`: the cluster's topics with the event types this build's
//! contract writes to them, and `protobus topics apply`, which provisions
//! them as the contract declares.

use anyhow::Result;
use clap::{Args, Subcommand};

mod apply;
mod list;

pub use apply::ApplyArgs;
pub use list::ListArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TopicsArgs {
    #[command(subcommand)]
    pub command: Option<TopicsCommand>,

    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create the contract's event and dead-letter topics and bring their
    /// settings to what the contract declares; never deletes.
    Apply(ApplyArgs),
}

pub async fn run(args: TopicsArgs) -> Result<()> {
    match args.command {
        Some(TopicsCommand::Apply(apply)) => apply::run(apply).await,
        None => list::run(args.list),
    }
}
