//! An idempotent librdkafka producer that replaces itself after a fatal error.
//!
//! With `enable.idempotence`, librdkafka raises a *fatal* error when the
//! broker reports a sequence gap (`OUT_OF_ORDER_SEQUENCE_NUMBER`) or forgets
//! the producer id in a way it cannot repair; from then on the producer
//! refuses every record with `_FATAL`. The only way on is a new producer, so
//! the first send that sees the fatal error swaps in a fresh one (once per
//! failed instance, however many sends fail together) and reports the error
//! as [`ErrorKind::ProducerFatal`].

use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::util::{IntoOpaque, Timeout};
use tracing::error;

pub(crate) use crate::answer_groups::Delivered;
use crate::answer_groups::{Answered, Answers, MAX_GROUP};
use crate::delivery_reports::ServedProducer;
use crate::error::{Error, ErrorKind};

/// A record as Protobus hands it over: its frame, key and headers borrowed.
pub(crate) type Record<'a> = BaseRecord<'a, [u8], [u8], ()>;

/// A producer and the settings to build its successor; cheap to clone.
#[derive(Clone)]
pub(crate) struct KafkaProducer(Arc<Shared>);

struct Shared {
    config: ClientConfig,
    /// The context of every instance: a batch's group outlives a
    /// replacement.
    answers: Answers,
    current: RwLock<Instance>,
}

/// A librdkafka producer whose delivery reports answer each record in its
/// group of [`Answers`]: no allocation per record, where rdkafka's
/// `FutureProducer` makes two (a channel and a box for its sender) and copies
/// a failed record's contents.
pub(crate) type Client = ServedProducer<Answers>;

#[derive(Clone)]
struct Instance {
    producer: Arc<Client>,
    /// Counts replacements, so concurrent sends replace an instance once.
    generation: u64,
}

/// What [`Batch::try_enqueue`] did with a record.
pub(crate) enum Enqueued<'a> {
    /// Handed over, at this index of its batch.
    Queued(usize),
    /// librdkafka's queue is full: the record, to try again.
    Full(Record<'a>),
}

/// Records handed to librdkafka together, and answered together: await
/// [`answered`](Self::poll_answered), then read each one's answer. Dropping
/// it lets its group go, answered or not.
///
/// A batch sends with the producer in use when it was made. The first of
/// its records that producer refuses with a fatal error fails as
/// [`ErrorKind::ProducerFatal`], and the batch's later records go to the
/// replacement.
pub(crate) struct Batch {
    /// The group's key in the producer's [`Answers`].
    key: usize,
    capacity: usize,
    queued: usize,
    sealed: bool,
    /// The instance records go to now.
    instance: Instance,
    /// The instances records went to before, each with the index of its
    /// first record: an answer's error is judged by its record's instance.
    earlier: Vec<(usize, Instance)>,
    /// The index of the first record sent to `instance`.
    instance_from: usize,
    owner: KafkaProducer,
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.answers().close(self.key);
    }
}

