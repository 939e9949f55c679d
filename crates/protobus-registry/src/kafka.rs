//! Registry state kept in a compacted Kafka topic.
//!
//! Every instance reads the topic from the start and keeps reading it, so
//! instances share one state. Writes go through one transactional id per
//! topic: an instance that starts writing fences the previous writer, reads
//! everything committed before it took over, and only then decides (new ids,
//! new versions). A fenced writer's commit fails, so it takes over again and
//! decides anew; two instances can never hand out the same id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::Error;
use crate::records::Record;
use crate::state::{State, Stored};
use crate::workers::{STACK_BYTES, catch_panic};

/// Schemas this instance compiled for records it is writing, by id, so the
/// reader applies them without compiling them again.
type Precompiled = Arc<Mutex<HashMap<i32, Arc<Stored>>>>;

const TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_ATTEMPTS: u32 = 6;

pub(crate) struct KafkaStore {
    /// The caller's client settings (bootstrap servers, security), for every client.
    config: ClientConfig,
    topic: String,
    producer: Mutex<Option<Arc<FutureProducer>>>,
    watermarks: Arc<BaseConsumer>,
    /// The next offset the reader will apply: everything before it is in the state.
    applied: watch::Receiver<i64>,
    precompiled: Precompiled,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStore")
            .field("bootstrap", &self.config.get("bootstrap.servers"))
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn store_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::store(format!("Error while {what} the schemas topic: {err}"))
}

impl KafkaStore {
    pub(crate) async fn start(
        config: &ClientConfig,
        topic: &str,
        state: Arc<RwLock<State>>,
    ) -> Result<Self, Error> {
        ensure_topic(config, topic).await?;
        let reader: BaseConsumer = config
            .clone()
            .set(
                "group.id",
                format!("protobus-registry-reader-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| store_error("reading", e))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| store_error("reading", e))?;
        reader
            .assign(&assignment)
            .map_err(|e| store_error("reading", e))?;
        let watermarks: BaseConsumer = config.create().map_err(|e| store_error("reading", e))?;

        let (applied_tx, applied) = watch::channel(0);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reader = stop.clone();
        let precompiled = Precompiled::default();
        let reader_state = Reader {
            topic: topic.to_owned(),
            state,
            precompiled: precompiled.clone(),
        };
        // The reader compiles schemas other instances registered: a large stack.
        std::thread::Builder::new()
            .name("registry-reader".into())
            .stack_size(STACK_BYTES)
            .spawn(move || read_forever(reader, &reader_state, applied_tx, stop_reader))
            .map_err(|e| store_error("reading", e))?;

        let store = KafkaStore {
            config: config.clone(),
            topic: topic.to_owned(),
            producer: Mutex::new(None),
            watermarks: Arc::new(watermarks),
            applied,
            precompiled,
            stop,
        };
        store.catch_up().await?;
        info!(
            topic,
            offset = *store.applied.borrow(),
            "schema registry state loaded from Kafka"
        );
        Ok(store)
    }

    /// Waits until everything committed to the topic so far is applied.
    async fn catch_up(&self) -> Result<(), Error> {
        let consumer = self.watermarks.clone();
        let topic = self.topic.clone();
        let (_, high) =
            tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&topic, 0, TIMEOUT))
                .await
                .map_err(|e| store_error("reading", e))?
                .map_err(|e| store_error("reading", e))?;
        self.wait_applied(high).await
    }

    async fn wait_applied(&self, offset: i64) -> Result<(), Error> {
        let mut applied = self.applied.clone();
        tokio::time::timeout(TIMEOUT, applied.wait_for(|&next| next >= offset))
            .await
            .map_err(|_| {
                store_error(
                    "reading",
                    format!("not caught up to offset {offset} within {TIMEOUT:?}"),
                )
            })?
            .map_err(|_| store_error("reading", "the reader stopped"))?;
        Ok(())
    }

