//! Consumer reliability against the real broker: a failing event is retried
//! with backoff while other partitions go on and its own partition keeps its
//! order; permanent failures, exhausted retries and poison records go to the
//! dead-letter topic with headers that say why, and the consumer keeps going.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::dead_letter::headers as dlq;
use protobus_runtime::{
    ConsumerSettings, ConsumerStats, Event, EventConsumer, EventContext, HandlerError, RetryPolicy,
    SchemaRegistry, wire,
};
use rdkafka::message::{BorrowedHeaders, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A handled order: id, partition, offset, when.
type Handled = (String, i32, i64, Instant);
/// A dead-lettered record: key, value, headers by name.
type Letter = common::Record;

/// Handles orders; `fail` says how an order id fails on which attempt.
#[derive(Clone)]
struct Orders {
    handled: Arc<Mutex<Vec<Handled>>>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    /// The header names each handled order was seen with.
    header_names: Arc<Mutex<HashMap<String, Vec<String>>>>,
    fail: fn(&str, u32) -> Option<HandlerError>,
}

impl Orders {
    fn new(fail: fn(&str, u32) -> Option<HandlerError>) -> Self {
        Orders {
            handled: Arc::default(),
            attempts: Arc::default(),
            header_names: Arc::default(),
            fail,
        }
    }

    /// The order ids handled, in the order they were.
    fn handled_ids(&self) -> Vec<String> {
        self.handled
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.0.clone())
            .collect()
    }

    fn handle(&self, order_id: &str, context: &EventContext<'_>) -> Result<(), HandlerError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(order_id.to_owned()).or_default();
            *n += 1;
            *n
        };
        if let Some(err) = (self.fail)(order_id, attempt) {
            return Err(err);
        }
        let names = context.headers().map(|(name, _)| name.to_owned()).collect();
        self.header_names
            .lock()
            .unwrap()
            .insert(order_id.to_owned(), names);
        self.handled.lock().unwrap().push((
            order_id.to_owned(),
            context.partition(),
            context.offset(),
            Instant::now(),
        ));
        Ok(())
    }
}

impl ShopOrdersHandler for Orders {
    async fn order_placed(&self, e: OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(&e.order_id, c)
    }
    async fn order_paid(&self, e: OrderPaid, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(&e.order_id, c)
    }
    async fn order_shipped(
        &self,
        e: OrderShipped,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.handle(&e.order_id, c)
    }
}

struct Setup {
    kafka: common::Kafka,
    prefix: String,
    topic: String,
    schemas: Arc<SchemaRegistry>,
}

async fn setup(partitions: i32) -> Setup {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("reliability"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, partitions).await;
    kafka.create_topic(&format!("{topic}.dlq"), 1).await;
    let schemas = kafka.schema_registry().await;
    Setup {
        kafka,
        prefix,
        topic,
        schemas,
    }
}

fn order(id: &str) -> OrderPlaced {
    OrderPlaced {
        order_id: id.into(),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    }
}

/// A member of a new group reading the orders topic with `retry`.
fn member(
    s: &Setup,
    orders: &Orders,
    retry: RetryPolicy,
    group: &str,
) -> EventConsumer<ShopOrdersDispatcher<Orders>> {
    let mut settings = ConsumerSettings::new(s.kafka.bootstrap(), group);
    settings.topic_prefix = s.prefix.clone();
    settings.retry = retry;
    EventConsumer::new(
        settings,
        s.schemas.clone(),
        ShopOrdersDispatcher(orders.clone()),
    )
    .unwrap()
}

