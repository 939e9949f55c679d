//! Who serves librdkafka's delivery reports: the threads that send, while
//! sends keep coming, and a thread of the producer's own otherwise.
//!
//! librdkafka allocates each record on the thread that queues it (six
//! allocations with Protobus's three headers) and frees it when its report
//! is served. rdkafka's `ThreadedProducer` serves every report on a thread
//! of its own, so each record is freed on another thread than the one that
//! allocated it: under glibc, the sending thread's cache stays empty and
//! both threads queue on its arena's lock. Here each send serves a report
//! already waiting, without waiting for one, and the producer's thread
//! steps back while sends come: it serves what they leave once [`GRACE`]
//! has passed without a send.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};

/// How long the producer's thread leaves the reports to the senders after
/// it last saw a send. A report that lands in that gap, with no send after
/// it, waits that much longer; one that lands later is served at once.
const GRACE: Duration = Duration::from_millis(1);

/// How long the producer's thread serves reports before it looks for sends
/// again: once sends start, it competes with them at most that long.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// A record with a delivery opaque of context `C`'s.
type Record<'a, C> = BaseRecord<'a, [u8], [u8], <C as ProducerContext>::DeliveryOpaque>;

/// A librdkafka producer whose delivery reports are served where its
/// records were queued, as far as the senders' pace allows. Derefs to the
/// `BaseProducer` for everything but sending.
pub(crate) struct ServedProducer<C: ProducerContext + 'static> {
    shared: Arc<Shared<C>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared<C: ProducerContext + 'static> {
    producer: BaseProducer<C>,
    /// Raised by each send, lowered by the producer's thread when it looks.
    sending: AtomicBool,
    stop: AtomicBool,
}

impl<C: ProducerContext + 'static> ServedProducer<C> {
    pub(crate) fn new(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let shared = Arc::new(Shared {
            producer: config.create_with_context(context)?,
            sending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let serving = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("protobus-delivery-reports".into())
            .spawn(move || serving.serve())
            .map_err(|err| KafkaError::ClientCreation(err.to_string()))?;
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
        let sent = self.shared.producer.send(record);
        // Read first: a store on every send would move the flag's cache line
        // between the sending threads.
        if !self.shared.sending.load(Ordering::Relaxed) {
            self.shared.sending.store(true, Ordering::Relaxed);
        }
        self.shared.producer.poll(Duration::ZERO);
        sent
    }
}

impl<C: ProducerContext + 'static> Shared<C> {
    /// The producer's thread: serves reports while no sends come.
    fn serve(&self) {
        while !self.stop.load(Ordering::Acquire) {
            if self.sending.swap(false, Ordering::Relaxed) {
                thread::park_timeout(GRACE);
            } else {
                self.producer.poll(IDLE_POLL);
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
        // The last reference goes with `shared`: rdkafka's `BaseProducer`
        // then purges what is left and serves its reports.
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