    /// The transactional producer, taking over as the writer if there is none.
    async fn writer(&self) -> Result<Arc<FutureProducer>, Error> {
        if let Some(producer) = self
            .producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(producer);
        }
        let producer: FutureProducer = self
            .config
            .clone()
            .set(
                "transactional.id",
                format!("protobus-registry-{}", self.topic),
            )
            .set("transaction.timeout.ms", "15000")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .map_err(|e| store_error("writing", e))?;
        let producer = Arc::new(producer);
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(TIMEOUT))
            .await
            .map_err(|e| store_error("writing", e))?
            .map_err(|e| store_error("writing", e))?;
        debug!(topic = %self.topic, "took over as the registry writer");
        *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = Some(producer.clone());
        Ok(producer)
    }

    pub(crate) async fn write<T>(
        &self,
        state: &RwLock<State>,
        compiled: Option<Arc<Stored>>,
        decide: impl Fn(&State) -> Result<(Vec<Record>, T), Error>,
    ) -> Result<T, Error> {
        let mut last_error = None;
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            let producer = self.writer().await?;
            self.catch_up().await?;
            let (records, out) = decide(&state.read().unwrap_or_else(|e| e.into_inner()))?;
            if records.is_empty() {
                return Ok(out);
            }
            let new_ids: Vec<i32> = records.iter().filter_map(Record::schema_id).collect();
            if let Some(compiled) = &compiled {
                let mut precompiled = self.precompiled.lock().unwrap_or_else(|e| e.into_inner());
                for id in &new_ids {
                    precompiled.insert(*id, compiled.clone());
                }
            }
            let published = self.publish(&producer, &records).await;
            {
                // What the reader did not take (nothing was committed) goes.
                let mut precompiled = self.precompiled.lock().unwrap_or_else(|e| e.into_inner());
                for id in &new_ids {
                    precompiled.remove(id);
                }
            }
            match published {
                Ok(next) => {
                    self.wait_applied(next).await?;
                    return Ok(out);
                }
                Err(err) => {
                    // Nothing of the transaction is visible. Most often another
                    // instance took over (fenced, or our queue purged): take over
                    // again and decide anew. A broker that is gone fails every attempt.
                    debug!(error = %err, attempt, "registry write did not commit");
                    *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    last_error = Some(err);
                }
            }
        }
        Err(store_error(
            "writing",
            format!(
                "no commit after {WRITE_ATTEMPTS} attempts; last error: {}",
                last_error.map(|e| e.to_string()).unwrap_or_default()
            ),
        ))
    }

    /// Writes `records` in one transaction; returns the offset after the last.
    async fn publish(
        &self,
        producer: &Arc<FutureProducer>,
        records: &[Record],
    ) -> Result<i64, KafkaError> {
        let begin = producer.clone();
        blocking(move || begin.begin_transaction()).await?;
        let mut next = 0;
        for record in records {
            let (key, value) = record.encode();
            let mut out = FutureRecord::to(&self.topic).key(&key).partition(0);
            if let Some(value) = &value {
                out = out.payload(value);
            }
            match producer.send(out, TIMEOUT).await {
                Ok(delivery) => next = delivery.offset + 1,
                Err((err, _)) => {
                    self.abort(producer).await;
                    return Err(err);
                }
            }
        }
        let commit = producer.clone();
        if let Err(err) = blocking(move || commit.commit_transaction(TIMEOUT)).await {
            self.abort(producer).await;
            return Err(err);
        }
        Ok(next)
    }

    async fn abort(&self, producer: &Arc<FutureProducer>) {
        let abort = producer.clone();
        let _ = blocking(move || abort.abort_transaction(TIMEOUT)).await;
    }
}

/// Runs a blocking librdkafka transaction call off the async workers.
async fn blocking(
    call: impl FnOnce() -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

/// Creates the compacted topic if it does not exist yet.
async fn ensure_topic(config: &ClientConfig, topic: &str) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|e| store_error("creating", e))?;
    let brokers = {
        let metadata = admin
            .inner()
            .fetch_metadata(None, TIMEOUT)
            .map_err(|e| store_error("creating", e))?;
        metadata.brokers().len().clamp(1, 3) as i32
    };
    let new =
        NewTopic::new(topic, 1, TopicReplication::Fixed(brokers)).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(|e| store_error("creating", e))?;
    for result in results {
        match result {
            Ok(_) => info!(topic, "created the schemas topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(store_error("creating", code)),
        }
    }
    Ok(())
}

