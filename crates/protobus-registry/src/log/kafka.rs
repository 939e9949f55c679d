//! The log as a compacted Kafka topic, in Confluent's `_schemas` format.
//!
//! Every instance reads the topic from the start and keeps reading it, so
//! instances share one state. Writes go through one transactional id per
//! topic: an instance that takes over fences the previous writer and reads
//! everything committed before it took over, and only then decides (new ids,
//! new versions). A fenced writer's commit fails, so it takes over again and
//! decides anew; two instances can never hand out the same id. Until it is
//! fenced, a writer's state holds the whole log once its own writes are
//! applied: it does not ask for the log's end again before each write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::{Log, NotAppended, fold};
use crate::Error;
use crate::records::Record;
use crate::state::{State, Stored};
use crate::workers::STACK_BYTES;

mod schemas_topic;

use schemas_topic::ensure_topic;

/// Schemas this instance compiled for records it is writing, by id, so the
/// reader applies them without compiling them again.
type Precompiled = Arc<Mutex<HashMap<i32, Arc<Stored>>>>;

const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct KafkaLog {
    /// The caller's client settings (bootstrap servers, security), for every client.
    config: ClientConfig,
    topic: String,
    writing: Mutex<Option<Writing>>,
    watermarks: Arc<BaseConsumer>,
    /// The next offset the reader will apply: everything before it is in the state.
    applied: watch::Receiver<i64>,
    precompiled: Precompiled,
    stop: Arc<AtomicBool>,
}

/// This instance as the log's writer.
struct Writing {
    producer: Arc<Writer>,
    /// The log's end this writer has applied, once it knows it: nothing can
    /// be appended beyond its own records without fencing `producer`
    /// first, so until that fails a transaction, this is the end.
    end: Option<i64>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap", &self.config.get("bootstrap.servers"))
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn store_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::store(format!("Error while {what} the schemas topic: {err}"))
}

impl KafkaLog {
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

        let store = KafkaLog {
            config: config.clone(),
            topic: topic.to_owned(),
            writing: Mutex::new(None),
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

    /// Waits until everything committed to the topic so far is applied, and
    /// returns the end it waited for. The partition's leader may be moving
    /// (a broker failed, or the topic was just created and not every broker
    /// knows it yet): asked again until it answers, within [`TIMEOUT`].
    async fn catch_up(&self) -> Result<i64, Error> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let high = loop {
            let consumer = self.watermarks.clone();
            let topic = self.topic.clone();
            let asked =
                tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&topic, 0, TIMEOUT))
                    .await
                    .map_err(|e| store_error("reading", e))?;
            match asked {
                Ok((_, high)) => break high,
                Err(err) if tokio::time::Instant::now() < deadline => {
                    debug!(topic = %self.topic, error = %err, "asking the schemas topic's end again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => return Err(store_error("reading", err)),
            }
        };
        self.wait_applied(high).await?;
        Ok(high)
    }

    /// Waits until the reader has applied `offset`. Only a reader that
    /// stops moving fails it: replaying a long topic at start-up (100 000
    /// schemas take tens of seconds on a slow machine) is not a stall, so
    /// [`TIMEOUT`] runs from the last record applied.
    async fn wait_applied(&self, offset: i64) -> Result<(), Error> {
        let mut applied = self.applied.clone();
        loop {
            let seen = *applied.borrow_and_update();
            if seen >= offset {
                return Ok(());
            }
            match tokio::time::timeout(TIMEOUT, applied.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(store_error("reading", "the reader stopped")),
                Err(_) => {
                    return Err(store_error(
                        "reading",
                        format!(
                            "not caught up to offset {offset}: nothing applied for {TIMEOUT:?} (at {seen})"
                        ),
                    ));
                }
            }
        }
    }

    /// The transactional producer, taking over as the writer if there is none.
    async fn writer(&self) -> Result<Arc<Writer>, Error> {
        if let Some(writing) = self.writing().as_ref() {
            return Ok(writing.producer.clone());
        }
        let producer: Writer = self
            .config
            .clone()
            .set(
                "transactional.id",
                format!("protobus-registry-{}", self.topic),
            )
            .set("transaction.timeout.ms", "15000")
            // A transaction is one batch, sent at once: lingering only delays it.
            .set("linger.ms", "0")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(WriterContext)
            .map_err(|e| store_error("writing", e))?;
        let producer = Arc::new(producer);
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(TIMEOUT))
            .await
            .map_err(|e| store_error("writing", e))?
            .map_err(|e| store_error("writing", e))?;
        debug!(topic = %self.topic, "took over as the registry writer");
        *self.writing() = Some(Writing {
            producer: producer.clone(),
            end: None,
        });
        Ok(producer)
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, Option<Writing>> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `end` as the log's end applied by the writer `producer`
    /// (`None`: not known), unless another producer has replaced it.
    fn set_end(&self, producer: &Arc<Writer>, end: Option<i64>) {
        if let Some(writing) = self.writing().as_mut()
            && Arc::ptr_eq(&writing.producer, producer)
        {
            writing.end = end;
        }
    }

