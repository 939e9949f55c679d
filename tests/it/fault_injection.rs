//! Fault injection against the real broker, each scenario bounded in time and
//! printing one figure line: sent, acknowledged, consumed, duplicates, lost.
//! The members handle in key order with up to 64 calls at once, handlers
//! taking a few milliseconds, so that calls finish out of order while
//! partitions move.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{ShopOrdersDispatcher, ShopOrdersHandler};
use protobus_runtime::{
    ConsumerSettings, Event, EventConsumer, EventContext, HandlerError, ProcessingOrder,
};

/// The members' concurrency: key order, up to this many calls at once.
const IN_FLIGHT: usize = 64;

/// Counts each event id handled, across every member of a group, and how
/// many each member handled (by the member's number).
#[derive(Clone, Default)]
struct Tally {
    seen: Arc<Mutex<HashMap<String, u32>>>,
    by_member: Arc<Mutex<HashMap<usize, u32>>>,
    member: usize,
}

impl Tally {
    /// The same tally, for member `member`.
    fn for_member(&self, member: usize) -> Self {
        Tally {
            member,
            ..self.clone()
        }
    }

    /// Takes 1 to 3 ms, by offset, so that concurrent calls finish out of order.
    async fn handle(&self, context: &EventContext<'_>) -> Result<(), HandlerError> {
        let offset = u64::try_from(context.offset()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(1 + offset % 3)).await;
        let id = context.event_id().unwrap_or_default().to_owned();
        *self.seen.lock().unwrap().entry(id).or_default() += 1;
        *self
            .by_member
            .lock()
            .unwrap()
            .entry(self.member)
            .or_default() += 1;
        Ok(())
    }

    fn distinct(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Every handled id, once per time it was handled.
    fn handled(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .flat_map(|(id, n)| std::iter::repeat_n(id.clone(), *n as usize))
            .collect()
    }
}

impl ShopOrdersHandler for Tally {
    async fn order_placed(&self, _: OrderPlaced, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(c).await
    }
    async fn order_paid(&self, _: OrderPaid, c: &EventContext<'_>) -> Result<(), HandlerError> {
        self.handle(c).await
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.handle(c).await
    }
}

/// A committed offset that moved backwards: partition, before, after.
type Backwards = (i32, i64, i64);

/// What [`CommittedWatcher`] saw.
struct Samples {
    /// Samples read.
    taken: usize,
    /// Reads that failed (the coordinator can be busy during a rebalance).
    failed: usize,
    /// Every committed offset that moved backwards.
    backwards: Vec<Backwards>,
}

/// Samples a group's committed offsets on a thread of its own and records
/// every one that moved backwards.
struct CommittedWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Samples>,
}