/// What the reader thread applies records to.
struct Reader {
    topic: String,
    state: Arc<RwLock<State>>,
    precompiled: Precompiled,
}

impl Reader {
    /// Applies `record`, compiling a schema it brings outside the state's
    /// lock (unless this instance compiled it already), so reads never wait
    /// for a compile.
    fn apply(&self, record: Record) -> Result<(), Error> {
        // This instance's compile for the id serves only the record it was
        // made for: a write of this instance that did not commit may have
        // picked the id that another instance's committed record holds.
        let mut compiled = match &record {
            Record::Schema {
                value: Some(value), ..
            } => self
                .precompiled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&value.id)
                .filter(|stored| {
                    *stored.schema == *value.schema && stored.references == value.references
                }),
            _ => None,
        };
        if compiled.is_none() {
            let todo = self
                .state
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .to_compile(&record, usize::MAX)?;
            if let Some((schema, resolved)) = todo {
                // What another instance accepted is kept, whatever this
                // instance's limits: every instance holds the same state.
                let stored = catch_panic("compiling a stored schema", || {
                    Stored::compile(schema, resolved, usize::MAX)
                })?;
                compiled = Some(Arc::new(stored));
            }
        }
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(record, compiled)
    }
}

fn read_forever(
    consumer: BaseConsumer,
    reader: &Reader,
    applied: watch::Sender<i64>,
    stop: Arc<AtomicBool>,
) {
    let topic = reader.topic.as_str();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let key = message.key().unwrap_or_default();
                match Record::decode(key, message.payload()) {
                    Ok(Some(record)) => {
                        if let Err(err) = reader.apply(record) {
                            warn!(topic, offset = message.offset(), error = %err, "skipping a record that does not apply");
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        warn!(topic, offset = message.offset(), error = %err, "skipping an unreadable record")
                    }
                }
            }
            Some(Err(err)) => warn!(topic, error = %err, "reading the schemas topic"),
            None => {}
        }
        // The position passes transaction markers too, which no message shows.
        let position = consumer
            .position()
            .ok()
            .and_then(|list| list.find_partition(topic, 0).map(|p| p.offset()));
        if let Some(Offset::Offset(next)) = position {
            applied.send_if_modified(|current| {
                let moved = next > *current;
                if moved {
                    *current = next;
                }
                moved
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::SchemaValue;
    use crate::state::Resolved;

    fn stored(schema: &str) -> Arc<Stored> {
        let resolved = Resolved {
            references: Vec::new(),
            dependencies: Vec::new(),
        };
        Arc::new(Stored::compile(schema.into(), resolved, usize::MAX).unwrap())
    }

    fn record(subject: &str, id: i32, schema: &str) -> Record {
        Record::Schema {
            subject: subject.to_owned(),
            version: 1,
            value: Some(SchemaValue {
                subject: subject.to_owned(),
                version: 1,
                id,
                schema_type: "PROTOBUF".to_owned(),
                references: Vec::new(),
                schema: schema.to_owned(),
                deleted: false,
            }),
        }
    }

    /// This instance compiled X for id 6, but its write did not commit:
    /// another instance's record gave id 6 to Y. The reader must keep Y.
    #[test]
    fn a_compile_for_an_id_another_instance_took_is_not_applied() {
        let mine = "syntax = \"proto3\"; message X { string a = 1; }";
        let theirs = "syntax = \"proto3\"; message Y { int64 b = 1; }";
        let reader = Reader {
            topic: "_schemas".to_owned(),
            state: Arc::default(),
            precompiled: Precompiled::default(),
        };
        reader.precompiled.lock().unwrap().insert(6, stored(mine));
        reader.apply(record("theirs-value", 6, theirs)).unwrap();
        let state = reader.state.read().unwrap();
        assert_eq!(&*state.schemas[&6].schema, theirs);
        assert!(reader.precompiled.lock().unwrap().is_empty());
    }
}