    /// Writes `records` in one transaction; returns the offset after the last.
    async fn publish(&self, producer: &Arc<Writer>, records: &[Record]) -> Result<i64, KafkaError> {
        let begin = producer.clone();
        blocking(move || begin.begin_transaction()).await?;
        // Every record is sent before any delivery is awaited: one round
        // trip for a write of many (a subject's versions), in order (the
        // producer is idempotent). librdkafka copies what it is sent.
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let (key, value) = record.encode();
            let mut out = FutureRecord::to(&self.topic).key(&key).partition(0);
            if let Some(value) = &value {
                out = out.payload(value);
            }
            match producer.send_result(out) {
                Ok(delivery) => deliveries.push(delivery),
                Err((err, _)) => {
                    self.abort(producer).await;
                    return Err(err);
                }
            }
        }
        let mut next = 0;
        for delivery in deliveries {
            let delivered = match delivery.await {
                Ok(delivered) => delivered.map_err(|(err, _)| err),
                Err(_) => Err(KafkaError::Canceled),
            };
            match delivered {
                Ok(delivery) => next = delivery.offset + 1,
                Err(err) => {
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

    async fn abort(&self, producer: &Arc<Writer>) {
        let abort = producer.clone();
        let _ = blocking(move || abort.abort_transaction(TIMEOUT)).await;
    }
}

impl Log for KafkaLog {
    fn take_over(&self) -> BoxFuture<'_, Result<(), Error>> {
        async {
            let known = self.writing().as_ref().and_then(|w| w.end);
            if let Some(end) = known {
                return self.wait_applied(end).await;
            }
            let producer = self.writer().await?;
            let end = self.catch_up().await?;
            self.set_end(&producer, Some(end));
            Ok(())
        }
        .boxed()
    }

    fn append(
        &self,
        records: Vec<Record>,
        compiled: Option<Arc<Stored>>,
    ) -> BoxFuture<'_, Result<Result<(), NotAppended>, Error>> {
        async move {
            let producer = self.writer().await?;
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
                    // Until its records are applied, the end is not known.
                    self.set_end(&producer, None);
                    self.wait_applied(next).await?;
                    self.set_end(&producer, Some(next));
                    Ok(Ok(()))
                }
                Err(err) => {
                    // Nothing of the transaction is visible. Most often another
                    // instance took over (fenced, or our queue purged); a broker
                    // that is gone fails every attempt.
                    *self.writing() = None;
                    Ok(Err(NotAppended(err.to_string())))
                }
            }
        }
        .boxed()
    }
}

/// The log's transactional producer.
type Writer = FutureProducer<WriterContext>;

/// librdkafka's words for the writer. An instance is fenced whenever another
/// takes over the log (normal work with several instances), which
/// librdkafka reports as fatal errors: those are said at debug.
struct WriterContext;

impl WriterContext {
    fn fenced(text: &str) -> bool {
        text.contains("fenced") || text.contains("old epoch")
    }
}

impl ClientContext for WriterContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        use RDKafkaLogLevel::*;
        match level {
            _ if Self::fenced(message) => debug!(fac, message, "librdkafka: the writer was fenced"),
            Emerg | Alert | Critical | Error => error!(fac, message, "librdkafka"),
            Warning => warn!(fac, message, "librdkafka"),
            Notice | Info => info!(fac, message, "librdkafka"),
            Debug => debug!(fac, message, "librdkafka"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fenced) || Self::fenced(reason) {
            debug!(%error, reason, "the registry writer was fenced by another instance");
        } else {
            error!(%error, reason, "librdkafka");
        }
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

/// What the reader thread applies records to.
struct Reader {
    topic: String,
    state: Arc<RwLock<State>>,
    precompiled: Precompiled,
}

impl Reader {
    /// Applies `record`, with this instance's compile of its schema if it
    /// made one while writing it.
    fn apply(&self, record: Record) -> Result<(), Error> {
        let compiled = record.schema_id().and_then(|id| {
            self.precompiled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id)
        });
        fold(&self.state, record, compiled)
    }
}

/// How long the reader waits for a message before it looks at its position
/// again. A transaction's commit marker moves the position without a message,
/// and a writer waits for the position to pass it before its next write: the
/// wait is paid by every registration that follows another.
const POLL: Duration = Duration::from_millis(5);

/// Records applied, at most, before the position is published. Asking for
/// the position is a round trip to librdkafka's main thread, and a move
/// wakes every waiting writer: done per record, they took about a quarter
/// of a replay's CPU.
const APPLIED_PER_PUBLISH: usize = 1024;

fn read_forever(
    consumer: BaseConsumer,
    reader: &Reader,
    applied: watch::Sender<i64>,
    stop: Arc<AtomicBool>,
) {
    let topic = reader.topic.as_str();
    // Records applied since the position was last published.
    let mut unpublished = 0;
    while !stop.load(Ordering::Relaxed) {
        // With records applied and not yet published, only those already
        // fetched are taken before publishing: a writer waits for its own.
        let wait = if unpublished == 0 {
            POLL
        } else {
            Duration::ZERO
        };
        match consumer.poll(wait) {
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
                unpublished += 1;
                if unpublished < APPLIED_PER_PUBLISH {
                    continue;
                }
            }
            Some(Err(err)) => warn!(topic, error = %err, "reading the schemas topic"),
            None => {}
        }
        unpublished = 0;
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
    use crate::state::tests::{record, stored};

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
