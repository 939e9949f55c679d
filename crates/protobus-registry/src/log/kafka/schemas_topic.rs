//! The schemas topic itself: created as the log needs it, and refused when
//! an existing one would lose or reorder registrations.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use super::{TIMEOUT, store_error};
use crate::Error;

/// Creates the schemas topic if it does not exist yet: one partition (the
/// log's order is the only order of registrations), compacted (the latest
/// record per key is the state), replicated as far as the cluster allows.
/// An existing topic that would lose or reorder schemas is refused, as
/// Confluent's registry refuses it.
pub(super) async fn ensure_topic(config: &ClientConfig, topic: &str) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|e| store_error("creating", e))?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| store_error("creating", e))?;
    if let Some(existing) = metadata.topics().iter().find(|t| t.name() == topic)
        && existing.error().is_none()
    {
        return check_existing(&admin, topic, existing.partitions().len()).await;
    }
    let replicas = metadata.brokers().len().clamp(1, 3) as i32;
    let mut new =
        NewTopic::new(topic, 1, TopicReplication::Fixed(replicas)).set("cleanup.policy", "compact");
    if replicas == 3 {
        new = new.set("min.insync.replicas", "2");
    }
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(|e| store_error("creating", e))?;
    for result in results {
        match result {
            Ok(_) => info!(topic, replicas, "created the schemas topic"),
            // Another instance created it a moment ago.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(store_error("creating", code)),
        }
    }
    Ok(())
}

/// Refuses a schemas topic with more than one partition or without
/// `cleanup.policy=compact`.
async fn check_existing(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: usize,
) -> Result<(), Error> {
    if partitions != 1 {
        return Err(Error::store(format!(
            "The schemas topic {topic} has {partitions} partitions; it needs exactly one, \
             or registrations are read out of order (ids handed out twice, versions lost). \
             Point --topic at a new topic, or recreate {topic} with one partition and \
             cleanup.policy=compact and copy its records over"
        )));
    }
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(|e| store_error("describing", e))?;
    let policy = described
        .into_iter()
        .next()
        .and_then(Result::ok)
        .and_then(|resource| {
            resource
                .get("cleanup.policy")
                .and_then(|entry| entry.value.clone())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    if policy != "compact" {
        return Err(Error::store(format!(
            "The schemas topic {topic} has cleanup.policy={policy}; it needs \
             cleanup.policy=compact, or Kafka deletes registrations once their retention \
             ends and their ids are lost. Fix it with: kafka-configs.sh --alter \
             --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact"
        )));
    }
    Ok(())
}