/// Runs `consumer` until `done` holds for its stats (or 60 s), then stops it.
async fn run_until(
    consumer: EventConsumer<ShopOrdersDispatcher<Orders>>,
    orders: &Orders,
    done: impl Fn(&ConsumerStats, usize) -> bool,
) -> Arc<ConsumerStats> {
    let stats = consumer.stats();
    let running = common::start_consumer(consumer);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&stats, orders.handled.lock().unwrap().len()) {
        assert!(
            Instant::now() < deadline,
            "timed out: {stats:?}, handled {}",
            orders.handled.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    stats
}

/// Runs a member of a new group until `done` holds for its stats (or 60 s).
async fn consume(
    s: &Setup,
    orders: &Orders,
    retry: RetryPolicy,
    done: impl Fn(&ConsumerStats, usize) -> bool,
) -> Arc<ConsumerStats> {
    let group = common::unique_name("reliability");
    run_until(member(s, orders, retry, &group), orders, done).await
}

/// Every record of the dead-letter topic, with its headers by name.
fn dead_letters(s: &Setup) -> Vec<Letter> {
    s.kafka.records(&format!("{}.dlq", s.topic))
}

/// Done once `handled` events were handled and `lettered` dead-lettered.
fn handled_and_lettered(handled: usize, lettered: u64) -> impl Fn(&ConsumerStats, usize) -> bool {
    move |stats, n| {
        n == handled
            && stats
                .dead_lettered
                .load(std::sync::atomic::Ordering::Relaxed)
                == lettered
    }
}

const QUICK: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial_delay: Duration::from_millis(300),
    factor: 2.0,
    max_delay: Duration::from_secs(5),
    jitter: 0.0,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_event_waits_on_its_partition_only_and_keeps_its_order() {
    let s = setup(2).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    // slow-1 fails twice, each time waiting BACKOFF, then works.
    const BACKOFF: Duration = Duration::from_secs(3);
    let policy = RetryPolicy {
        initial_delay: BACKOFF,
        factor: 1.0,
        ..QUICK
    };
    let mut sent = Vec::new();
    for i in 0..20 {
        let id = if i == 0 {
            "slow-1".to_owned()
        } else {
            format!("order-{i}")
        };
        let delivery = producer.send(&order(&id)).await.unwrap();
        sent.push((id, delivery.partition, delivery.offset));
    }
    let slow_partition = sent[0].1;
    let orders = Orders::new(|id, attempt| {
        (id == "slow-1" && attempt <= 2).then(|| HandlerError::retryable("database busy"))
    });
    // Once slow-1 has failed, 20 more events go out: those of the other
    // partition must be handled while slow-1 waits, whatever was fetched
    // first, and not a backoff later.
    let late = {
        let (attempts, producer) = (orders.attempts.clone(), producer.clone());
        tokio::spawn(async move {
            while !attempts.lock().unwrap().contains_key("slow-1") {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let failed_at = Instant::now();
            let sends = (20..40).map(|i| {
                let producer = producer.clone();
                async move {
                    let id = format!("late-{i}");
                    let delivery = producer.send(&order(&id)).await.unwrap();
                    (id, delivery.partition)
                }
            });
            (failed_at, futures_util::future::join_all(sends).await)
        })
    };
    let stats = consume(&s, &orders, policy, |_, handled| handled == 40).await;
    let (failed_at, late) = late.await.unwrap();

    let handled = orders.handled.lock().unwrap().clone();
    assert_eq!(
        orders.attempts.lock().unwrap()["slow-1"],
        3,
        "two failures, then success"
    );
    assert_eq!(stats.retried.load(std::sync::atomic::Ordering::Relaxed), 2);
    // Each partition in offset order, the slow event included.
    for partition in [0, 1] {
        let offsets: Vec<i64> = handled
            .iter()
            .filter(|h| h.1 == partition)
            .map(|h| h.2)
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: {offsets:?}"
        );
    }
    // The other partition's late events did not wait for the backoff: they
    // were handled well within it (producing and fetching take well under
    // a second here), and before slow-1 succeeded.
    let slow_done = handled.iter().find(|h| h.0 == "slow-1").unwrap().3;
    let late_elsewhere: Vec<&String> = late
        .iter()
        .filter(|(_, partition)| *partition != slow_partition)
        .map(|(id, _)| id)
        .collect();
    assert!(
        !late_elsewhere.is_empty(),
        "no late event on the other partition"
    );
    for id in late_elsewhere {
        let at = handled.iter().find(|h| &h.0 == id).unwrap().3;
        assert!(
            at < slow_done && at.duration_since(failed_at) < BACKOFF / 2,
            "{id} on the other partition waited for slow-1's retries ({:?} after its failure)",
            at.duration_since(failed_at)
        );
    }
}

/// A partition paused while its event waits for a retry is fetched again as
/// soon as it resumes. librdkafka's resume alone does not wake its broker
/// thread, which idled then for up to a second (here about 0.9 s: the
/// second less the retry's 100 ms) before fetching the events sent meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_resumed_after_a_retry_is_fetched_again_at_once() {
    let s = setup(1).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    let orders = Orders::new(|id, attempt| {
        (id.starts_with("fails-once") && attempt == 1)
            .then(|| HandlerError::retryable("database busy"))
    });
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(100),
        factor: 1.0,
        ..QUICK
    };
    let group = common::unique_name("resume");
    let running = common::start_consumer(member(&s, &orders, policy, &group));
    let wait_for_handled = |n: usize| {
        let orders = orders.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while orders.handled.lock().unwrap().len() < n {
                assert!(
                    Instant::now() < deadline,
                    "{} handled",
                    orders.handled_ids().len()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // The first event has the writer type looked up; each one that fails
    // then comes alone, and its partition is paused while it waits. How long
    // librdkafka alone idles depends on when its thread last woke: four
    // rounds make the sum of its waits far longer than the bound.
    producer.send(&order("warm-up")).await.unwrap();
    wait_for_handled(1).await;
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        let failing = format!("fails-once-{round}");
        producer.send(&order(&failing)).await.unwrap();
        while !orders.attempts.lock().unwrap().contains_key(&failing) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        producer
            .send(&order(&format!("next-{round}")))
            .await
            .unwrap();
        wait_for_handled(3 + 2 * round).await;
    }
    running.stop().await;

    let handled = orders.handled.lock().unwrap().clone();
    let ids: Vec<&str> = handled.iter().map(|h| h.0.as_str()).collect();
    let expected: Vec<String> = std::iter::once("warm-up".to_owned())
        .chain((0..ROUNDS).flat_map(|r| [format!("fails-once-{r}"), format!("next-{r}")]))
        .collect();
    assert_eq!(ids, expected);
    let waits: Vec<Duration> = handled[1..]
        .chunks(2)
        .map(|pair| pair[1].3.duration_since(pair[0].3))
        .collect();
    let total: Duration = waits.iter().sum();
    assert!(
        total < Duration::from_millis(400),
        "the events after retried ones waited {waits:?} for their partition to be fetched again"
    );
    common::figure(&format!(
        "events sent while their partition was paused for a retry: handled {:?} after the retry",
        waits
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permanent_failures_and_exhausted_retries_go_to_the_dead_letter_topic() {
    let s = setup(1).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    let mut sent = HashMap::new();
    let ids = [
        "ok-1",
        "refused",
        "ok-2",
        "flaky",
        "panics-once",
        "panics",
        "ok-3",
    ];
    for id in ids {
        let delivery = producer.send(&order(id)).await.unwrap();
        sent.insert(id, delivery);
    }
    // A panicking handler fails its event like a retryable error.
    let orders = Orders::new(|id, attempt| match id {
        "refused" => Some(HandlerError::permanent("order refused by policy")),
        "flaky" => Some(HandlerError::retryable("timeout")),
        "panics" => panic!("boom"),
        "panics-once" if attempt == 1 => panic!("once"),
        _ => None,
    });
    let stats = consume(&s, &orders, QUICK, handled_and_lettered(4, 3)).await;
    let attempts = orders.attempts.lock().unwrap().clone();
    assert_eq!(attempts["refused"], 1, "no retry for a permanent error");
    assert_eq!(attempts["flaky"], 3, "max_attempts");
    assert_eq!(attempts["panics"], 3, "a panic is retried like a timeout");
    assert_eq!(attempts["panics-once"], 2);
    assert!(orders.handled_ids().contains(&"panics-once".to_owned()));

    let letters = dead_letters(&s);
    assert_eq!(letters.len(), 3);
    for (id, reason, attempts, error) in [
        ("refused", "permanent", "1", "order refused by policy"),
        ("flaky", "retries-exhausted", "3", "timeout"),
        (
            "panics",
            "retries-exhausted",
            "3",
            "the handler panicked: boom",
        ),
    ] {
        let (key, value, headers) = letters
            .iter()
            .find(|l| l.0.as_deref() == Some(id.as_bytes()))
            .unwrap_or_else(|| panic!("{id} not dead-lettered"));
        assert_eq!(key.as_deref(), Some(id.as_bytes()));
        let header = wire::read_header(value.as_ref().unwrap()).unwrap();
        assert_eq!(
            header.indexes.as_slice(),
            OrderPlaced::MESSAGE_INDEXES,
            "the original bytes, unchanged"
        );
        assert_eq!(headers[dlq::REASON], reason);
        assert_eq!(headers[dlq::ATTEMPTS], attempts);
        assert_eq!(headers[dlq::ERROR], error);
        assert_eq!(headers[dlq::ORIGINAL_TOPIC], s.topic);
        assert_eq!(
            headers[dlq::ORIGINAL_PARTITION],
            sent[id].partition.to_string()
        );
        assert_eq!(headers[dlq::ORIGINAL_OFFSET], sent[id].offset.to_string());
        assert!(headers[dlq::ORIGINAL_TIMESTAMP].parse::<i64>().unwrap() > 0);
        assert!(headers[dlq::GROUP].starts_with("reliability-"));
        assert!(headers[dlq::FAILED_AT].parse::<i64>().unwrap() > 0);
        assert_eq!(
            headers["protobus-event-id"], sent[id].event_id,
            "original headers kept"
        );
    }
    assert_eq!(
        stats
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_records_are_dead_lettered_and_the_consumer_keeps_going() {
    const GOOD: usize = 10_000;
    const POISON: usize = 1_000;
    let s = setup(3).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    let schema_id = s.schemas.id_of::<OrderPlaced>().await.unwrap();
    let raw: ThreadedProducer<DefaultProducerContext> = s.kafka.config().create().unwrap();
    let poison = |i: usize| -> Vec<u8> {
        match i % 4 {
            0 => format!("{{\"not\":\"framed\",\"n\":{i}}}").into_bytes(),
            1 => {
                let mut frame = Vec::new();
                wire::write_header(&mut frame, 999_999, &[0]);
                frame.push(0x0a);
                frame
            }
            2 => {
                let mut frame = Vec::new();
                wire::write_header(&mut frame, schema_id, &[0]);
                frame.extend_from_slice(&[0x0a, 0xff, 0x01]);
                frame
            }
            _ => vec![0, 0, 0],
        }
    };
    let mut tasks = Vec::new();
    for i in 0..GOOD {
        if i % 10 == 0 {
            let key = format!("poison-{i}");
            let value = poison(i / 10);
            raw.send(BaseRecord::to(&s.topic).key(&key).payload(&value))
                .unwrap();
        }
        let producer = producer.clone();
        tasks.push(tokio::spawn(async move {
            producer.send(&order(&format!("good-{i}"))).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    raw.flush(Duration::from_secs(30)).unwrap();

    let orders = Orders::new(|_, _| None);
    let stats = consume(
        &s,
        &orders,
        QUICK,
        handled_and_lettered(GOOD, POISON as u64),
    )
    .await;
    let letters = dead_letters(&s);
    let reasons: Vec<&str> = letters.iter().map(|l| l.2[dlq::REASON].as_str()).collect();
    assert!(
        reasons.iter().all(|r| *r == "poison"),
        "{:?}",
        &reasons[..5]
    );
    let errors: std::collections::BTreeSet<String> = letters
        .iter()
        .map(|l| {
            l.2[dlq::ERROR]
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let handled = orders.handled_ids();
    // Every sent id, good and poison, matched with what was handled or
    // dead-lettered (a poison record's key is its id).
    let sent: Vec<String> = (0..GOOD)
        .map(|i| format!("good-{i}"))
        .chain((0..GOOD).step_by(10).map(|i| format!("poison-{i}")))
        .collect();
    let lettered: Vec<String> = letters
        .iter()
        .map(|l| String::from_utf8_lossy(l.0.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let delivery = common::Delivery::check(
        sent.iter().map(String::as_str),
        handled.iter().chain(&lettered).map(String::as_str),
    );
    common::figure(&format!(
        "poison: sent={} handled={} dead_lettered={} lost={} duplicates={} reasons={errors:?}",
        sent.len(),
        handled.len(),
        letters.len(),
        delivery.lost.len(),
        delivery.extra_copies,
    ));
    assert_eq!(
        delivery,
        common::Delivery::default(),
        "every event handled or dead-lettered exactly once"
    );
    assert_eq!(letters.len(), POISON);
    assert_eq!(handled.len(), GOOD);
    assert_eq!(
        stats.poison.load(std::sync::atomic::Ordering::Relaxed),
        POISON as u64
    );
}

/// A member reads a partition as soon as it is assigned: its first records
/// must wake the run loop, for nothing else would here until the first
/// commit tick, a minute away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_reads_a_partition_as_soon_as_it_is_assigned() {
    let s = setup(1).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    producer.send(&order("first")).await.unwrap();
    let orders = Orders::new(|_, _| None);
    let mut settings = ConsumerSettings::new(s.kafka.bootstrap(), &common::unique_name("assigned"));
    settings.topic_prefix = s.prefix.clone();
    settings.commit_interval = Duration::from_secs(60);
    let consumer = EventConsumer::new(
        settings,
        s.schemas.clone(),
        ShopOrdersDispatcher(orders.clone()),
    )
    .unwrap();
    let started = Instant::now();
    let running = common::start_consumer(consumer);
    while orders.handled_ids().is_empty() && started.elapsed() < Duration::from_secs(70) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    running.stop().await;
    common::figure(&format!(
        "first event after start (group join included): {} ms",
        took.as_millis()
    ));
    assert_eq!(orders.handled_ids(), ["first"]);
    // The group join takes a few seconds at most; the stall, the commit
    // interval.
    assert!(took < Duration::from_secs(20), "first event after {took:?}");
}

/// Headers whose first name is not UTF-8 (Kafka allows any bytes;
/// librdkafka's own headers take them), then `kept: yes`.
fn headers_with_a_name_not_utf8() -> OwnedHeaders {
    let headers = OwnedHeaders::new_with_capacity(2);
    // rdkafka's headers take `&str` names. Its borrowed view is librdkafka's
    // list itself (a zero-sized type at the list's address).
    let list = std::ptr::from_ref::<BorrowedHeaders>(headers.as_borrowed())
        .cast_mut()
        .cast::<rdkafka::bindings::rd_kafka_headers_t>();
    let (name, value) = (b"\xffodd", b"v");
    #[allow(unsafe_code)]
    // SAFETY: `headers` owns the live list; librdkafka copies name and value.
    let added = unsafe {
        rdkafka::bindings::rd_kafka_header_add(
            list,
            name.as_ptr().cast(),
            name.len() as isize,
            value.as_ptr().cast(),
            value.len() as isize,
        )
    };
    assert_eq!(
        added,
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
    );
    headers.insert(Header {
        key: "kept",
        value: Some("yes"),
    })
}

/// A header name that is not UTF-8 neither stops the consumer nor hides
/// the other headers: the event is handled with them, and a poison record
/// carrying it is dead-lettered with them (it alone left out).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_header_name_that_is_not_utf8_is_left_out_and_the_record_handled() {
    let s = setup(1).await;
    let schema_id = s.schemas.id_of::<OrderPlaced>().await.unwrap();
    let raw: ThreadedProducer<DefaultProducerContext> = s.kafka.config().create().unwrap();
    let mut good = Vec::new();
    wire::write_header(&mut good, schema_id, &[0]);
    prost::Message::encode(&order("odd-header"), &mut good).unwrap();
    let poison = b"not a frame".to_vec();
    for (key, value) in [("odd-header", &good), ("odd-poison", &poison)] {
        let record = BaseRecord::to(&s.topic)
            .key(key)
            .payload(value)
            .headers(headers_with_a_name_not_utf8());
        raw.send(record).map_err(|(err, _)| err).unwrap();
    }
    raw.flush(Duration::from_secs(30)).unwrap();

    let orders = Orders::new(|_, _| None);
    consume(&s, &orders, QUICK, handled_and_lettered(1, 1)).await;
    let names = orders.header_names.lock().unwrap()["odd-header"].clone();
    let letters = dead_letters(&s);
    common::figure(&format!(
        "header name not UTF-8: handled with headers {names:?}, dead-lettered {}",
        letters.len()
    ));
    assert_eq!(names, ["kept"]);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0.as_deref(), Some(&b"odd-poison"[..]));
    assert_eq!(letters[0].2["kept"], "yes");
    assert_eq!(letters[0].2[dlq::REASON], "poison");
}

/// The checker itself, with a deliberate loss and a deliberate duplicate:
/// counting alone would read them as nothing wrong.
#[test]
fn the_delivery_checker_catches_a_loss_hidden_by_a_duplicate() {
    let sent = ["a", "b", "c"];
    let delivery = common::Delivery::check(sent, ["a", "a", "c"]);
    assert_eq!(delivery.lost, ["b"]);
    assert_eq!(delivery.duplicated, ["a"]);
    assert_eq!(delivery.extra_copies, 1);
    let delivery = common::Delivery::check(sent, ["a", "b", "c", "z"]);
    assert_eq!(delivery.unexpected, ["z"]);
    assert_eq!(
        common::Delivery::check(sent, ["c", "b", "a"]),
        common::Delivery::default()
    );
}

/// A dead-letter writer whose producer is in a fatal state (raised with
/// librdkafka's `rd_kafka_test_fatal_error`, as a broker's sequence-gap
/// answer would) is replaced: the dead letter it was writing is retried and
/// lands once, and the partition moves on only after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_writer_in_a_fatal_state_is_replaced_and_writes_once() {
    let s = setup(1).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    for id in ["ok-1", "refused", "ok-2"] {
        producer.send(&order(id)).await.unwrap();
    }
    let orders = Orders::new(|id, _| {
        (id == "refused").then(|| HandlerError::permanent("order refused by policy"))
    });
    let group = common::unique_name("reliability");
    let consumer = member(&s, &orders, QUICK, &group);
    let faults = consumer.dead_letter_fault_injector();
    assert!(faults.fail_fatally("sequence gap, injected"));
    run_until(consumer, &orders, handled_and_lettered(2, 1)).await;

    assert_eq!(faults.replacements(), 1, "the writer was replaced once");
    let letters = dead_letters(&s);
    assert_eq!(letters.len(), 1, "one dead letter, written once");
    assert_eq!(letters[0].0.as_deref(), Some(&b"refused"[..]));
    assert_eq!(letters[0].2[dlq::REASON], "permanent");
    let handled = orders.handled_ids();
    assert_eq!(
        handled,
        ["ok-1", "ok-2"],
        "ok-2 handled after the dead letter, once"
    );
    assert_eq!(
        s.kafka.committed_offsets(&group, &s.topic, 1)[&0],
        3,
        "committed past all three"
    );
}

/// A partition paused to retry an event, then revoked, is no longer this
/// member's to retry: its pending retry is dropped (the new owner reads the
/// event again and retries it itself). Both members of a KIP-848 group
/// fail every event with a long backoff; when the second joins, the first
/// gives up one of its two partitions and waits on one retry, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_partition_leaves_no_pending_retry_behind() {
    use std::sync::atomic::Ordering::Relaxed;
    let s = setup(2).await;
    let producer = s.kafka.event_producer(s.schemas.clone(), &s.prefix, &[]);
    let mut partitions = std::collections::BTreeSet::new();
    for i in 0..10 {
        partitions.insert(
            producer
                .send(&order(&format!("stuck-{i}")))
                .await
                .unwrap()
                .partition,
        );
    }
    assert_eq!(partitions.len(), 2, "events on both partitions");
    let orders = Orders::new(|_, _| Some(HandlerError::retryable("database down")));
    let group = common::unique_name("reliability");
    let slow = RetryPolicy {
        max_attempts: 100,
        initial_delay: Duration::from_secs(600),
        max_delay: Duration::from_secs(600),
        ..QUICK
    };
    let start = |name: &str| {
        let mut settings = ConsumerSettings::new(s.kafka.bootstrap(), &group);
        settings.topic_prefix = s.prefix.clone();
        settings.retry = slow.clone();
        settings
            .kafka
            .set("group.protocol", "consumer")
            .set("client.id", name);
        let consumer = EventConsumer::new(
            settings,
            s.schemas.clone(),
            ShopOrdersDispatcher(orders.clone()),
        )
        .unwrap();
        let stats = consumer.stats();
        (common::start_consumer(consumer), stats)
    };
    let wait_for = |stats: &Arc<ConsumerStats>, waiting: u64, what: &str| {
        let stats = stats.clone();
        let what = what.to_owned();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while stats.waiting_to_retry.load(Relaxed) != waiting {
                assert!(Instant::now() < deadline, "{what}: {stats:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (first, first_stats) = start("first");
    wait_for(&first_stats, 2, "the first member pauses both partitions").await;
    let (second, second_stats) = start("second");
    wait_for(
        &second_stats,
        1,
        "the second member takes one partition and its retry",
    )
    .await;
    wait_for(
        &first_stats,
        1,
        "the first member forgets the retry it gave up",
    )
    .await;
    second.stop().await;
    first.stop().await;
}
