//! Kafka metadata for the command-line tools, with librdkafka's own reason
//! when it fails: a refused SASL login otherwise shows only as "broker
//! transport failure".

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

use crate::commands::flags::KafkaArgs;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps librdkafka's last error report.
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

impl ClientContext for LastError {
    fn error(&self, error: KafkaError, reason: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for LastError {}

/// The cluster's metadata (of `topic` only, when given).
pub(crate) fn metadata(kafka: &KafkaArgs, topic: Option<&str>) -> Result<Metadata> {
    let client: BaseConsumer<LastError> = kafka
        .client_config()?
        .create_with_context(LastError::default())
        .map_err(|e| anyhow::anyhow!("creating a Kafka client: {e}"))?;
    client.fetch_metadata(topic, TIMEOUT).map_err(|err| {
        // librdkafka says why through its error callback, which poll serves.
        let _ = client.poll(Duration::from_millis(200));
        let reason = client
            .context()
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let error = anyhow::Error::new(err);
        let error = match reason {
            Some(reason) => error.context(reason),
            None => error,
        };
        error.context(format!("reading topic metadata from Kafka at {kafka}"))
    })
}
