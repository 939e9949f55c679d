//! An idempotent librdkafka producer that replaces itself after a fatal error.
//!
//! With `enable.idempotence`, librdkafka raises a *fatal* error when the
//! broker reports a sequence gap (`OUT_OF_ORDER_SEQUENCE_NUMBER`) or forgets
//! the producer id in a way it cannot repair; from then on the producer
//! refuses every record with `_FATAL`. The only way on is a new producer, so
//! the first send that sees the fatal error swaps in a fresh one (once per
//! failed instance, however many sends fail together) and reports the error
//! as [`ErrorKind::ProducerFatal`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::{IntoOpaque, Timeout};
use rdkafka::{ClientConfig, ClientContext};
use sharded_slab::Slab;
use tracing::error;

use crate::delivery_reports::ServedProducer;
use crate::error::{Error, ErrorKind};

/// A record as Protobus hands it over: its frame, key and headers borrowed.
pub(crate) type Record<'a> = BaseRecord<'a, [u8], [u8], ()>;

/// A producer and the settings to build its successor; cheap to clone.
#[derive(Clone)]
pub(crate) struct KafkaProducer(Arc<Shared>);

struct Shared {
    config: ClientConfig,
    current: RwLock<Instance>,
}

/// A librdkafka producer whose delivery reports answer each record's
/// [`Slot`] in its [`Answers`]: no allocation per record, where rdkafka's
/// `FutureProducer` makes two (a channel and a box for its sender) and copies
/// a failed record's contents.
pub(crate) type Client = ServedProducer<Answers>;

#[derive(Clone)]
struct Instance {
    producer: Arc<Client>,
    /// Counts replacements, so concurrent sends replace an instance once.
    generation: u64,
}

/// The slots of the records in flight, each record's outcome handed to its
/// own. A slab rather than a box per record: a record's memory is reused, not
/// freed on the task that awaited it after the thread serving its delivery
/// report freed librdkafka's, which made glibc's arenas the sending thread's
/// largest cost.
/// The slab keeps the memory of the most records ever sent and not yet let
/// go of at once (a slot is 112 bytes, plus the slab's own few per slot).
pub(crate) struct Answers {
    slots: Slab<Slot, SlotPages>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            slots: Slab::new_with_config::<SlotPages>(),
        }
    }
}

/// The slab's pages, each twice the size of the one before: a send looks
/// for a free slot page by page from the first, so with thousands of
/// records in flight, larger first pages make that search a few pages long
/// rather than a dozen (each a look at the page's free lists, one of them
/// an atomic swap). The first page of each sending thread's shard is
/// 1 024 slots, some 120 KiB, made on its first send.
struct SlotPages;

impl sharded_slab::Config for SlotPages {
    const INITIAL_PAGE_SIZE: usize = 1024;
}

impl ClientContext for Answers {}

