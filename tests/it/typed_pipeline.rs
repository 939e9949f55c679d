//! The typed pipeline against the real broker and the project's registry:
//! 10 000 events of four types on two topics go through the typed producer
//! and arrive, each exactly once, in the handler method for their type, equal
//! field by field, with their headers.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobus::contract::shop::common::v1::Money;
use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::{LineItem, OrderPaid, OrderPlaced, OrderShipped};
use protobus::contract::{
    ShopCustomersDispatcher, ShopCustomersHandler, ShopOrdersDispatcher, ShopOrdersHandler,
};
use protobus_runtime::{
    ConsumerSettings, Delivery, Event, EventConsumer, EventContext, EventProducer, HandlerError,
    SendOptions, headers,
};

const EVENTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
enum Any {
    Placed(OrderPlaced),
    Paid(OrderPaid),
    Shipped(OrderShipped),
    Registered(CustomerRegistered),
}

#[derive(Debug)]
struct Received {
    event: Any,
    context: EventContext<'static>,
}

/// Records the events of this run (by correlation id).
#[derive(Clone)]
struct Recorder {
    run: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    fn record(&self, event: Any, context: &EventContext<'_>) {
        if context.correlation_id() == Some(self.run.as_str()) {
            self.received.lock().unwrap().push(Received {
                event,
                context: context.detached(),
            });
        }
    }
}

impl ShopOrdersHandler for Recorder {
    async fn order_placed(
        &self,
        event: OrderPlaced,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(Any::Placed(event), context);
        Ok(())
    }
    async fn order_paid(
        &self,
        event: OrderPaid,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(Any::Paid(event), context);
        Ok(())
    }
    async fn order_shipped(
        &self,
        event: OrderShipped,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(Any::Shipped(event), context);
        Ok(())
    }
}

impl ShopCustomersHandler for Recorder {
    async fn customer_registered(
        &self,
        event: CustomerRegistered,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(Any::Registered(event), context);
        Ok(())
    }
}

fn sample(i: usize) -> Any {
    let money = |units: i64| {
        Some(Money {
            currency: "EUR".into(),
            minor_units: units,
        })
    };
    let ts = Some(prost_types::Timestamp {
        seconds: 1_700_000_000 + i as i64,
        nanos: (i * 1000) as i32,
    });
    let order_id = format!("order-{}", i % 1_000);
    match i % 4 {
        0 => Any::Placed(OrderPlaced {
            order_id,
            customer_id: format!("customer-{}", i % 37),
            lines: (0..(i % 3))
                .map(|l| LineItem {
                    sku: format!("sku-{l}"),
                    quantity: l as u32 + 1,
                    unit_price: money(100 * l as i64),
                })
                .collect(),
            total: money(i as i64),
            placed_at: ts,
            coupon_code: if i.is_multiple_of(8) {
                "WELCOME".into()
            } else {
                String::new()
            },
        }),
        1 => Any::Paid(OrderPaid {
            order_id,
            payment_id: format!("pay-{i}"),
            amount: money(i as i64 * 3),
            paid_at: ts,
        }),
        2 => Any::Shipped(OrderShipped {
            order_id,
            carrier: "UPS".into(),
            tracking_number: format!("1Z{i:010}"),
            shipped_at: ts,
        }),
        _ => Any::Registered(CustomerRegistered {
            customer_id: format!("customer-{i}"),
            email: format!("c{i}@example.com"),
            display_name: format!("Customer Ünïcødé {i}"),
            registered_at: ts,
        }),
    }
}

async fn send(producer: &EventProducer, event: &Any, options: SendOptions) -> Delivery {
    let result = match event {
        Any::Placed(e) => producer.send_with(e, options).await,
        Any::Paid(e) => producer.send_with(e, options).await,
        Any::Shipped(e) => producer.send_with(e, options).await,
        Any::Registered(e) => producer.send_with(e, options).await,
    };
    result.expect("send")
}

