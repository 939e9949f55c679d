//! Concurrent handling against the real broker: per-key order holds while
//! keys run at once, no two calls of one lane overlap, and the committed
//! offset never passes an event still in flight while handlers finish out of
//! order on purpose.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, EventConsumer, EventContext, EventProducer, HandlerError, ProcessingOrder,
    SendOptions,
};

/// What the handler calls did, seen from inside them.
#[derive(Debug, Default)]
struct Seen {
    running: usize,
    max_running: usize,
    running_keys: HashMap<String, usize>,
    running_partitions: HashMap<i32, usize>,
    /// Calls that began while another call of the same key was running.
    key_overlaps: usize,
    /// Calls that began while another call of the same partition was running.
    partition_overlaps: usize,
    /// Per key, the last sequence number that began.
    last_seq: HashMap<String, u64>,
    /// Events whose sequence number was not above their key's last one.
    out_of_order: Vec<String>,
    /// Per partition, the offsets whose call returned.
    finished: BTreeMap<i32, BTreeSet<i64>>,
    /// Every (key, sequence number) handled, with repeats.
    handled: Vec<(String, u64)>,
}

impl Seen {
    /// Per partition, the lowest offset not finished (topics start at 0 and
    /// the idempotent producer leaves no gaps).
    fn lowest_unfinished(&self, partitions: i32) -> BTreeMap<i32, i64> {
        (0..partitions)
            .map(|p| {
                let done = self.finished.get(&p);
                let lowest = (0..)
                    .find(|o| !done.is_some_and(|d| d.contains(o)))
                    .unwrap();
                (p, lowest)
            })
            .collect()
    }
}

/// A handler that watches its own calls; `wait` says how long the call for
/// each event takes.
#[derive(Clone)]
struct Probe {
    seen: Arc<Mutex<Seen>>,
    wait: Wait,
}

/// How long a probe's call takes.
#[derive(Clone)]
enum Wait {
    /// As long as the function says for the `n`th event sent.
    Sleep(fn(u64) -> Duration),
    /// No time, but for the gate's event, whose call waits until the test
    /// opens the gate.
    Gate(Arc<Gate>),
}

#[derive(Default)]
struct Gate {
    /// The number sent of the event that waits.
    at: u64,
    waiting: AtomicBool,
    open: AtomicBool,
}

impl Probe {
    fn new(delay: fn(u64) -> Duration) -> Self {
        Probe {
            seen: Arc::default(),
            wait: Wait::Sleep(delay),
        }
    }

    fn gated(gate: Arc<Gate>) -> Self {
        Probe {
            seen: Arc::default(),
            wait: Wait::Gate(gate),
        }
    }