impl ProducerContext for Answers {
    /// The record's key in [`Answers::slots`].
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, key: usize) {
        // None: its `Pending` was dropped, and no one waits for the answer.
        let Some(slot) = self.slots.get(key) else {
            return;
        };
        let answer = match result {
            Ok(message) => Ok(Delivered {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((err, _)) => Err(err.clone()),
        };
        let _ = slot.answer.set(answer);
        slot.waker.wake();
    }
}

/// Kafka's answer for one record, from the thread serving its delivery
/// report to the task awaiting it.
#[derive(Default)]
pub(crate) struct Slot {
    answer: OnceLock<Result<Delivered, KafkaError>>,
    waker: AtomicWaker,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivered {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// What [`KafkaProducer::try_enqueue`] did with a record.
pub(crate) enum Enqueued<'a> {
    /// Handed over; resolves to Kafka's answer.
    Queued(Pending),
    /// librdkafka's queue is full: the record, to try again.
    Full(Record<'a>),
}

/// A record handed to librdkafka; resolves to Kafka's answer. Dropping it
/// frees its slot, answered or not.
pub(crate) struct Pending {
    /// The record's key in its instance's [`Answers::slots`].
    key: usize,
    instance: Instance,
    owner: KafkaProducer,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.instance.producer.context().slots.remove(self.key);
    }
}

impl KafkaProducer {
    pub(crate) fn new(config: ClientConfig) -> Result<Self, Error> {
        let producer = Arc::new(create(&config)?);
        Ok(KafkaProducer(Arc::new(Shared {
            config,
            current: RwLock::new(Instance {
                producer,
                generation: 0,
            }),
        })))
    }

    /// The librdkafka client in use now.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn current_client(&self) -> Arc<Client> {
        self.instance().producer
    }

    /// How many times the producer has been replaced.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn generation(&self) -> u64 {
        self.instance().generation
    }

    fn instance(&self) -> Instance {
        self.0
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Hands `record` to librdkafka, waiting up to `queue_wait` for room in
    /// its queue. Fails at once when the record cannot be queued.
    pub(crate) async fn enqueue(
        &self,
        record: Record<'_>,
        queue_wait: Duration,
    ) -> Result<Pending, Error> {
        match self.try_enqueue(record)? {
            Enqueued::Queued(pending) => Ok(pending),
            // Boxed: waiting is rare, and every send's future would otherwise
            // carry the timer's state.
            Enqueued::Full(record) => Box::pin(self.enqueue_when_room(record, queue_wait)).await,
        }
    }

    /// Hands `record` to librdkafka if its queue has room, without waiting.
    pub(crate) fn try_enqueue<'a>(&self, record: Record<'a>) -> Result<Enqueued<'a>, Error> {
        let instance = self.instance();
        match send(&instance, record) {
            Ok(key) => Ok(Enqueued::Queued(self.pending(key, instance))),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                Ok(Enqueued::Full(record))
            }
            Err((err, _)) => Err(self.classify(err, &instance)),
        }
    }

    /// Waits up to `queue_wait` for room in librdkafka's queue for `record`.
    pub(crate) async fn enqueue_when_room(
        &self,
        mut record: Record<'_>,
        queue_wait: Duration,
    ) -> Result<Pending, Error> {
        if queue_wait.is_zero() {
            return Err(ErrorKind::QueueFull.into());
        }
        let deadline = tokio::time::Instant::now() + queue_wait;
        loop {
            // librdkafka frees queue room as deliveries complete; poll
            // lightly rather than spin.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let instance = self.instance();
            match send(&instance, record) {
                Ok(key) => return Ok(self.pending(key, instance)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() < deadline =>
                {
                    record = back;
                }
                Err((err, _)) => return Err(self.classify(err, &instance)),
            }
        }
    }

    fn pending(&self, key: usize, instance: Instance) -> Pending {
        Pending {
            key,
            instance,
            owner: self.clone(),
        }
    }

    /// Sends `record` and waits for Kafka's answer.
    pub(crate) async fn send(
        &self,
        record: Record<'_>,
        queue_wait: Duration,
    ) -> Result<Delivered, Error> {
        self.enqueue(record, queue_wait).await?.await
    }

    /// Waits until every record queued so far is answered, or `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.instance()
            .producer
            .flush(Timeout::After(timeout))
            .map_err(|e| ErrorKind::Kafka(e).into())
    }

    /// Turns a librdkafka error into ours, replacing `instance` first when it
    /// is in a fatal state (the record then fails with the error that caused
    /// it, such as `OUT_OF_ORDER_SEQUENCE_NUMBER`, or with `_FATAL`).
    fn classify(&self, err: KafkaError, instance: &Instance) -> Error {
        if let Some((code, reason)) = instance.producer.client().fatal_error() {
            let reason = format!("{code:?}: {reason}");
            self.replace(instance.generation, &reason);
            return ErrorKind::ProducerFatal(reason).into();
        }
        match err.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => ErrorKind::QueueFull.into(),
            Some(
                RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::PurgeInflight,
            ) => ErrorKind::OutcomeUnknown(err).into(),
            _ => ErrorKind::Kafka(err).into(),
        }
    }

    /// Replaces instance `generation` with a new producer, unless another
    /// send did so already.
    fn replace(&self, generation: u64, reason: &str) {
        let mut current = self
            .0
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.generation != generation {
            return;
        }
        match create(&self.0.config) {
            Ok(producer) => {
                error!(%reason, generation = generation + 1,
                       "the idempotent producer hit a fatal error; replaced it with a new one");
                // The old instance is dropped once its last in-flight send
                // lets go of it; its queued records fail with `_FATAL`.
                *current = Instance {
                    producer: Arc::new(producer),
                    generation: generation + 1,
                };
            }
            Err(err) => {
                error!(%reason, error = %err,
                       "the idempotent producer hit a fatal error and a new one could not be created");
            }
        }
    }
}

fn create(config: &ClientConfig) -> Result<Client, Error> {
    ServedProducer::new(config, Answers::default()).map_err(|e| ErrorKind::Kafka(e).into())
}

/// Hands `record` to `instance` with a fresh [`Slot`] for its answer; the
/// slot's key.
#[allow(clippy::result_large_err)] // the record comes back to be retried
fn send<'a>(instance: &Instance, record: Record<'a>) -> Result<usize, (KafkaError, Record<'a>)> {
    let slots = &instance.producer.context().slots;
    let Some(key) = slots.insert(Slot::default()) else {
        // Every key of the slab's shard is taken: as full as a queue can be.
        let full = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
        return Err((full, record));
    };
    match instance.producer.send(with_opaque(record, key)) {
        Ok(()) => Ok(key),
        Err((err, back)) => {
            slots.remove(key);
            Err((err, with_opaque(back, ())))
        }
    }
}