impl KafkaProducer {
    pub(crate) fn new(config: ClientConfig) -> Result<Self, Error> {
        let answers = Answers::default();
        let producer = Arc::new(create(&config, &answers)?);
        Ok(KafkaProducer(Arc::new(Shared {
            config,
            answers,
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

    /// A batch of up to `capacity` records ([`MAX_GROUP`] at most) on the
    /// producer in use now.
    pub(crate) fn batch(&self, capacity: usize) -> Result<Batch, Error> {
        let capacity = capacity.min(MAX_GROUP);
        // No room: every key of the pool's shard is taken, as full as a
        // queue can be.
        let key = self.0.answers.open(capacity).ok_or(ErrorKind::QueueFull)?;
        Ok(Batch {
            key,
            capacity,
            queued: 0,
            sealed: false,
            instance: self.instance(),
            earlier: Vec::new(),
            instance_from: 0,
            owner: self.clone(),
        })
    }

    /// Sends `record` and waits for Kafka's answer.
    pub(crate) async fn send(
        &self,
        record: Record<'_>,
        queue_wait: Duration,
    ) -> Result<Delivered, Error> {
        let mut batch = self.batch(1)?;
        let index = batch.enqueue(record, queue_wait).await?;
        std::future::poll_fn(|cx| batch.poll_answered(cx).map(|answers| answers.get(index))).await
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
        match create(&self.0.config, &self.0.answers) {
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

fn create(config: &ClientConfig, answers: &Answers) -> Result<Client, Error> {
    ServedProducer::new(config, answers.clone()).map_err(|e| ErrorKind::Kafka(e).into())
}

impl Batch {
    fn answers(&self) -> &Answers {
        &self.owner.0.answers
    }

    /// The instance the record at `index` went to.
    fn instance_of(&self, index: usize) -> &Instance {
        if index >= self.instance_from {
            return &self.instance;
        }
        let later = self.earlier.partition_point(|(from, _)| *from <= index);
        &self.earlier[later - 1].1
    }

    /// Hands `record` to librdkafka if its queue has room, without waiting.
    pub(crate) fn try_enqueue<'a>(&mut self, record: Record<'a>) -> Result<Enqueued<'a>, Error> {
        debug_assert!(!self.sealed, "a batch is not added to once awaited");
        if self.queued == self.capacity {
            return Err(ErrorKind::BatchFull(self.capacity).into());
        }
        let opaque = Answers::opaque(self.key, self.queued);
        match self.instance.producer.send(with_opaque(record, opaque)) {
            Ok(()) => {
                self.queued += 1;
                Ok(Enqueued::Queued(self.queued - 1))
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                Ok(Enqueued::Full(with_opaque(back, ())))
            }
            Err((err, _)) => {
                let err = self.owner.classify(err, &self.instance);
                if matches!(err.kind(), ErrorKind::ProducerFatal(_)) {
                    // Replaced by now: the batch's later records go to the
                    // replacement.
                    let next = self.owner.instance();
                    let failed = std::mem::replace(&mut self.instance, next);
                    self.earlier.push((self.instance_from, failed));
                    self.instance_from = self.queued;
                }
                Err(err)
            }
        }
    }

    /// Hands `record` to librdkafka, waiting up to `queue_wait` for room in
    /// its queue. Fails at once when the record cannot be queued.
    pub(crate) async fn enqueue(
        &mut self,
        record: Record<'_>,
        queue_wait: Duration,
    ) -> Result<usize, Error> {
        match self.try_enqueue(record)? {
            Enqueued::Queued(index) => Ok(index),
            Enqueued::Full(record) => self.enqueue_when_room(record, queue_wait).await,
        }
    }

    /// Waits up to `queue_wait` for room in librdkafka's queue for `record`.
    pub(crate) async fn enqueue_when_room(
        &mut self,
        mut record: Record<'_>,
        queue_wait: Duration,
    ) -> Result<usize, Error> {
        if queue_wait.is_zero() {
            return Err(ErrorKind::QueueFull.into());
        }
        let deadline = tokio::time::Instant::now() + queue_wait;
        loop {
            // librdkafka frees queue room as deliveries complete; poll
            // lightly rather than spin.
            tokio::time::sleep(Duration::from_millis(5)).await;
            match self.try_enqueue(record)? {
                Enqueued::Queued(index) => return Ok(index),
                Enqueued::Full(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(ErrorKind::QueueFull.into());
                }
                Enqueued::Full(back) => record = back,
            }
        }
    }

    /// How many records were handed over.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Ready once Kafka answered every record handed over. The batch is
    /// sealed on the first call: no record is added after it.
    pub(crate) fn poll_answered(&mut self, cx: &mut Context<'_>) -> Poll<BatchAnswers<'_>> {
        let seal = (!self.sealed).then_some(self.queued);
        self.sealed = true;
        let batch = &*self;
        batch
            .answers()
            .poll_answered(batch.key, seal, cx)
            .map(|answered| BatchAnswers { answered, batch })
    }
}

/// Kafka's answers for a batch's records, all in.
pub(crate) struct BatchAnswers<'b> {
    answered: Answered<'b>,
    batch: &'b Batch,
}

impl BatchAnswers<'_> {
    /// Kafka's answer for the record at `index`.
    pub(crate) fn get(&self, index: usize) -> Result<Delivered, Error> {
        let batch = self.batch;
        match self.answered.get(index) {
            Some(Ok(delivered)) => Ok(delivered),
            Some(Err(err)) => Err(batch.owner.classify(*err, batch.instance_of(index))),
            None => panic!(
                "record {index} of a batch of {} is unanswered",
                batch.queued
            ),
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

    /// Kafka's answers for the first `n` records of `batch`, once all are in.
    async fn answered(batch: &mut Batch, n: usize) -> Vec<Result<Delivered, Error>> {
        std::future::poll_fn(|cx| {
            (batch.poll_answered(cx)).map(|answers| (0..n).map(|i| answers.get(i)).collect())
        })
        .await
    }

    fn offsets(answers: Vec<Result<Delivered, Error>>) -> Vec<i64> {
        answers.into_iter().map(|a| a.unwrap().offset).collect()
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

        // Made before the fatal error, it stays with the failed producer.
        let mut pinned = producer.batch(1).unwrap();
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

        // The batch's first record meets the failed instance's fatal state;
        // its next goes to the replacement, which writes.
        let refused = pinned.try_enqueue(record(b"three")).map(|_| ());
        assert!(
            matches!(refused.unwrap_err().kind(), ErrorKind::ProducerFatal(_)),
            "a batch's record that meets the fatal state fails as fatal"
        );
        assert_eq!(pinned.enqueue(record(b"three"), wait).await.unwrap(), 0);
        assert_eq!(offsets(answered(&mut pinned, 1).await), [1]);
        let next = producer.send(record(b"four"), wait).await.unwrap();
        assert_eq!(next.offset, 2);
        assert_eq!(producer.instance().generation, 1);
    }

    #[tokio::test]
    async fn a_batch_is_answered_once_all_of_its_records_are_in_each_at_its_index() {
        let (_cluster, producer) = producer(&[("linger.ms", "20")]);
        let wait = Duration::from_secs(5);
        let mut batch = producer.batch(4).unwrap();
        for (i, value) in [b"0", b"1", b"2"].into_iter().enumerate() {
            assert_eq!(batch.enqueue(record(value), wait).await.unwrap(), i);
        }
        assert_eq!(offsets(answered(&mut batch, 3).await), [0, 1, 2]);

        // Answered before it is sealed: ready at the seal.
        let mut early = producer.batch(2).unwrap();
        early.enqueue(record(b"3"), wait).await.unwrap();
        early.enqueue(record(b"4"), wait).await.unwrap();
        producer.flush(wait).unwrap();
        let waker = futures_util::task::noop_waker();
        let Poll::Ready(answers) = early.poll_answered(&mut Context::from_waker(&waker)) else {
            panic!("every answer was in before the seal");
        };
        assert_eq!(answers.get(1).unwrap().offset, 4);

        // Sealed with nothing in it: answered at once.
        let mut empty = producer.batch(1).unwrap();
        assert!(
            empty
                .poll_answered(&mut Context::from_waker(&waker))
                .is_ready()
        );
    }

    #[tokio::test]
    async fn a_batch_refuses_records_past_its_capacity() {
        let (_cluster, producer) = producer(&[]);
        let wait = Duration::from_secs(5);
        let mut batch = producer.batch(1).unwrap();
        batch.enqueue(record(b"1"), wait).await.unwrap();
        let err = batch.enqueue(record(b"2"), wait).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::BatchFull(1)), "{err}");
        assert_eq!(offsets(answered(&mut batch, 1).await), [0]);
    }

    #[tokio::test]
    async fn a_dropped_batch_frees_its_group_and_its_answers_go_nowhere() {
        let (_cluster, producer) = producer(&[("linger.ms", "50")]);
        let wait = Duration::from_secs(5);
        let answers = &producer.0.answers;

        // Dropped before Kafka answers: its group is free at once, and the
        // answer that comes later is not handed to the batch after it.
        let mut dropped = producer.batch(1).unwrap();
        dropped.enqueue(record(b"1"), wait).await.unwrap();
        let key = dropped.key;
        drop(dropped);
        assert!(!answers.is_open(key));
        let mut kept = producer.batch(1).unwrap();
        kept.enqueue(record(b"2"), wait).await.unwrap();
        assert_ne!(
            kept.key, key,
            "a freed key comes back with a new generation"
        );
        assert_eq!(offsets(answered(&mut kept, 1).await), [1]);
        producer.flush(wait).unwrap();

        // Answered, then dropped: its group is free too.
        let mut answered_then_dropped = producer.batch(1).unwrap();
        answered_then_dropped
            .enqueue(record(b"3"), wait)
            .await
            .unwrap();
        let key = answered_then_dropped.key;
        producer.flush(wait).unwrap();
        assert!(answers.is_open(key));
        drop(answered_then_dropped);
        assert!(!answers.is_open(key));
    }

    #[tokio::test]
    async fn a_full_queue_waits_for_room_or_refuses_at_once() {
        let (_cluster, producer) =
            producer(&[("queue.buffering.max.messages", "2"), ("linger.ms", "50")]);

        // Two records fill the queue until the linger ends; a third is
        // refused without a wait and queued once room frees with one.
        let mut batch = producer.batch(3).unwrap();
        batch.enqueue(record(b"1"), Duration::ZERO).await.unwrap();
        batch.enqueue(record(b"2"), Duration::ZERO).await.unwrap();
        let refused = batch.enqueue(record(b"3"), Duration::ZERO).await;
        assert!(
            matches!(refused.unwrap_err().kind(), ErrorKind::QueueFull),
            "expected QueueFull"
        );
        let waited = batch
            .enqueue(record(b"3"), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(waited, 2);
        assert_eq!(offsets(answered(&mut batch, 3).await), [0, 1, 2]);
    }
}
