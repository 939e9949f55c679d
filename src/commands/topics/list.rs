//! `protobus topics`: the cluster's topics with the event types this build's
//! contract writes to them.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::commands::flags::{KafkaArgs, ReportFormat};
use crate::contract::CONTRACT;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Prefix of the contract topics.
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Also list topics outside this build's contract (internal `_`/`__` topics never).
    #[arg(long, env = "PROTOBUS_TOPICS_ALL")]
    pub all: bool,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// `human`: a table; `json`: one object per topic and line.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_TOPICS_FORMAT")]
    pub format: ReportFormat,
}

/// One topic: how many partitions it has (`None`: not created yet) and
/// the contract's event types on it (empty: outside the contract).
struct Row {
    topic: String,
    partitions: Option<usize>,
    event_types: Vec<&'static str>,
}

pub(super) fn run(args: ListArgs) -> Result<()> {
    let metadata = crate::commands::kafka_client::metadata(&args.kafka, None)?;
    let existing: BTreeMap<&str, usize> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name(), t.partitions().len()))
        .collect();

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for event in CONTRACT.events {
        let topic = format!("{}{}", args.topic_prefix, event.topic);
        rows.entry(topic.clone())
            .or_insert_with(|| Row {
                partitions: existing.get(topic.as_str()).copied(),
                topic,
                event_types: Vec::new(),
            })
            .event_types
            .push(event.full_name);
    }
    if args.all {
        for (topic, partitions) in &existing {
            if !topic.starts_with('_') && !rows.contains_key(*topic) {
                rows.insert(
                    (*topic).to_owned(),
                    Row {
                        topic: (*topic).to_owned(),
                        partitions: Some(*partitions),
                        event_types: Vec::new(),
                    },
                );
            }
        }
    }

    match args.format {
        ReportFormat::Json => {
            for row in rows.values() {
                println!(
                    "{}",
                    json!({
                        "topic": row.topic,
                        "exists": row.partitions.is_some(),
                        "partitions": row.partitions,
                        "event_types": row.event_types,
                    })
                );
            }
        }
        ReportFormat::Human => {
            let width = rows.keys().map(String::len).max().unwrap_or(0).max(5);
            println!("{:width$}  {:>11}  EVENT TYPES", "TOPIC", "PARTITIONS");
            for row in rows.values() {
                let partitions = row
                    .partitions
                    .map_or_else(|| "not created".to_owned(), |n| n.to_string());
                let types = if row.event_types.is_empty() {
                    "(not in this build's contract)".to_owned()
                } else {
                    row.event_types.join(", ")
                };
                println!("{:width$}  {partitions:>11}  {types}", row.topic);
            }
        }
    }
    Ok(())
}