    async fn handle(&self, e: &OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        let (seq, n) = e.customer_id.split_once('/').expect("seq/n");
        let (seq, n): (u64, u64) = (seq.parse().unwrap(), n.parse().unwrap());
        let key = e.order_id.clone();
        {
            let mut seen = self.seen.lock().unwrap();
            seen.running += 1;
            seen.max_running = seen.max_running.max(seen.running);
            let same_key = seen.running_keys.entry(key.clone()).or_default();
            *same_key += 1;
            if *same_key > 1 {
                seen.key_overlaps += 1;
            }
            let same_partition = seen.running_partitions.entry(c.partition()).or_default();
            *same_partition += 1;
            if *same_partition > 1 {
                seen.partition_overlaps += 1;
            }
            if seen.last_seq.get(&key).is_some_and(|&last| seq <= last) {
                seen.out_of_order.push(format!("{key}/{seq}"));
            }
            seen.last_seq.insert(key.clone(), seq);
        }
        match &self.wait {
            Wait::Sleep(delay) => tokio::time::sleep(delay(n)).await,
            Wait::Gate(gate) if gate.at == n => {
                gate.waiting.store(true, SeqCst);
                while !gate.open.load(SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Wait::Gate(_) => {}
        }
        let mut seen = self.seen.lock().unwrap();
        seen.running -= 1;
        *seen.running_keys.get_mut(&key).unwrap() -= 1;
        *seen.running_partitions.get_mut(&c.partition()).unwrap() -= 1;
        seen.finished
            .entry(c.partition())
            .or_default()
            .insert(c.offset());
        seen.handled.push((key, seq));
        Ok(())
    }
}

impl ShopOrdersHandler for Probe {
    async fn order_placed(&self, e: OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(&e, c).await
    }
    async fn order_paid(&self, _: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        unreachable!("only orders placed are sent")
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        unreachable!("only orders placed are sent")
    }
}

struct Setup {
    kafka: common::Kafka,
    prefix: String,
    topic: String,
    producer: EventProducer,
    partitions: i32,
}

async fn setup(partitions: i32) -> Setup {
    let common::OrdersTopic {
        kafka,
        prefix,
        topic,
        producer,
    } = common::orders_topic("concurrency", partitions).await;
    Setup {
        kafka,
        prefix,
        topic,
        producer,
        partitions,
    }
}

impl Setup {
    /// Sends `n` orders over `keys` keys (the order id), each carrying
    /// "sequence number within its key/number sent", in order.
    async fn send(&self, n: u64, keys: u64) {
        let mut pending = Vec::new();
        for i in 0..n {
            let order = OrderPlaced {
                order_id: format!("key-{}", i % keys),
                customer_id: format!("{}/{i}", i / keys),
                ..OrderPlaced::default()
            };
            pending.push(
                self.producer
                    .enqueue(&order, SendOptions::default())
                    .await
                    .unwrap(),
            );
        }
        for delivery in pending {
            delivery.await.unwrap();
        }
    }

    fn member(
        &self,
        group: &str,
        order: ProcessingOrder,
        max_in_flight: usize,
        probe: &Probe,
    ) -> EventConsumer<ShopOrdersDispatcher<Probe>> {
        let mut settings = ConsumerSettings::new(self.kafka.bootstrap(), group);
        settings.topic_prefix = self.prefix.clone();
        settings.order = order;
        settings.max_in_flight = max_in_flight;
        settings.commit_interval = Duration::from_millis(100);
        let schemas = self.producer.registry().clone();
        EventConsumer::new(settings, schemas, ShopOrdersDispatcher(probe.clone())).unwrap()
    }
}

/// Waits until `probe` handled `n` events (at most 120 s).
async fn wait_for(probe: &Probe, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while probe.seen.lock().unwrap().handled.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} handled",
            probe.seen.lock().unwrap().handled.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each (key, sequence number) sent was handled exactly once.
fn assert_once_each(seen: &Seen, n: u64, keys: u64) {
    let sent: Vec<String> = (0..n)
        .map(|i| format!("key-{}/{}", i % keys, i / keys))
        .collect();
    let received: Vec<String> = seen
        .handled
        .iter()
        .map(|(k, s)| format!("{k}/{s}"))
        .collect();
    let delivery = common::Delivery::check(
        sent.iter().map(String::as_str),
        received.iter().map(String::as_str),
    );
    assert_eq!(delivery, common::Delivery::default());
}

/// 1 to 6 ms, varying from event to event, so that calls finish out of order.
fn jittered(n: u64) -> Duration {
    Duration::from_millis(1 + (n * 7919) % 6)
}

#[tokio::test(flavor = "multi_thread")]
async fn per_key_order_holds_while_keys_of_one_partition_run_at_once() {
    let s = setup(3).await;
    let (n, keys) = (3000, 120);
    s.send(n, keys).await;
    let probe = Probe::new(jittered);
    let started = Instant::now();
    let member = s.member(
        &common::unique_name("per-key"),
        ProcessingOrder::Key,
        64,
        &probe,
    );
    let running = common::start_consumer(member);
    wait_for(&probe, n as usize).await;
    let seconds = started.elapsed().as_secs_f64();
    running.stop().await;

    let seen = probe.seen.lock().unwrap();
    assert_eq!(seen.key_overlaps, 0, "two calls of one key overlapped");
    assert!(
        seen.out_of_order.is_empty(),
        "out of key order: {:?}",
        &seen.out_of_order[..5.min(seen.out_of_order.len())]
    );
    assert!(
        seen.partition_overlaps > 0 && seen.max_running > 3,
        "keys of one partition never ran at once (at most {} calls)",
        seen.max_running
    );
    assert!(
        seen.max_running <= 64,
        "{} calls at once, over max_in_flight",
        seen.max_running
    );
    assert_once_each(&seen, n, keys);
    common::figure(&format!(
        "concurrency per key: events={n} keys={keys} partitions=3 max_in_flight=64 \
         most_at_once={} key_overlaps=0 out_of_order=0 seconds={seconds:.1}",
        seen.max_running
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn partition_order_runs_partitions_at_once_and_each_one_in_order() {
    let s = setup(4).await;
    let (n, keys) = (800, 40);
    s.send(n, keys).await;
    let probe = Probe::new(jittered);
    let member = s.member(
        &common::unique_name("per-partition"),
        ProcessingOrder::Partition,
        64,
        &probe,
    );
    let running = common::start_consumer(member);
    wait_for(&probe, n as usize).await;
    running.stop().await;

    let seen = probe.seen.lock().unwrap();
    assert_eq!(
        seen.partition_overlaps, 0,
        "two calls of one partition overlapped"
    );
    assert!(
        seen.out_of_order.is_empty(),
        "out of order: {:?}",
        seen.out_of_order
    );
    assert!(
        (2..=4).contains(&seen.max_running),
        "partitions ran one at a time, or more calls than partitions: {}",
        seen.max_running
    );
    assert_once_each(&seen, n, keys);
}

/// Every 100th event takes 700 ms, the others 10–20 ms: with 32 calls in
/// flight, dozens finish above each slow one. Sampled every 20 ms for about
/// two seconds, the group's committed offset must never pass the lowest
/// offset whose call has not returned.
#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_never_pass_an_event_still_in_flight() {
    fn slow_every_100th(n: u64) -> Duration {
        if n % 100 == 7 {
            Duration::from_millis(700)
        } else {
            Duration::from_millis(10) + jittered(n) * 2
        }
    }
    let s = setup(2).await;
    let (n, keys) = (3000, 300);
    s.send(n, keys).await;
    let probe = Probe::new(slow_every_100th);
    let group = common::unique_name("offsets");
    let member = s.member(&group, ProcessingOrder::Key, 32, &probe);
    let running = common::start_consumer(member);

    let sampling = {
        let probe = probe.clone();
        let (topic, partitions) = (s.topic.clone(), s.partitions);
        let reader: rdkafka::consumer::BaseConsumer =
            s.kafka.config().set("group.id", &group).create().unwrap();
        tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer as _;
            let mut list = rdkafka::TopicPartitionList::new();
            for partition in 0..partitions {
                list.add_partition(&topic, partition);
            }
            let (mut samples, mut ahead_of_a_gap) = (0, 0);
            // Bounded: a consumer that stalls fails `wait_for`, not the run.
            let deadline = Instant::now() + Duration::from_secs(100);
            while probe.seen.lock().unwrap().handled.len() < n as usize && Instant::now() < deadline
            {
                // Committed first: the lowest unfinished offset only grows,
                // so reading it second can only make the check easier.
                let committed: BTreeMap<i32, i64> = reader
                    .committed_offsets(list.clone(), Duration::from_secs(10))
                    .unwrap()
                    .elements()
                    .iter()
                    .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
                    .collect();
                let seen = probe.seen.lock().unwrap();
                let lowest = seen.lowest_unfinished(partitions);
                for (p, &c) in &committed {
                    if c > lowest[p] {
                        return Err(format!(
                            "partition {p}: committed {c} passes unfinished offset {}",
                            lowest[p]
                        ));
                    }
                    let finished_above = seen
                        .finished
                        .get(p)
                        .is_some_and(|f| f.range(lowest[p]..).next().is_some());
                    if c > 0 && finished_above {
                        ahead_of_a_gap += 1;
                    }
                }
                samples += 1;
                drop(seen);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((samples, ahead_of_a_gap))
        })
    };
    wait_for(&probe, n as usize).await;
    let sampled = sampling.await.unwrap();
    running.stop().await;
    let (samples, ahead_of_a_gap) = sampled.unwrap_or_else(|violation| panic!("{violation}"));

    assert!(
        ahead_of_a_gap > 0,
        "no sample caught calls finished above an unfinished one ({samples} samples): \
         the check proved nothing"
    );
    let seen = probe.seen.lock().unwrap();
    assert_once_each(&seen, n, keys);
    assert_eq!(
        s.kafka.committed_offsets(&group, &s.topic, s.partitions),
        s.kafka.end_offsets(&s.topic, s.partitions),
        "once everything is finished, everything is committed"
    );
    common::figure(&format!(
        "committed never passes unfinished: events={n} samples={samples} \
         samples_with_out_of_order_completions={ahead_of_a_gap} most_at_once={}",
        seen.max_running
    ));
}

/// The event whose call waits at the gate.
const AT_THE_GATE: u64 = 250;

/// With one key, the sequence numbers of the events handled, in order.
fn handled_in_order(probe: &Probe) -> Vec<u64> {
    let seen = probe.seen.lock().unwrap();
    seen.handled.iter().map(|(_, seq)| *seq).collect()
}

/// Events that wait for their partition start as a run, handled one after
/// another while their calls return without waiting. One call that waits
/// (the 251st event of the partition) must not hold back the commit of the
/// events finished before it in its run, nor let the events after it start.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_waits_holds_back_neither_the_commit_before_it_nor_the_order_after_it() {
    let s = setup(1).await;
    let n = 400;
    s.send(n, 1).await;
    let gate = Arc::new(Gate {
        at: AT_THE_GATE,
        ..Gate::default()
    });
    let probe = Probe::gated(gate.clone());
    let group = common::unique_name("gate");
    let member = s.member(&group, ProcessingOrder::Partition, 64, &probe);
    let running = common::start_consumer(member);

    let deadline = Instant::now() + Duration::from_secs(60);
    while !gate.waiting.load(SeqCst) {
        assert!(Instant::now() < deadline, "the gate's event never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // While it waits: everything before it committed, nothing after it handled.
    let committed = loop {
        let committed = s.kafka.committed_offsets(&group, &s.topic, 1)[&0];
        if committed == AT_THE_GATE as i64 || Instant::now() > deadline {
            break committed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let handled_meanwhile = handled_in_order(&probe);
    // Open before judging, so that a failure does not leave the call waiting.
    gate.open.store(true, SeqCst);
    assert_eq!(
        committed, AT_THE_GATE as i64,
        "the events before the waiting call are committed while it waits"
    );
    assert_eq!(
        handled_meanwhile,
        (0..AT_THE_GATE).collect::<Vec<_>>(),
        "in partition order nothing after the waiting call starts"
    );
    wait_for(&probe, n as usize).await;
    running.stop().await;
    assert_eq!(handled_in_order(&probe), (0..n).collect::<Vec<_>>());
    assert_eq!(
        s.kafka.committed_offsets(&group, &s.topic, 1),
        s.kafka.end_offsets(&s.topic, 1)
    );
}
