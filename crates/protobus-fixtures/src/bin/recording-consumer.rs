//! A consumer-group member in a process of its own, for fault tests that
//! SIGKILL it: it handles `evo.accounts` (v2) events and appends
//! `<event id> <unix millis>` to a file for each one, before its offset is
//! stored, so that a test can tell what it handled when it died.
//!
//! Usage: recording-consumer BOOTSTRAP REGISTRY_URL GROUP TOPIC_PREFIX FILE
//! (RECORDING_DELAY_MS slows each handler call, so a test can kill it
//! mid-stream; RECORDING_ORDER=partition|key|unordered and
//! RECORDING_MAX_IN_FLIGHT set its concurrency.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use protobus_fixtures::v2::evo::accounts::{AccountClosed, AccountOpened};
use protobus_fixtures::v2::{EvoAccountsDispatcher, EvoAccountsHandler};
use protobus_runtime::{
    ConsumerSettings, EventConsumer, EventContext, HandlerError, ProcessingOrder, SchemaRegistry,
};

struct Recording {
    file: Arc<Mutex<std::fs::File>>,
    delay: std::time::Duration,
}

impl Recording {
    async fn record(&self, context: &EventContext<'_>) -> Result<(), HandlerError> {
        tokio::time::sleep(self.delay).await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut file = self
            .file
            .lock()
            .map_err(|_| HandlerError::permanent("poisoned lock"))?;
        writeln!(file, "{} {now}", context.event_id().unwrap_or_default())
            .and_then(|()| file.flush())
            .map_err(|e| HandlerError::retryable("cannot record").with_source(e))
    }
}

impl EvoAccountsHandler for Recording {
    async fn account_opened(
        &self,
        _: AccountOpened,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(c).await
    }
    async fn account_closed(
        &self,
        _: AccountClosed,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(c).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, registry, group, prefix, file] = args.as_slice() else {
        return Err(
            "usage: recording-consumer BOOTSTRAP REGISTRY_URL GROUP TOPIC_PREFIX FILE".into(),
        );
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let mut settings = ConsumerSettings::new(bootstrap, group);
    settings.topic_prefix = prefix.clone();
    settings.kafka.set("session.timeout.ms", "6000");
    settings.order = match std::env::var("RECORDING_ORDER").as_deref() {
        Ok("key") => ProcessingOrder::Key,
        Ok("unordered") => ProcessingOrder::Unordered,
        Ok("partition") | Err(_) => ProcessingOrder::Partition,
        Ok(other) => {
            return Err(format!("RECORDING_ORDER={other}: partition, key or unordered").into());
        }
    };
    if let Some(n) = std::env::var("RECORDING_MAX_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.max_in_flight = n;
    }
    let registry = Arc::new(SchemaRegistry::new(registry)?);
    let consumer = EventConsumer::new(
        settings,
        registry,
        EvoAccountsDispatcher(Recording {
            file: Arc::new(Mutex::new(file)),
            delay: std::time::Duration::from_millis(
                std::env::var("RECORDING_DELAY_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
        }),
    )?;
    consumer.run(std::future::pending()).await?;
    Ok(())
}
