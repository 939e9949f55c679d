//! Who serves librdkafka's delivery reports: the threads that send, while
//! sends keep coming, and a thread of the producer's own otherwise.
//!
//! librdkafka allocates each record on the thread that queues it (five
//! allocations with Protobus's two headers) and frees it when its report
//! is served. rdkafka's `ThreadedProducer` serves every report on a thread
//! of its own, so each record is freed on another thread than the one that
//! allocated it: under glibc, the sending thread's cache stays empty and
//! both threads queue on its arena's lock. Here each send serves a report
//! already waiting, without waiting for one, and the producer's thread
//! serves only what the senders leave: reports that land while no send
//! came for [`GRACE`].
//!
//! librdkafka's callback says when a report lands in the empty queue: it
//! raises a flag the senders look at, and wakes the producer's thread,
//! which sleeps until then. rdkafka's own `poll(timeout)` would not do for
//! that wait: it rounds what is left of its timeout down to whole
//! milliseconds and spins through the last one.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::bindings as rd;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::util::IntoOpaque;

use crate::topic_handles::TopicHandles;

/// How long after the last send the producer's thread leaves the reports to
/// the senders. A report that lands in that gap, with no send after it,
/// waits up to that much longer; one that lands later is served at once.
const GRACE: Duration = Duration::from_millis(1);

/// How long the producer's thread sleeps at most on an empty queue: a
/// safety net, as librdkafka wakes it when a report lands.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// A record with a delivery opaque of context `C`'s.
type Record<'a, C> = BaseRecord<'a, [u8], [u8], <C as ProducerContext>::DeliveryOpaque>;

/// A librdkafka producer whose delivery reports are served where its
/// records were queued, as far as the senders' pace allows. Derefs to the
/// `BaseProducer` for everything but sending.
pub(crate) struct ServedProducer<C: ProducerContext + 'static> {
    shared: Arc<Shared<C>>,
    thread: Option<JoinHandle<()>>,
}

/// Fields drop in order: the queue and topic handles go before the
/// producer, as librdkafka requires.
struct Shared<C: ProducerContext + 'static> {
    /// The producer's main queue, where its reports land.
    reports: Reports,
    topics: TopicHandles,
    producer: BaseProducer<C>,
    /// Read on every send: a cycle counter, a tenth of what
    /// `Instant::elapsed` costs.
    clock: quanta::Clock,
    /// When this producer was made, the origin of `last_send`.
    born: u64,
    /// The millisecond of the last send, counted from `born`.
    last_send: AtomicU64,
    stop: AtomicBool,
}

/// Called by librdkafka, under the queue's lock, when a report lands in the
/// empty queue: no call back into librdkafka, nothing that can unwind.
unsafe extern "C" fn on_report(_client: *mut rd::rd_kafka_t, landed: *mut c_void) {
    // SAFETY: the `Reports::landed` that `Reports::drop` takes the
    // registration back from, under the same lock, before it can go.
    let landed = unsafe { &*landed.cast::<Landed>() };
    landed.waiting.store(true, Ordering::Relaxed);
    if let Some(thread) = landed.server.get() {
        thread.unpark();
    }
}

/// What [`on_report`] tells.
#[derive(Default)]
struct Landed {
    /// Reports may be waiting: set when one lands in the empty queue, and
    /// by a sender that served and left some. A sender looks at it rather
    /// than at the queue's length, which takes the queue's lock.
    waiting: AtomicBool,
    /// The producer's thread, once started.
    server: OnceLock<Thread>,
}

/// A handle on the producer's main queue, with [`on_report`] registered.
struct Reports {
    ptr: NonNull<rd::rd_kafka_queue_t>,
    landed: Box<Landed>,
}

// SAFETY: librdkafka's queues are thread-safe; the handle is a reference to
// one.
unsafe impl Send for Reports {}
unsafe impl Sync for Reports {}

impl Reports {
    fn new<C: ProducerContext>(producer: &BaseProducer<C>) -> Self {
        // SAFETY: a live client handle; the queue handle is a new reference.
        let ptr = unsafe { rd::rd_kafka_queue_get_main(producer.client().native_ptr()) };
        let ptr = NonNull::new(ptr).expect("a producer has a main queue");
        let landed = Box::<Landed>::default();
        let opaque = ptr::from_ref::<Landed>(&landed).cast_mut().cast::<c_void>();
        // SAFETY: our queue; the boxed `landed` stays put until `drop` takes
        // the registration back.
        unsafe { rd::rd_kafka_queue_cb_event_enable(ptr.as_ptr(), Some(on_report), opaque) };
        Reports { ptr, landed }
    }

