//! Kafka metadata for the command-line tools, with librdkafka's own reason
//! when it fails (a refused SASL login otherwise shows only as "broker
//! transport failure"), said in one line, within `--kafka-timeout`.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

use crate::commands::flags::KafkaArgs;

/// Keeps librdkafka's last error report.
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

impl ClientContext for LastError {
    fn error(&self, _error: KafkaError, reason: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
    }

    /// librdkafka's own lines (one per failed connection) are not printed:
    /// the reason comes once, in the error.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(?level, fac, message, "librdkafka");
    }
}

impl ConsumerContext for LastError {}

/// The cluster's metadata (of `topic` only, when given).
pub(crate) fn metadata(kafka: &KafkaArgs, topic: Option<&str>) -> Result<Metadata> {
    let client: BaseConsumer<LastError> = kafka
        .client_config()?
        .create_with_context(LastError::default())
        .map_err(|e| anyhow::anyhow!("creating a Kafka client: {e}"))?;
    let timeout: Duration = kafka.timeout.into();
    client.fetch_metadata(topic, timeout).map_err(|err| {
        // librdkafka says why through its error callback, which poll serves.
        let _ = client.poll(Duration::from_millis(200));
        let reason = client
            .context()
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| err.to_string());
        anyhow::anyhow!(
            "Kafka at {kafka} did not answer within {} ({reason}); check that it runs, \
             and its address and security settings (--kafka, --kafka-config)",
            kafka.timeout
        )
    })
}

/// Fails, in one line, unless Kafka answers within `--kafka-timeout`: before a
/// command starts work that would otherwise wait for librdkafka's own,
/// much longer, timeouts.
pub(crate) async fn reachable(kafka: &KafkaArgs) -> Result<()> {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || metadata(&kafka, None).map(drop)).await?
}