fn type_topic(event: &Any) -> &'static str {
    match event {
        Any::Registered(_) => CustomerRegistered::TOPIC,
        _ => OrderPlaced::TOPIC,
    }
}

fn type_of(event: &Any) -> &'static str {
    match event {
        Any::Placed(_) => OrderPlaced::FULL_NAME,
        Any::Paid(_) => OrderPaid::FULL_NAME,
        Any::Shipped(_) => OrderShipped::FULL_NAME,
        Any::Registered(_) => CustomerRegistered::FULL_NAME,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_typed_events_reach_the_right_handler_once_and_intact() {
    let kafka = common::kafka().await;
    // Topics of this test alone: the contract's names behind a unique prefix.
    let prefix = format!("{}.", common::unique_name("typed"));
    kafka
        .create_topic(&format!("{prefix}{}", OrderPlaced::TOPIC), 6)
        .await;
    kafka
        .create_topic(&format!("{prefix}{}", CustomerRegistered::TOPIC), 3)
        .await;
    let schemas = kafka.schema_registry().await;

    let run = common::unique_name("run");
    let recorder = Recorder {
        run: run.clone(),
        received: Arc::default(),
    };
    let mut settings = ConsumerSettings::new(kafka.bootstrap(), &common::unique_name("typed"));
    settings.topic_prefix = prefix.clone();
    let consumer = EventConsumer::new(
        settings,
        schemas.clone(),
        (
            ShopOrdersDispatcher(recorder.clone()),
            ShopCustomersDispatcher(recorder.clone()),
        ),
    )
    .expect("consumer");
    let stats = consumer.stats();
    let consuming = common::start_consumer(consumer);

    let producer = kafka.event_producer(schemas.clone(), &prefix, &[]);
    let mut sent: HashMap<String, (Any, Delivery)> = HashMap::new();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(500) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in chunk {
            let (producer, run) = (producer.clone(), run.clone());
            tasks.spawn(async move {
                let event = sample(i);
                let options = SendOptions {
                    correlation_id: Some(run),
                    headers: vec![("x-sequence".into(), i.to_string().into_bytes())],
                    ..SendOptions::default()
                };
                let delivery = send(&producer, &event, options).await;
                (event, delivery)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (event, delivery) = done.unwrap();
            sent.insert(delivery.event_id.clone(), (event, delivery));
        }
    }
    assert_eq!(sent.len(), EVENTS, "event ids are unique");
    for event_id in sent.keys() {
        let parsed = uuid::Uuid::parse_str(event_id).expect("event ids are UUIDs");
        assert_eq!(parsed.get_version_num(), 7, "{event_id}");
        assert_eq!(
            parsed.hyphenated().to_string(),
            *event_id,
            "canonical form: lower case, hyphenated"
        );
    }
    let registry_requests_after_warm_up = schemas.requests();

    let deadline = Instant::now() + Duration::from_secs(120);
    while recorder.received.lock().unwrap().len() < EVENTS {
        assert!(
            Instant::now() < deadline,
            "received {} of {EVENTS}",
            recorder.received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // room for duplicates to show
    consuming.stop().await;

    let received = std::mem::take(&mut *recorder.received.lock().unwrap());
    assert_eq!(received.len(), EVENTS, "duplicates were delivered");
    let mut seen = std::collections::HashSet::new();
    for Received { event, context } in &received {
        let event_id = context.event_id().expect("event id header");
        assert!(seen.insert(event_id.to_owned()), "{event_id} handled twice");
        let (original, delivery) = &sent[event_id];
        assert_eq!(event, original, "{event_id} differs");
        assert_eq!(context.event_type(), type_of(original));
        assert_eq!(
            context.header(headers::EVENT_TYPE),
            Some(type_of(original).as_bytes())
        );
        assert_eq!(
            (context.topic(), context.partition(), context.offset()),
            (delivery.topic.as_str(), delivery.partition, delivery.offset)
        );
        assert_eq!(context.topic(), format!("{prefix}{}", type_topic(original)));
        // The record's timestamp is the send's: the millisecond its event id
        // (a UUID v7 made from the same clock read) carries.
        let (secs, nanos) = uuid::Uuid::parse_str(event_id)
            .unwrap()
            .get_timestamp()
            .expect("a v7 id has a timestamp")
            .to_unix();
        let sent_ms = secs as i64 * 1000 + i64::from(nanos / 1_000_000);
        assert_eq!(context.timestamp_ms(), Some(sent_ms), "{event_id}");
        let sequence: usize = std::str::from_utf8(context.header("x-sequence").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(&sample(sequence), original);
        let expected_key = match original {
            Any::Placed(e) => e.key(),
            Any::Paid(e) => e.key(),
            Any::Shipped(e) => e.key(),
            Any::Registered(e) => e.key(),
        };
        assert_eq!(context.key(), expected_key.as_deref());
    }
    assert_eq!(stats.poison.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Four registrations and a few writer-type look-ups, none per message.
    assert!(
        registry_requests_after_warm_up <= 8,
        "{registry_requests_after_warm_up} registry requests"
    );
    assert!(
        schemas.requests() <= 8 + 4,
        "{} registry requests",
        schemas.requests()
    );
}

/// A send that finds librdkafka's queue full waits for room with a copy of
/// its own frame (the producer frames every event in one buffer per thread):
/// with a queue of 4 records and 8 tasks sending at once, every event still
/// lands with its own payload, key and event id. The same load with no wait
/// allowed is refused with `QueueFull`, which shows the queue did fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_wait_for_room_in_the_queue_arrive_intact() {
    use prost::Message as _;
    use protobus_runtime::ErrorKind;

    const TASKS: usize = 8;
    const PER_TASK: usize = 50;
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("queue-full"));
    let topic = format!("{prefix}{}", OrderPlaced::TOPIC);
    kafka.create_topic(&topic, 3).await;
    let schemas = kafka.schema_registry().await;
    let settings = [("queue.buffering.max.messages", "4"), ("linger.ms", "20")];
    let order = |task: usize, i: usize| OrderPlaced {
        order_id: format!("order-{task}-{i}"),
        customer_id: format!("customer-{task}"),
        // Sizes differ from event to event, so a frame left over from another
        // send would not decode to this event.
        coupon_code: "x".repeat((task * PER_TASK + i) % 700),
        ..OrderPlaced::default()
    };
    // One task per sender, all at once, each enqueueing its events before
    // awaiting any delivery.
    async fn burst(
        producer: &EventProducer,
        order: impl Fn(usize, usize) -> OrderPlaced + Copy + Send + 'static,
    ) -> Vec<Result<(Delivery, OrderPlaced), protobus_runtime::Error>> {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let producer = producer.clone();
            tasks.push(tokio::spawn(async move {
                let mut pending = Vec::new();
                for i in 0..PER_TASK {
                    let event = order(task, i);
                    let queued = producer.enqueue(&event, SendOptions::default()).await;
                    pending.push((queued, event));
                }
                let mut results = Vec::new();
                for (queued, event) in pending {
                    results.push(match queued {
                        Ok(delivery) => delivery.await.map(|d| (d, event)),
                        Err(err) => Err(err),
                    });
                }
                results
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.extend(task.await.unwrap());
        }
        results
    }

    let refusing = kafka
        .event_producer(schemas.clone(), &prefix, &settings)
        .with_queue_wait(Duration::ZERO);
    let refused = burst(&refusing, order)
        .await
        .into_iter()
        .filter(|r| matches!(r, Err(e) if matches!(e.kind(), ErrorKind::QueueFull)))
        .count();
    assert!(refused > 0, "the queue of 4 never filled under this load");
    // Only the events sent below are checked: the refusing run's successes
    // are on the topic too.
    let waiting = kafka
        .event_producer(schemas, &prefix, &settings)
        .with_queue_wait(Duration::from_secs(30));
    let sent: HashMap<String, OrderPlaced> = burst(&waiting, order)
        .await
        .into_iter()
        .map(|r| {
            let (delivery, event) = r.expect("every event waits for room and is sent");
            (delivery.event_id, event)
        })
        .collect();
    assert_eq!(sent.len(), TASKS * PER_TASK);

    let mut matched = 0;
    for (key, value, headers) in kafka.records(&topic) {
        let Some(event) = sent.get(&headers[headers::EVENT_ID]) else {
            continue;
        };
        let value = value.expect("a value");
        let stored =
            OrderPlaced::decode(&value[6..]).expect("an OrderPlaced after the frame header");
        assert_eq!(&stored, event, "the record's payload is its own event's");
        assert_eq!(key.as_deref(), Some(event.order_id.as_bytes()));
        matched += 1;
    }
    assert_eq!(
        matched,
        TASKS * PER_TASK,
        "every sent event is on the topic once"
    );
}

/// A batch of events of four types on two topics: awaited once, it gives
/// each event's delivery in the order they were enqueued, each naming its
/// own event's topic, event id and a place no other event of the batch
/// holds; each record on the topics carries the event id and type its
/// delivery named. A batch refuses events past the number it was made for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_event_at_its_place_once_all_are_in() {
    use protobus_runtime::ErrorKind;
    use std::collections::HashSet;

    const EVENTS: usize = 400;
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("batch"));
    let topics = [OrderPlaced::TOPIC, CustomerRegistered::TOPIC].map(|t| format!("{prefix}{t}"));
    for topic in &topics {
        kafka.create_topic(topic, 3).await;
    }
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas, &prefix, &[("linger.ms", "5")]);

    let events: Vec<Any> = (0..EVENTS).map(sample).collect();
    let mut batch = producer.batch(EVENTS).expect("a batch");
    for (i, event) in events.iter().enumerate() {
        let options = SendOptions::default();
        let place = match event {
            Any::Placed(e) => batch.enqueue(e, options).await,
            Any::Paid(e) => batch.enqueue(e, options).await,
            Any::Shipped(e) => batch.enqueue(e, options).await,
            Any::Registered(e) => batch.enqueue(e, options).await,
        };
        assert_eq!(place.expect("queued"), i);
    }
    assert_eq!(batch.len(), EVENTS);
    let deliveries = batch.await;
    assert_eq!(deliveries.len(), EVENTS);

    let mut places = HashSet::new();
    let mut sent = HashMap::new();
    for (event, delivery) in events.iter().zip(deliveries) {
        let delivery = delivery.expect("delivered");
        assert_eq!(delivery.topic, format!("{prefix}{}", type_topic(event)));
        assert!(
            places.insert((delivery.topic.clone(), delivery.partition, delivery.offset)),
            "two events of the batch answered with one place: {delivery:?}"
        );
        sent.insert(delivery.event_id, type_of(event));
    }
    assert_eq!(sent.len(), EVENTS, "an event id per event");
    let mut found = 0;
    for topic in &topics {
        for (_, _, headers) in kafka.records(topic) {
            let event_type = sent
                .get(&headers[headers::EVENT_ID])
                .expect("an event of the batch");
            assert_eq!(headers[headers::EVENT_TYPE], *event_type);
            found += 1;
        }
    }
    assert_eq!(
        found, EVENTS,
        "every event of the batch is on its topic once"
    );

    // A batch made for two refuses a third, and answers the two.
    let mut small = producer.batch(2).expect("a batch");
    for i in 0..2 {
        let Any::Placed(order) = sample(i * 4) else {
            unreachable!()
        };
        small
            .enqueue(&order, SendOptions::default())
            .await
            .expect("queued");
    }
    let Any::Placed(third) = sample(8) else {
        unreachable!()
    };
    let refused = small.enqueue(&third, SendOptions::default()).await;
    assert!(
        matches!(
            refused.as_ref().map_err(|e| e.kind()),
            Err(ErrorKind::BatchFull(2))
        ),
        "{refused:?}"
    );
    let answered = small.await;
    assert_eq!(answered.len(), 2);
    assert!(answered.iter().all(Result::is_ok), "{answered:?}");
}