impl CommittedWatcher {
    fn start(mut config: rdkafka::ClientConfig, group: &str, topic: &str, partitions: i32) -> Self {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let consumer: BaseConsumer = config.set("group.id", group).create().unwrap();
        let mut list = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let thread = std::thread::spawn(move || {
            let mut samples = Samples {
                taken: 0,
                failed: 0,
                backwards: Vec::new(),
            };
            let mut last: HashMap<i32, i64> = HashMap::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match consumer.committed_offsets(list.clone(), Duration::from_secs(5)) {
                    Err(_) => samples.failed += 1,
                    Ok(committed) => {
                        samples.taken += 1;
                        for element in committed.elements() {
                            let Some(offset) = element.offset().to_raw().filter(|&o| o >= 0) else {
                                continue;
                            };
                            let before = last.insert(element.partition(), offset);
                            if let Some(before) = before.filter(|&b| b > offset) {
                                samples
                                    .backwards
                                    .push((element.partition(), before, offset));
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        CommittedWatcher { stop, thread }
    }

    fn stop(self) -> Samples {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The classic protocol with cooperative-sticky assignment. A member that
/// closes while its JoinGroup is in flight sends no LeaveGroup (librdkafka
/// 2.12), so the group waits for its session to time out before the next
/// assignment: a short session keeps that stall, not a loss, short.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_members_joining_and_leaving_during_load_lose_nothing() {
    churn(
        "churn (cooperative-sticky)",
        &[
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("session.timeout.ms", "10000"),
        ],
    )
    .await;
}

/// Kafka 4's consumer group protocol (KIP-848): the broker assigns, members
/// leave with a heartbeat whatever state they are in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_members_joining_and_leaving_under_the_kip848_protocol_lose_nothing() {
    churn("churn (KIP-848)", &[("group.protocol", "consumer")]).await;
}

/// Ten members join one by one and, once the group has shared out the
/// partitions, leave one by one, while events are sent (batches of 500 until
/// the last has left, then five more); one member stays throughout. The scenario checks that the churn it claims happened:
/// members left while events were still being sent, and several members
/// handled events.
async fn churn(label: &str, group_settings: &[(&str, &str)]) {
    const BATCH: usize = 500;
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("churn"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 6)
        .await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let group = common::unique_name("churn");
    let tally = Tally::default();
    let churned = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Load while members come and go: the event ids of acknowledged sends,
    // how many sends were refused, and when the last batch was sent.
    let sending = tokio::spawn({
        let churned = churned.clone();
        async move {
            let (mut ids, mut refused) = (Vec::new(), 0);
            let mut after_churn = 0;
            for batch in 0.. {
                if churned.load(std::sync::atomic::Ordering::Relaxed) {
                    after_churn += 1;
                    if after_churn > 5 {
                        break;
                    }
                }
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..BATCH {
                    let producer = producer.clone();
                    let order = OrderPlaced {
                        order_id: format!("order-{batch}-{i}"),
                        customer_id: "c".into(),
                        ..OrderPlaced::default()
                    };
                    tasks.spawn(async move { producer.send(&order).await.map(|d| d.event_id) });
                }
                while let Some(sent) = tasks.join_next().await {
                    match sent.unwrap() {
                        Ok(id) => ids.push(id),
                        Err(_) => refused += 1,
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (ids, refused, Instant::now())
        }
    });

    let member = |name: usize| {
        let mut settings = ConsumerSettings::new(kafka.bootstrap(), &group);
        settings.topic_prefix = prefix.clone();
        settings.order = ProcessingOrder::Key;
        settings.max_in_flight = IN_FLIGHT;
        for (key, value) in group_settings {
            settings.kafka.set(*key, *value);
        }
        settings.kafka.set("client.id", format!("member-{name}"));
        let consumer = EventConsumer::new(
            settings,
            schemas.clone(),
            ShopOrdersDispatcher(tally.for_member(name)),
        )
        .unwrap();
        common::start_consumer(consumer)
    };
    // Committed offsets are sampled throughout: a rebalance must never move
    // one backwards (which would redeliver events already handled).
    let watcher = CommittedWatcher::start(
        kafka.config(),
        &group,
        &format!("{prefix}{}", OrderPlaced::TOPIC),
        6,
    );
    // One member stays throughout; ten more join one by one, then leave one by one.
    let anchor = member(0);
    let mut others = Vec::new();
    for name in 1..=10 {
        others.push(member(name));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Members leave once the group has spread the partitions (a classic-
    // protocol rebalance takes a few seconds), so that leaving moves work.
    let spread = Instant::now() + Duration::from_secs(60);
    while tally.by_member.lock().unwrap().len() < 3 && Instant::now() < spread {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut departures = Vec::new();
    for member in others.drain(..) {
        member.stop().await;
        departures.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    churned.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, refused, last_sent) = sending.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while tally.distinct() < sent.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anchor.stop().await;
    let samples = watcher.stop();

    let unique: std::collections::HashSet<&str> = sent.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        sent.len(),
        "the producer gave two sends one event id"
    );
    let handled = tally.handled();
    let delivery = common::Delivery::check(
        sent.iter().map(String::as_str),
        handled.iter().map(String::as_str),
    );
    let by_member = tally.by_member.lock().unwrap().clone();
    let left_mid_stream = departures.iter().filter(|&&t| t < last_sent).count();
    common::figure(&format!(
        "{label}, key order, {IN_FLIGHT} at once: sent={} acknowledged={} consumed={} \
         duplicates={} lost={} members_handling={} left_mid_stream={left_mid_stream} \
         commit_samples={} failed_samples={} commits_backwards={}",
        sent.len() + refused,
        sent.len(),
        handled.len(),
        delivery.extra_copies,
        delivery.lost.len(),
        by_member.len(),
        samples.taken,
        samples.failed,
        samples.backwards.len()
    ));
    assert!(
        delivery.lost.is_empty(),
        "{} acknowledged events lost while members joined and left, e.g. {:?}",
        delivery.lost.len(),
        &delivery.lost[..delivery.lost.len().min(5)]
    );
    assert!(
        delivery.unexpected.is_empty(),
        "consumed events that were never acknowledged: {:?}",
        delivery.unexpected
    );
    assert_eq!(
        left_mid_stream,
        departures.len(),
        "every departure must happen while events are still being sent"
    );
    assert!(
        by_member.len() >= 3,
        "only members {:?} handled events: the load never spread over the group",
        by_member.keys()
    );
    assert!(
        samples.taken > 20,
        "the committed offsets were sampled only {} times",
        samples.taken
    );
    assert!(
        samples.failed * 10 <= samples.taken,
        "{} of {} reads of the committed offsets failed: too few to tell",
        samples.failed,
        samples.failed + samples.taken
    );
    assert!(
        samples.backwards.is_empty(),
        "committed offsets moved backwards (partition, from, to): {:?}",
        samples.backwards
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_registry_is_down_known_types_flow_and_new_ones_wait() {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("registry-down"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 1)
        .await;
    let registry =
        protobus_registry::Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
            .await
            .unwrap();

    // A registry that can be stopped and started again on the same port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let serve = |registry: protobus_registry::Registry| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::bind(address).await.unwrap();
            axum::serve(listener, protobus_registry::router(registry))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        (stop, task)
    };
    let schemas =
        Arc::new(protobus_runtime::SchemaRegistry::new(&format!("http://{address}")).unwrap());
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let (stop, task) = serve(registry.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let tally = Tally::default();
    let mut settings =
        ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("registry-down"));
    settings.topic_prefix = prefix.clone();
    let consumer = EventConsumer::new(
        settings,
        schemas.clone(),
        ShopOrdersDispatcher(tally.clone()),
    )
    .unwrap();
    let consuming = common::start_consumer(consumer);

    // Warm-up: OrderPlaced is registered and known to both sides.
    let placed = |id: &str| OrderPlaced {
        order_id: id.into(),
        customer_id: "c".into(),
        ..OrderPlaced::default()
    };
    let mut acknowledged = Vec::new();
    acknowledged.push(producer.send(&placed("before")).await.unwrap().event_id);
    let wait = |n: usize| {
        let tally = tally.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while tally.distinct() < n {
                assert!(
                    Instant::now() < deadline,
                    "handled {} of {n}",
                    tally.distinct()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait(1).await;

    // The registry goes away.
    stop.send(()).unwrap();
    task.await.unwrap();
    for i in 0..20 {
        let delivery = producer
            .send(&placed(&format!("during-{i}")))
            .await
            .expect("a known type needs no registry");
        acknowledged.push(delivery.event_id);
    }
    wait(21).await;
    let refused = producer
        .send(&OrderPaid {
            order_id: "o".into(),
            ..OrderPaid::default()
        })
        .await
        .expect_err("a new type cannot be registered while the registry is down");
    let message = refused.to_string();
    assert!(message.contains("schema registry"), "{message}");
    assert!(
        matches!(
            refused.kind(),
            protobus_runtime::ErrorKind::RegistryUnavailable(_)
        ),
        "{message}"
    );

    // It comes back: the new type registers and flows.
    let (stop, task) = serve(registry);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = producer
        .send(&OrderPaid {
            order_id: "after".into(),
            ..OrderPaid::default()
        })
        .await
        .expect("registry back");
    acknowledged.push(after.event_id);
    wait(acknowledged.len()).await;
    let seen = tally.seen.lock().unwrap().clone();
    let lost = acknowledged
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .count();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    common::figure(&format!(
        "registry down: sent={} acknowledged={} consumed={} duplicates={duplicates} lost={lost} refused_while_down=1",
        acknowledged.len() + 1,
        acknowledged.len(),
        seen.values().sum::<u32>(),
    ));
    assert_eq!(lost, 0, "acknowledged events not handled");
    assert_eq!(seen.len(), acknowledged.len(), "handled events never sent");
    stop.send(()).unwrap();
    task.await.unwrap();
    consuming.stop().await;
}

/// A member process, killed when the test ends whatever happens.
struct ChildMember(std::process::Child);

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `evo.accounts` events handled by the in-process member, by event id.
#[derive(Clone, Default)]
struct Accounts(Arc<Mutex<HashMap<String, u32>>>);

impl Accounts {
    fn count(&self, context: &EventContext<'_>) -> Result<(), HandlerError> {
        let id = context.event_id().unwrap_or_default().to_owned();
        *self.0.lock().unwrap().entry(id).or_default() += 1;
        Ok(())
    }
}

impl protobus_fixtures::v2::EvoAccountsHandler for Accounts {
    async fn account_opened(
        &self,
        _: protobus_fixtures::v2::evo::accounts::AccountOpened,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.count(c)
    }
    async fn account_closed(
        &self,
        _: protobus_fixtures::v2::evo::accounts::AccountClosed,
        c: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.count(c)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_killed_mid_stream_loses_nothing_and_redelivers_only_its_uncommitted_window() {
    use protobus_fixtures::v2::evo::accounts::AccountOpened;
    const EVENTS: usize = 10_000;
    let child_binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_protobus")).with_file_name("recording-consumer");
    assert!(
        child_binary.exists(),
        "{} is missing: build it with `cargo build -p protobus-fixtures` (scripts/test.sh does)",
        child_binary.display()
    );
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("kill-member"));
    kafka
        .create_topic(&format!("{prefix}{}", AccountOpened::TOPIC), 4)
        .await;
    let registry =
        protobus_registry::Registry::kafka(kafka.bootstrap(), &common::unique_name("_schemas"))
            .await
            .unwrap();
    let url = common::serve_registry(registry).await;
    let schemas = Arc::new(protobus_runtime::SchemaRegistry::new(&url).unwrap());
    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let mut sent = Vec::with_capacity(EVENTS);
    for chunk in 0..20 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..EVENTS / 20 {
            let producer = producer.clone();
            tasks.spawn(async move {
                let event = AccountOpened {
                    account_id: format!("acct-{chunk}-{i}"),
                    owner: "o".into(),
                    ..AccountOpened::default()
                };
                producer.send(&event).await.expect("send").event_id
            });
        }
        while let Some(id) = tasks.join_next().await {
            sent.push(id.unwrap());
        }
    }

    // The child member starts alone and works slowly (100 ms per event, 64 at
    // once), logging what it handled; the survivor joins once it is under way.
    let group = common::unique_name("kill-member");
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = ChildMember(
        std::process::Command::new(&child_binary)
            .args([kafka.bootstrap(), &url, &group, &prefix])
            .arg(log.path())
            .env("RUST_LOG", "warn")
            .env("RECORDING_DELAY_MS", "100")
            .env("RECORDING_ORDER", "key")
            .env("RECORDING_MAX_IN_FLIGHT", IN_FLIGHT.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the child member"),
    );
    let child_lines = |path: &std::path::Path| -> Vec<(String, u128)> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(id, at)| (id.to_owned(), at.parse().unwrap_or(0)))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while child_lines(log.path()).len() < 500 {
        assert!(
            Instant::now() < deadline,
            "the child member handled nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let survivor_tally = Accounts::default();
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &group);
    settings.topic_prefix = prefix.clone();
    settings.order = ProcessingOrder::Key;
    settings.max_in_flight = IN_FLIGHT;
    settings.kafka.set("session.timeout.ms", "6000");
    let survivor = EventConsumer::new(
        settings,
        schemas.clone(),
        protobus_fixtures::v2::EvoAccountsDispatcher(survivor_tally.clone()),
    )
    .unwrap();
    let surviving = common::start_consumer(survivor);

    // Kill the child while both members work: once the survivor handles
    // events and the child has handled 300 more since (so the rebalance,
    // which commits what the child finished, is behind it).
    let deadline = Instant::now() + Duration::from_secs(60);
    while survivor_tally.0.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the survivor never got partitions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shared_at = child_lines(log.path()).len();
    while child_lines(log.path()).len() < shared_at + 300 {
        assert!(
            Instant::now() < deadline,
            "the child stopped handling once the survivor joined"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.0.kill().expect("SIGKILL the child");
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    child.0.wait().unwrap();

    let child_handled = child_lines(log.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let survivor_seen = survivor_tally.0.lock().unwrap().len();
        let child_ids: std::collections::HashSet<&String> =
            child_handled.iter().map(|(id, _)| id).collect();
        let union = survivor_tally
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|id| !child_ids.contains(id))
            .count()
            + child_ids.len();
        if union >= EVENTS || Instant::now() > deadline {
            let _ = survivor_seen;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    surviving.stop().await;

    let survivor = survivor_tally.0.lock().unwrap();
    let child_ids: HashMap<&String, u128> =
        child_handled.iter().map(|(id, at)| (id, *at)).collect();
    let lost = sent
        .iter()
        .filter(|id| !child_ids.contains_key(id) && !survivor.contains_key(*id))
        .count();
    let redelivered: Vec<u128> = child_ids
        .iter()
        .filter(|(id, _)| survivor.contains_key(**id))
        .map(|(_, at)| *at)
        .collect();
    let oldest_redelivered = redelivered
        .iter()
        .min()
        .map(|at| killed_at.saturating_sub(*at));
    common::figure(&format!(
        "member killed, key order, {IN_FLIGHT} at once: sent={} acknowledged={} consumed={} duplicates={} lost={lost} oldest_redelivered_ms_before_kill={oldest_redelivered:?}",
        sent.len(),
        sent.len(),
        child_handled.len() + survivor.values().sum::<u32>() as usize,
        redelivered.len(),
    ));
    assert_eq!(lost, 0, "events lost when a member died");
    // Only what the child had not committed yet comes again (commits run every
    // second; with calls finishing out of order, also what finished after an
    // unfinished one): nothing older than a few seconds before the kill.
    if let Some(age) = oldest_redelivered {
        assert!(
            age <= 3_000,
            "redelivered an event the child handled {age} ms before it died"
        );
    }
}
