//! `protobus publish`: events given as proto3 JSON, checked as the ingest
//! service checks them, written by the typed producer's path (registry id,
//! frame, Protobus headers, idempotent producer). One event from an argument
//! or one per line from stdin; a bad line is reported with its number and
//! the rest still go; the exit status says whether all were written.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use protobus_ingest::types::{EventType, EventTypes};
use protobus_runtime::{EventProducer, PendingDelivery, SendOptions};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use crate::commands::flags::{DeliveryArgs, KafkaArgs, RegistrationArgs, RegistryClientArgs};
use crate::contract::{CONTRACT, FILE_DESCRIPTOR_SET};

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub delivery: DeliveryArgs,

    #[command(flatten)]
    pub registration: RegistrationArgs,

    /// The topic: the event type's contract topic, behind any prefix (`staging.shop.orders`).
    pub topic: String,

    /// The event type, fully qualified (`shop.orders.v1.OrderPlaced`) or by its message name.
    #[arg(long = "type", env = "PROTOBUS_PUBLISH_TYPE")]
    pub event_type: String,

    /// One event in proto3 JSON; without it, one event per line is read from stdin.
    pub json: Option<String>,

    /// Kafka key for every event (default: the event's key field).
    #[arg(long, env = "PROTOBUS_PUBLISH_KEY")]
    pub key: Option<String>,

    /// A header `name=value` for every event (repeatable).
    #[arg(long = "header", value_parser = parse_header, env = "PROTOBUS_PUBLISH_HEADERS", value_delimiter = ',')]
    pub headers: Vec<(String, String)>,

    /// Correlation id for every event.
    #[arg(long, env = "PROTOBUS_CORRELATION_ID")]
    pub correlation_id: Option<String>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub registry: RegistryClientArgs,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not `name=value`")),
    }
}

/// Events handed to the producer before the oldest is awaited.
const IN_FLIGHT: usize = 1000;

pub async fn run(args: PublishArgs) -> Result<()> {
    let types = EventTypes::new(&CONTRACT, FILE_DESCRIPTOR_SET)?;
    let event_type = resolve(&types, &args.event_type)?;
    let info = event_type.info;
    let prefix = args.topic.strip_suffix(info.topic).ok_or_else(|| {
        anyhow!(
            "{} is written to topic `{}` (behind any prefix), not `{}`",
            info.full_name,
            info.topic,
            args.topic
        )
    })?;
    if let Some((name, _)) = args
        .headers
        .iter()
        .find(|(name, _)| name.starts_with("protobus-"))
    {
        bail!("header `{name}` is reserved: Protobus writes the `protobus-*` headers itself");
    }
    crate::commands::kafka_client::reachable(&args.kafka).await?;
    let registry = Arc::new(
        args.registry
            .client()?
            .with_registration(args.registration.mode()),
    );
    let producer = args
        .delivery
        .producer(&args.kafka.client_config()?, registry)?
        .with_topic_prefix(prefix);

    let bulk = args.json.is_none();
    // On a terminal a bulk publish shows progress and a summary; piped,
    // it prints one JSON line per written event.
    let progress = if bulk {
        crate::commands::progress::bar(None, "events published")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let quiet = !progress.is_hidden();
    let mut publisher = Publisher {
        args: &args,
        event_type,
        producer,
        in_flight: VecDeque::new(),
        written: 0,
        failed: 0,
        progress: &progress,
        quiet,
    };
    match &args.json {
        Some(json) => publisher.submit(1, json).await,
        None => {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut number = 0;
            while let Some(line) = lines.next_line().await.context("reading stdin")? {
                number += 1;
                if !line.trim().is_empty() {
                    publisher.submit(number, &line).await;
                }
            }
        }
    }
    publisher.drain(0).await;
    progress.finish_and_clear();
    let (written, failed) = (publisher.written, publisher.failed);
    if bulk {
        eprintln!("published {written} of {} events", written + failed);
    }
    if failed > 0 {
        bail!("{failed} event(s) not published; see the lines above");
    }
    Ok(())
}

/// An event type by full name, or by message name when that is unambiguous.
fn resolve<'a>(types: &'a EventTypes, name: &str) -> Result<&'a EventType> {
    if let Ok(found) = types.get(name) {
        return Ok(found);
    }
    let matches: Vec<&str> = CONTRACT
        .events
        .iter()
        .map(|e| e.full_name)
        .filter(|full| full.rsplit('.').next() == Some(name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(types.get(one).map_err(|r| anyhow!(r.reason))?),
        [] => Err(anyhow!(types.get(name).err().map_or_else(
            || format!("unknown event type `{name}`"),
            |r| r.reason
        ))),
        many => bail!("`{name}` could be any of {}; name one", many.join(", ")),
    }
}

struct Publisher<'a> {
    args: &'a PublishArgs,
    event_type: &'a EventType,
    producer: EventProducer,
    in_flight: VecDeque<(usize, PendingDelivery)>,
    written: u64,
    failed: u64,
    progress: &'a indicatif::ProgressBar,
    quiet: bool,
}

impl Publisher<'_> {
    /// Checks line `number` and hands it to the producer; reports it if bad.
    async fn submit(&mut self, number: usize, json: &str) {
        match self.enqueue(json).await {
            Ok(pending) => self.in_flight.push_back((number, pending)),
            Err(reason) => self.fail(number, &reason),
        }
        self.drain(IN_FLIGHT).await;
    }

    async fn enqueue(&self, json: &str) -> Result<PendingDelivery, String> {
        let (payload, key) = self.event_type.check_json(json).map_err(|r| r.reason)?;
        if key.is_none() && self.args.key.is_none() {
            return Err(format!(
                "the key field `{}` of {} is unset or empty; set it or pass --key",
                self.event_type.info.key_field, self.event_type.info.full_name
            ));
        }
        let options = SendOptions {
            event_id: None,
            correlation_id: self.args.correlation_id.clone(),
            key: self.args.key.as_ref().map(|k| k.clone().into_bytes()),
            headers: self
                .args
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
                .collect(),
        };
        self.producer
            .enqueue_encoded(
                &CONTRACT,
                self.event_type.info,
                &payload,
                key.as_deref(),
                options,
            )
            .await
            .map_err(|e| format!("not written: {e}"))
    }

    /// Awaits the oldest events until at most `keep` are in flight.
    async fn drain(&mut self, keep: usize) {
        while self.in_flight.len() > keep {
            let Some((number, pending)) = self.in_flight.pop_front() else {
                break;
            };
            match pending.await {
                Ok(delivery) => {
                    self.written += 1;
                    self.progress.inc(1);
                    if !self.quiet {
                        println!(
                            "{}",
                            json!({
                                "line": number,
                                "topic": delivery.topic,
                                "partition": delivery.partition,
                                "offset": delivery.offset,
                                "event_id": delivery.event_id,
                            })
                        );
                    }
                }
                Err(err) => self.fail(number, &format!("{err}")),
            }
        }
    }

    fn fail(&mut self, number: usize, reason: &str) {
        self.failed += 1;
        self.progress
            .suspend(|| eprintln!("line {number}: {reason}"));
    }
}