    fn is_empty(&self) -> bool {
        // SAFETY: our queue.
        unsafe { rd::rd_kafka_queue_length(self.ptr.as_ptr()) == 0 }
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        // SAFETY: our handle. Unregistering takes the queue's lock, under
        // which the callback runs: once it returns, none reads the opaque.
        unsafe {
            rd::rd_kafka_queue_cb_event_enable(self.ptr.as_ptr(), None, ptr::null_mut());
            rd::rd_kafka_queue_destroy(self.ptr.as_ptr());
        }
    }
}

impl<C: ProducerContext + 'static> ServedProducer<C> {
    pub(crate) fn new(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let producer: BaseProducer<C> = config.create_with_context(context)?;
        let clock = quanta::Clock::new();
        let shared = Arc::new(Shared {
            reports: Reports::new(&producer),
            topics: TopicHandles::default(),
            producer,
            born: clock.raw(),
            clock,
            last_send: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let serving = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("protobus-delivery-reports".into())
            .spawn(move || serving.serve())
            .map_err(|err| KafkaError::ClientCreation(err.to_string()))?;
        let _ = shared.reports.landed.server.set(thread.thread().clone());
        Ok(ServedProducer {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `record`, then serves a delivery report if one is waiting.
    #[allow(clippy::result_large_err)] // the record comes back to be retried
    pub(crate) fn send<'a>(
        &self,
        record: Record<'a, C>,
    ) -> Result<(), (KafkaError, Record<'a, C>)> {
        let shared = &self.shared;
        let sent = shared.produce(record);
        // Stored once a millisecond at most: a store on every send would
        // move the cache line between the sending threads.
        let now = shared.now_ms();
        if shared.last_send.load(Ordering::Relaxed) != now {
            shared.last_send.store(now, Ordering::Relaxed);
        }
        // rdkafka's `poll` reads the clock three times even when there is
        // nothing to serve, as after most sends. Lowered before serving: a
        // report landing after it raises it again.
        let waiting = &shared.reports.landed.waiting;
        if waiting.load(Ordering::Relaxed) {
            waiting.store(false, Ordering::Relaxed);
            // One event a call: what is left stays flagged (only a report
            // landing in the empty queue calls back).
            shared.producer.poll(Duration::ZERO);
            if !shared.reports.is_empty() {
                waiting.store(true, Ordering::Relaxed);
            }
        }
        sent
    }
}

impl<C: ProducerContext + 'static> Shared<C> {
    /// Queues `record` by its topic's handle: rdkafka's `send`, but for
    /// the topic, which it passes by name.
    #[allow(clippy::result_large_err)] // the record comes back to be retried
    fn produce<'a>(&self, mut record: Record<'a, C>) -> Result<(), (KafkaError, Record<'a, C>)> {
        use rd::rd_kafka_vtype_t::*;
        fn bytes(data: Option<&[u8]>) -> (*mut c_void, usize) {
            data.map_or((ptr::null_mut(), 0), |d| {
                (d.as_ptr().cast_mut().cast(), d.len())
            })
        }
        let client = self.producer.client().native_ptr();
        // SAFETY: this producer's live client.
        let topic = match unsafe { self.topics.get(client, record.topic) } {
            Ok(topic) => topic,
            Err(err) => return Err((err, record)),
        };
        let (payload, payload_len) = bytes(record.payload.map(ToBytes::to_bytes));
        let (key, key_len) = bytes(record.key.map(ToBytes::to_bytes));
        // rdkafka keeps `OwnedHeaders`' pointer to itself; its borrowed view
        // is a reference to the same librdkafka list.
        let headers = record.headers.as_ref().map_or(ptr::null_mut(), |h| {
            ptr::from_ref(h.as_borrowed())
                .cast_mut()
                .cast::<rd::rd_kafka_headers_t>()
        });
        let opaque = record.delivery_opaque.into_ptr();
        // SAFETY: a live client and topic handle (`topics` lives as long as
        // the client); librdkafka copies payload and key (`F_COPY`) and takes
        // the headers only when it queues the record.
        let err = unsafe {
            rd::rd_kafka_producev(
                client,
                RD_KAFKA_VTYPE_RKT,
                topic,
                RD_KAFKA_VTYPE_PARTITION,
                record.partition.unwrap_or(-1),
                RD_KAFKA_VTYPE_MSGFLAGS,
                rd::RD_KAFKA_MSG_F_COPY,
                RD_KAFKA_VTYPE_VALUE,
                payload,
                payload_len,
                RD_KAFKA_VTYPE_KEY,
                key,
                key_len,
                RD_KAFKA_VTYPE_OPAQUE,
                opaque,
                RD_KAFKA_VTYPE_TIMESTAMP,
                record.timestamp.unwrap_or(0),
                RD_KAFKA_VTYPE_HEADERS,
                headers,
                RD_KAFKA_VTYPE_END,
            )
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: the opaque made above, which librdkafka did not take.
            record.delivery_opaque = unsafe { C::DeliveryOpaque::from_ptr(opaque) };
            return Err((KafkaError::MessageProduction(err.into()), record));
        }
        // librdkafka owns the headers now.
        std::mem::forget(record.headers);
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.clock.delta_as_nanos(self.born, self.clock.raw()) / 1_000_000
    }

    /// The producer's thread: serves the reports the senders leave.
    fn serve(&self) {
        while !self.stop.load(Ordering::Acquire) {
            if self.reports.is_empty() {
                // Until a report lands (librdkafka's callback), or `drop`.
                thread::park_timeout(IDLE_WAIT);
                continue;
            }
            // Within the millisecond of the last send or the one after.
            let since = self
                .now_ms()
                .saturating_sub(self.last_send.load(Ordering::Relaxed));
            if since <= GRACE.as_millis() as u64 {
                thread::park_timeout(GRACE);
            } else {
                self.producer.poll(Duration::ZERO);
            }
        }
    }
}

impl<C: ProducerContext + 'static> Deref for ServedProducer<C> {
    type Target = BaseProducer<C>;

    fn deref(&self) -> &BaseProducer<C> {
        &self.shared.producer
    }
}