/// `record` carrying `opaque` to its delivery report.
fn with_opaque<'a, D: IntoOpaque, E: IntoOpaque>(
    record: BaseRecord<'a, [u8], [u8], D>,
    opaque: E,
) -> BaseRecord<'a, [u8], [u8], E> {
    BaseRecord {
        topic: record.topic,
        partition: record.partition,
        payload: record.payload,
        key: record.key,
        timestamp: record.timestamp,
        headers: record.headers,
        delivery_opaque: opaque,
    }
}

impl Future for Pending {
    type Output = Result<Delivered, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let slots = &self.instance.producer.context().slots;
        let slot = slots
            .get(self.key)
            .expect("a slot lives until its Pending is dropped");
        let answer = match slot.answer.get() {
            Some(answer) => answer,
            None => {
                slot.waker.register(cx.waker());
                match slot.answer.get() {
                    Some(answer) => answer,
                    None => return Poll::Pending,
                }
            }
        };
        Poll::Ready(match answer {
            Ok(delivered) => Ok(*delivered),
            Err(err) => Err(self.owner.classify(err.clone(), &self.instance)),
        })
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::DefaultProducerContext;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    use super::*;

    fn record(value: &[u8]) -> Record<'_> {
        BaseRecord::to("events").key(&b"k"[..]).payload(value)
    }

    /// A mock cluster with a topic `events` of one partition, and a
    /// producer for it with `settings`.
    fn producer(
        settings: &[(&str, &str)],
    ) -> (MockCluster<'static, DefaultProducerContext>, KafkaProducer) {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("events", 1, 1).unwrap();
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", cluster.bootstrap_servers());
        for (key, value) in settings {
            config.set(*key, *value);
        }
        (cluster, KafkaProducer::new(config).unwrap())
    }

    #[tokio::test]
    async fn a_fatal_idempotence_error_replaces_the_producer() {
        let (cluster, producer) = producer(&[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "5000"),
        ]);
        let wait = Duration::from_secs(5);
        let first = producer.send(record(b"one"), wait).await.unwrap();
        assert_eq!(first.offset, 0);

        let failed = producer.instance();
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
        );
        let err = producer.send(record(b"two"), wait).await.unwrap_err();
        let ErrorKind::ProducerFatal(reason) = err.kind() else {
            panic!("expected a fatal producer error, got {err}");
        };
        assert!(reason.contains("sequence"), "{reason}");
        assert_eq!(producer.instance().generation, 1);

        // The failed instance refuses everything from now on; its replacement writes.
        let refused = send(&failed, record(b"three")).map(|_| ());
        assert_eq!(
            refused.unwrap_err().0.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fatal)
        );
        let next = producer.send(record(b"three"), wait).await.unwrap();
        assert_eq!(next.offset, 1);
        assert_eq!(producer.instance().generation, 1);
    }

    #[tokio::test]
    async fn a_dropped_pending_frees_its_slot_and_its_answer_goes_nowhere() {
        let (_cluster, producer) = producer(&[("linger.ms", "50")]);
        let wait = Duration::from_secs(5);
        let client = producer.instance().producer;

        // Dropped before Kafka answers: its slot is free at once, and the
        // answer that comes later is not handed to the record after it.
        let dropped = producer.enqueue(record(b"1"), wait).await.unwrap();
        let key = dropped.key;
        drop(dropped);
        assert!(client.context().slots.get(key).is_none());
        let kept = producer.enqueue(record(b"2"), wait).await.unwrap();
        assert_ne!(
            kept.key, key,
            "a freed key comes back with a new generation"
        );
        assert_eq!(kept.await.unwrap().offset, 1);
        producer.flush(wait).unwrap();

        // Answered, then dropped: its slot is free too.
        let answered = producer.enqueue(record(b"3"), wait).await.unwrap();
        let key = answered.key;
        producer.flush(wait).unwrap();
        assert!(client.context().slots.get(key).is_some());
        drop(answered);
        assert!(client.context().slots.get(key).is_none());
    }

    #[tokio::test]
    async fn a_full_queue_waits_for_room_or_refuses_at_once() {
        let (_cluster, producer) =
            producer(&[("queue.buffering.max.messages", "2"), ("linger.ms", "50")]);

        // Two records fill the queue until the linger ends; a third is
        // refused without a wait and queued once room frees with one.
        let queued = [
            producer
                .enqueue(record(b"1"), Duration::ZERO)
                .await
                .unwrap(),
            producer
                .enqueue(record(b"2"), Duration::ZERO)
                .await
                .unwrap(),
        ];
        let refused = producer.enqueue(record(b"3"), Duration::ZERO).await;
        assert!(
            matches!(
                refused.as_ref().map(|_| ()).unwrap_err().kind(),
                ErrorKind::QueueFull
            ),
            "expected QueueFull"
        );
        let waited = producer
            .enqueue(record(b"3"), Duration::from_secs(10))
            .await
            .unwrap();
        let mut offsets = Vec::new();
        for pending in queued.into_iter().chain([waited]) {
            offsets.push(pending.await.unwrap().offset);
        }
        assert_eq!(offsets, [0, 1, 2]);
    }
}
