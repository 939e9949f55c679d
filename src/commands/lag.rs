//! `protobus lag`: how far a consumer group is behind, per partition.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use crate::commands::flags::{KafkaArgs, ReportFormat};
use crate::contract::CONTRACT;

#[derive(Debug, Args)]
pub struct LagArgs {
    /// The consumer group.
    #[arg(long, env = "PROTOBUS_GROUP")]
    pub group: String,

    /// A topic to report (repeatable); default: this build's contract topics
    /// that exist, behind --topic-prefix.
    #[arg(long = "topic", env = "PROTOBUS_LAG_TOPICS", value_delimiter = ',')]
    pub topics: Vec<String>,

    /// Prefix of the contract topics (as the producer's and consumer's topic prefix).
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// `human`: a table; `json`: one object per partition and line.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_LAG_FORMAT")]
    pub format: ReportFormat,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// One partition's position.
struct Row {
    topic: String,
    partition: i32,
    /// `None` when the group has committed nothing there.
    committed: Option<i64>,
    end: i64,
    /// End offset minus the committed one; without a commit, every retained record.
    lag: i64,
}

pub fn run(args: LagArgs) -> Result<()> {
    let metadata = crate::commands::kafka_client::metadata(&args.kafka, None)?;
    // A consumer with the group's id reads its commits without joining it.
    let consumer: BaseConsumer = args
        .kafka
        .client_config()?
        .set("group.id", &args.group)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a Kafka client")?;
    let existing: Vec<(&str, Vec<i32>)> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name(), t.partitions().iter().map(|p| p.id()).collect()))
        .collect();
    let wanted: Vec<String> = if args.topics.is_empty() {
        let mut topics: Vec<String> = CONTRACT
            .events
            .iter()
            .map(|e| format!("{}{}", args.topic_prefix, e.topic))
            .filter(|t| existing.iter().any(|(name, _)| name == t))
            .collect();
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            bail!(
                "none of this build's contract topics exists at {} (prefix `{}`); name topics with --topic",
                args.kafka,
                args.topic_prefix
            );
        }
        topics
    } else {
        args.topics.clone()
    };
    let mut list = TopicPartitionList::new();
    for topic in &wanted {
        let Some((_, partitions)) = existing.iter().find(|(name, _)| name == topic) else {
            bail!("topic {topic} does not exist at {}", args.kafka);
        };
        for &partition in partitions {
            list.add_partition(topic, partition);
        }
    }
    let committed = consumer
        .committed_offsets(list, TIMEOUT)
        .with_context(|| format!("reading the commits of group {}", args.group))?;
    let mut rows = Vec::new();
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, end) = consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .with_context(|| format!("reading the end offset of {topic}/{partition}"))?;
        let committed = element.offset().to_raw().filter(|&o| o >= 0);
        let lag = end - committed.unwrap_or(low).clamp(low, end);
        rows.push(Row {
            topic: topic.to_owned(),
            partition,
            committed,
            end,
            lag,
        });
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    match args.format {
        ReportFormat::Json => {
            for row in &rows {
                let line = json!({
                    "group": args.group,
                    "topic": row.topic,
                    "partition": row.partition,
                    "committed": row.committed,
                    "end": row.end,
                    "lag": row.lag,
                });
                println!("{line}");
            }
        }
        ReportFormat::Human => print_table(&args.group, &rows),
    }
    Ok(())
}

fn print_table(group: &str, rows: &[Row]) {
    let width = rows.iter().map(|r| r.topic.len()).max().unwrap_or(5).max(5);
    println!("group {group}");
    println!(
        "{:width$} {:>9} {:>12} {:>12} {:>10}",
        "topic", "partition", "committed", "end", "lag"
    );
    for row in rows {
        let committed = row.committed.map_or("-".to_owned(), |c| c.to_string());
        println!(
            "{:width$} {:>9} {:>12} {:>12} {:>10}",
            row.topic, row.partition, committed, row.end, row.lag
        );
    }
    let total: i64 = rows.iter().map(|r| r.lag).sum();
    println!(
        "{:width$} {:>9} {:>12} {:>12} {total:>10}",
        "total", "", "", ""
    );
}