impl<C: ProducerContext + 'static> Drop for ServedProducer<C> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        // The last reference goes with `shared`: the callback is taken
        // back, then rdkafka's `BaseProducer` purges what is left and serves
        // its reports.
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use rdkafka::ClientContext;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{DeliveryResult, Producer as _};

    use super::*;

    /// Notes the thread each delivery report is served on.
    #[derive(Default)]
    struct Threads(Mutex<Vec<Option<String>>>);

    impl ClientContext for Threads {}

    impl ProducerContext for Threads {
        type DeliveryOpaque = ();

        fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
            assert!(result.is_ok(), "{result:?}");
            let thread = thread::current().name().map(str::to_owned);
            self.0.lock().unwrap().push(thread);
        }
    }

    impl Threads {
        /// Waits until `n` reports were served, then counts those served
        /// on the producer's thread and on `sender`.
        fn served(&self, n: usize, sender: Option<&str>) -> (usize, usize) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let threads = self.0.lock().unwrap();
                if threads.len() >= n {
                    let on = |name| threads.iter().filter(|t| t.as_deref() == name).count();
                    return (on(Some("protobus-delivery-reports")), on(sender));
                }
                drop(threads);
                assert!(Instant::now() < deadline, "reports not served");
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    #[test]
    fn the_sending_thread_serves_the_reports_while_it_sends_and_the_producers_own_thread_after() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("events", 1, 1).unwrap();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("linger.ms", "0");
        let producer = ServedProducer::new(&config, Threads::default()).unwrap();
        let record = || BaseRecord::to("events").key(&b"k"[..]).payload(&b"v"[..]);
        let sender = thread::current().name().map(str::to_owned);
        let sender = sender.as_deref();

        // One send and no more: the producer's thread serves its report.
        producer.send(record()).map_err(|(err, _)| err).unwrap();
        assert_eq!(producer.context().served(1, sender), (1, 0));

        // Sends every 100 µs for half a second: the sending thread serves
        // the reports, but for those the producer's thread took while it
        // served before it saw the sends (up to `IDLE_POLL`).
        let mut sent = 1;
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            producer.send(record()).map_err(|(err, _)| err).unwrap();
            sent += 1;
            thread::sleep(Duration::from_micros(100));
        }
        let (own, sending) = producer.context().served(sent, sender);
        assert_eq!(own + sending, sent);
        assert!(sending > own, "{sending} on the sender, {own} on its own");
    }
}
