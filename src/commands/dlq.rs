//! `protobus dlq list|replay`: what went to a dead-letter topic, and sending
//! it back once the cause is fixed.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use protobus_runtime::dead_letter::headers as dlq;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::commands::flags::{KafkaArgs, RegistryClientArgs};
use crate::commands::progress;
use crate::commands::records::{Decoder, bytes_json};

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Print the dead-lettered records of a topic, decoded, one JSON object per line.
    List(DlqArgs),
    /// Send dead-lettered records back to their original topic.
    Replay(DlqReplayArgs),
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    /// The original topic (its dead-letter topic is TOPIC.dlq).
    #[arg(long, env = "PROTOBUS_DLQ_TOPIC")]
    pub topic: String,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,

    /// Only records at or after this offset of the dead-letter topic.
    #[arg(long, env = "PROTOBUS_DLQ_FROM_OFFSET")]
    pub from_offset: Option<i64>,

    /// Only records before this offset of the dead-letter topic.
    #[arg(long, env = "PROTOBUS_DLQ_TO_OFFSET")]
    pub to_offset: Option<i64>,

    /// Only records whose error contains this text.
    #[arg(long, env = "PROTOBUS_DLQ_ERROR")]
    pub error: Option<String>,

    /// At most this many records.
    #[arg(long, env = "PROTOBUS_DLQ_LIMIT")]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DlqReplayArgs {
    #[command(flatten)]
    pub select: DlqArgs,

    /// Show what would be replayed without writing anything.
    #[arg(long, env = "PROTOBUS_DLQ_DRY_RUN")]
    pub dry_run: bool,
}

pub async fn run(command: DlqCommand) -> Result<()> {
    match command {
        DlqCommand::List(args) => list(args).await,
        DlqCommand::Replay(args) => replay(args).await,
    }
}

fn header<'a>(message: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The dead-letter records `args` selects, in partition and offset order.
fn read(args: &DlqArgs) -> Result<Vec<OwnedMessage>> {
    let topic = format!("{}.dlq", args.topic);
    let metadata = crate::commands::kafka_client::metadata(&args.kafka, Some(&topic))?;
    let consumer: BaseConsumer = args
        .kafka
        .client_config()?
        .set("group.id", format!("protobus-dlq-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a consumer")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    let mut records = Vec::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
        let start = args.from_offset.unwrap_or(low).max(low);
        let end = args.to_offset.unwrap_or(high).min(high);
        if start >= end {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, partition, Offset::Offset(start))?;
        consumer.assign(&assignment)?;
        let mut next = start;
        while next < end {
            match consumer.poll(Duration::from_secs(10)) {
                Some(Ok(message)) => {
                    next = message.offset() + 1;
                    if message.offset() < end {
                        records.push(message.detach());
                    }
                }
                Some(Err(err)) => return Err(err).context("reading the dead-letter topic"),
                None => anyhow::bail!("{topic}/{partition} stopped answering at offset {next}"),
            }
        }
    }
    records.retain(|m| {
        args.error
            .as_ref()
            .is_none_or(|text| header(m, dlq::ERROR).is_some_and(|e| e.contains(text.as_str())))
    });
    if let Some(limit) = args.limit {
        records.truncate(limit);
    }
    Ok(records)
}

/// The record as JSON: where it failed and why, and the event decoded when it can be.
async fn describe(message: &OwnedMessage, decoder: &Decoder) -> Value {
    let decoded = decoder.decode(message.payload()).await;
    let text = |name| header(message, name).map_or(Value::Null, |v| json!(v));
    json!({
        "dlq": { "partition": message.partition(), "offset": message.offset() },
        "reason": text(dlq::REASON),
        "error": text(dlq::ERROR),
        "attempts": text(dlq::ATTEMPTS),
        "group": text(dlq::GROUP),
        "failed_at": text(dlq::FAILED_AT),
        "original": {
            "topic": text(dlq::ORIGINAL_TOPIC),
            "partition": text(dlq::ORIGINAL_PARTITION),
            "offset": text(dlq::ORIGINAL_OFFSET),
        },
        "key": message.key().map_or(Value::Null, bytes_json),
        "event_type": decoded.event_type,
        "event": decoded.event,
    })
}

async fn list(args: DlqArgs) -> Result<()> {
    let decoder = Decoder::new(args.registry.reachable_client().await?)?;
    for message in read(&args)? {
        println!("{}", describe(&message, &decoder).await);
    }
    Ok(())
}

async fn replay(args: DlqReplayArgs) -> Result<()> {
    let records = read(&args.select)?;
    let producer: FutureProducer = args
        .select
        .kafka
        .client_config()?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .context("creating a producer")?;
    let bar = progress::bar(Some(records.len() as u64), "records replayed");
    let mut replayed = 0;
    for message in &records {
        let original = header(message, dlq::ORIGINAL_TOPIC)
            .unwrap_or(&args.select.topic)
            .to_owned();
        if args.dry_run {
            let line = format!(
                "would replay {}.dlq/{}/{} to {original}",
                args.select.topic,
                message.partition(),
                message.offset()
            );
            progress::println(&bar, &line);
            bar.inc(1);
            continue;
        }
        let mut headers = OwnedHeaders::new();
        for h in message.headers().into_iter().flat_map(|h| h.iter()) {
            if !h.key.starts_with("protobus-dlq-") {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&original).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        let delivery = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .with_context(|| {
                format!(
                    "replaying {}.dlq offset {}",
                    args.select.topic,
                    message.offset()
                )
            })?;
        let line = format!(
            "replayed {}.dlq/{}/{} to {original}/{}/{}",
            args.select.topic,
            message.partition(),
            message.offset(),
            delivery.partition,
            delivery.offset
        );
        progress::println(&bar, &line);
        bar.inc(1);
        replayed += 1;
    }
    bar.finish_and_clear();
    eprintln!("{replayed} of {} records replayed", records.len());
    Ok(())
}
