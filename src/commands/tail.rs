//! `protobus tail`: a topic's records decoded, as they arrive. It assigns
//! partitions itself rather than joining a group, so it never moves anyone's
//! committed offsets.

use std::io::Write as _;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::commands::flags::{KafkaArgs, RegistryClientArgs};
use crate::commands::records::{Decoder, record_json};

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The topic to read.
    pub topic: String,

    /// Start at each partition's first retained record (default: only new records).
    #[arg(long, conflicts_with = "offset", env = "PROTOBUS_TAIL_FROM_BEGINNING")]
    pub from_beginning: bool,

    /// Read only this partition.
    #[arg(long, env = "PROTOBUS_TAIL_PARTITION")]
    pub partition: Option<i32>,

    /// Start at this offset (of each partition read); negative counts back from the end.
    #[arg(long, allow_hyphen_values = true, env = "PROTOBUS_TAIL_OFFSET")]
    pub offset: Option<i64>,

    /// Stop after this many records (default: follow until Ctrl-C).
    #[arg(long, env = "PROTOBUS_TAIL_LIMIT")]
    pub limit: Option<usize>,

    /// `json`: one object per line; `pretty`: a heading and indented JSON per record.
    #[arg(long, value_enum, default_value_t = TailFormat::Json, env = "PROTOBUS_TAIL_FORMAT")]
    pub format: TailFormat,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailFormat {
    Json,
    Pretty,
}

pub async fn run(args: TailArgs) -> Result<()> {
    let decoder = Decoder::new(args.registry.reachable_client().await?)?;
    let partitions = partitions(&args)?;
    // librdkafka wants a group id even to assign; nothing is committed under it.
    let consumer: StreamConsumer = args
        .kafka
        .client_config()?
        .set(
            "group.id",
            format!("protobus-tail-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("creating a Kafka client")?;
    let start = match (args.from_beginning, args.offset) {
        (true, _) => Offset::Beginning,
        (false, Some(offset)) if offset >= 0 => Offset::Offset(offset),
        (false, Some(back)) => Offset::OffsetTail(back.unsigned_abs() as i64),
        (false, None) => Offset::End,
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(&args.topic, *partition, start)?;
    }
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;

    let mut shutdown = std::pin::pin!(crate::shutdown::signal());
    let mut printed = 0;
    while args.limit.is_none_or(|limit| printed < limit) {
        let message = tokio::select! {
            _ = &mut shutdown => break,
            message = consumer.recv() => message.context("reading the topic")?,
        };
        let record = record_json(&message, &decoder).await;
        if !print(&record, args.format)? {
            break;
        }
        printed += 1;
    }
    Ok(())
}

/// The partitions to read: all of the topic's, or the one asked for.
fn partitions(args: &TailArgs) -> Result<Vec<i32>> {
    let metadata = crate::commands::kafka_client::metadata(&args.kafka, Some(&args.topic))?;
    let topic = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty());
    let Some(topic) = topic else {
        bail!("topic `{}` does not exist at {}", args.topic, args.kafka);
    };
    let all: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    match args.partition {
        None => Ok(all),
        Some(p) if all.contains(&p) => Ok(vec![p]),
        Some(p) => bail!(
            "topic `{}` has no partition {p} (it has {})",
            args.topic,
            all.len()
        ),
    }
}

/// Prints one record; `false` once stdout is closed (`| head`).
fn print(record: &Value, format: TailFormat) -> Result<bool> {
    let text = match format {
        TailFormat::Json => record.to_string(),
        TailFormat::Pretty => {
            let at = |name: &str| record.get(name).cloned().unwrap_or(Value::Null);
            let text = |name: &str| text_of(&at(name));
            let headers: Vec<String> = at("headers")
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| format!("{}={}", text_of(&h["key"]), text_of(&h["value"])))
                .collect();
            let body = match (at("event"), at("error")) {
                (Value::Null, error) => format!("error: {}", text_of(&error)),
                (event, Value::Null) => serde_json::to_string_pretty(&event)?,
                (event, error) => format!(
                    "{}\nerror: {}",
                    serde_json::to_string_pretty(&event)?,
                    text_of(&error)
                ),
            };
            format!(
                "── {}/{} @{}  {}  key={}  {} (schema {})\n   headers: {}\n{body}",
                text("topic"),
                text("partition"),
                text("offset"),
                text("timestamp"),
                text("key"),
                text("event_type"),
                text("schema_id"),
                headers.join(", "),
            )
        }
    };
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err).context("writing to stdout"),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
