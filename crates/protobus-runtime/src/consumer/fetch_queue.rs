//! The member's records in one queue of its own, read a batch at a time.
//!
//! rdkafka reads one record per call from the consumer's queue: a lock, two
//! clock reads and an allocated event per record. librdkafka's batch read
//! cannot serve that queue, though: it would answer a rebalance with its
//! own assignment, bypassing the group context. So each partition's records
//! are forwarded, when it is assigned, to a queue of the member's own
//! (librdkafka then no longer forwards that partition to the consumer's
//! queue), and that queue is read in batches. The consumer's queue still carries rebalances
//! and errors, read through rdkafka's stream.
//!
//! One queue for every partition keeps librdkafka's prefetch bounds
//! (`queued.max.messages.kbytes`, `queued.min.messages`) per member: a
//! fetcher measures its partition's queue through the forward, as it does
//! for the consumer's queue. Queues per partition would make them per
//! partition.
//!
//! The queue calls [`on_records`] on a librdkafka thread when it goes from
//! empty to non-empty, which wakes the run loop.
#![allow(unsafe_code)]

use std::ffi::{CString, c_void};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::bindings as rd;
use rdkafka::client::Client;
use rdkafka::error::KafkaError;

use crate::consumer::fetched::Fetched;
use crate::consumer::woken::Signal;

/// Records read at most per batch: enough that a read's own cost (two clock
/// reads) is spread thin, few enough that records read but not yet taken
/// stay a small part of what librdkafka buffers.
const READ_BATCH: usize = 256;

/// Called by librdkafka, under the queue's lock, when a record lands in the
/// empty queue: no call back into librdkafka, nothing that can unwind.
unsafe extern "C" fn on_records(_client: *mut rd::rd_kafka_t, signal: *mut c_void) {
    // SAFETY: the queue's `Signal`, which outlives the registration
    // (`FetchQueue::drop` takes the registration back, under the same lock,
    // before the `Arc` it points into can go).
    unsafe { &*signal.cast::<Signal>() }.raise();
}

/// The member's queue of fetched records.
pub(crate) struct FetchQueue {
    ptr: NonNull<rd::rd_kafka_queue_t>,
    /// Raised when the queue may have records.
    readiness: Arc<Signal>,
}

// SAFETY: librdkafka's queues are thread-safe; the handle is a reference to
// one.
unsafe impl Send for FetchQueue {}
unsafe impl Sync for FetchQueue {}

impl FetchQueue {
    /// A queue of `client`'s, which must be dropped before `client` is
    /// destroyed.
    pub(crate) fn new<C: ClientContext>(client: &Client<C>) -> Self {
        // SAFETY: a live client handle.
        let ptr = unsafe { rd::rd_kafka_queue_new(client.native_ptr()) };
        let ptr = NonNull::new(ptr).expect("librdkafka allocates a queue or aborts");
        let readiness = Arc::new(Signal::default());
        let opaque = Arc::as_ptr(&readiness).cast_mut().cast::<c_void>();
        // SAFETY: our queue; `readiness` stays put until `drop` takes the
        // registration back.
        unsafe { rd::rd_kafka_queue_cb_event_enable(ptr.as_ptr(), Some(on_records), opaque) };
        FetchQueue { ptr, readiness }
    }

    /// Forwards `partition`'s records here. Called before the partition is
    /// assigned, so that none of them reach the consumer's queue first;
    /// false when librdkafka knows no such topic name.
    ///
    /// librdkafka marks a queue forwarded by the application as its own: its
    /// fetch start no longer forwards it to the consumer's queue. Its fetch
    /// stop (on a revoke) drops the forward, so each assignment forwards
    /// again; librdkafka starts no fetch until the stops before have ended.
    pub(crate) fn forward<C: ClientContext>(
        &self,
        client: &Client<C>,
        topic: &str,
        partition: i32,
    ) -> bool {
        let Ok(topic) = CString::new(topic) else {
            return false;
        };
        // SAFETY: a live client handle and a C string librdkafka copies.
        let from = unsafe {
            rd::rd_kafka_queue_get_partition(client.native_ptr(), topic.as_ptr(), partition)
        };
        if from.is_null() {
            return false;
        }
        // SAFETY: two live queues; the forward holds its own reference to
        // ours, so the partition's handle can go at once.
        unsafe {
            rd::rd_kafka_queue_forward(from, self.ptr.as_ptr());
            rd::rd_kafka_queue_destroy(from);
        }
        true
    }

    /// The records (and errors) queued.
    fn len(&self) -> usize {
        // SAFETY: our queue.
        unsafe { rd::rd_kafka_queue_length(self.ptr.as_ptr()) }
    }

    /// Reads up to `into.len()` messages into `into`, without waiting;
    /// returns how many.
    fn read(&self, into: &mut [*mut rd::rd_kafka_message_t]) -> usize {
        // SAFETY: our queue, and room for `into.len()` messages.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.ptr.as_ptr(), 0, into.as_mut_ptr(), into.len())
        };
        usize::try_from(n).unwrap_or(0)
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: our handle. Unregistering takes the queue's lock, under
        // which the wake-up runs: once it returns, none holds `readiness`.
        // Destroying the queue disables it: records the partitions still
        // forward are dropped (their offsets were never stored).
        unsafe {
            rd::rd_kafka_queue_cb_event_enable(self.ptr.as_ptr(), None, ptr::null_mut());
            rd::rd_kafka_queue_destroy(self.ptr.as_ptr());
        }
    }
}

/// The run loop's side of the queue: records read but not yet taken, held
/// where librdkafka's batch read put them.
pub(crate) struct Reader<'c> {
    queue: Arc<FetchQueue>,
    /// The last batch read: `batch[next..len]` are not yet taken, each a
    /// message of the consumer's that the reader owns.
    batch: Box<[*mut rd::rd_kafka_message_t]>,
    next: usize,
    len: usize,
    _consumer: PhantomData<&'c ()>,
}

// SAFETY: a message taken off a queue belongs to whoever holds it, and
// librdkafka lets any thread read or destroy it (as for `Fetched`).
unsafe impl Send for Reader<'_> {}

impl<'c> Reader<'c> {
    pub(crate) fn new(queue: Arc<FetchQueue>) -> Self {
        Reader {
            queue,
            batch: vec![ptr::null_mut(); READ_BATCH].into_boxed_slice(),
            next: 0,
            len: 0,
            _consumer: PhantomData,
        }
    }

    /// The next record (or a partition's fetch error), without waiting.
    pub(crate) fn take(&mut self) -> Option<Result<Fetched<'c>, KafkaError>> {
        loop {
            if self.next == self.len {
                let readiness = &self.queue.readiness;
                // Lowered before the read: a record landing after it raises
                // it again.
                if !readiness.take() {
                    return None;
                }
                self.next = 0;
                self.len = self.queue.read(&mut self.batch);
                if self.len == 0 {
                    return None;
                }
                // Records in hand (and maybe more queued): the loop's wait
                // for records ends at once until they are taken.
                readiness.set();
            }
            let message = self.batch[self.next];
            self.next += 1;
            if let Some(message) = NonNull::new(message) {
                // SAFETY: the consumer's message, handed over once.
                return Some(unsafe { Fetched::from_queue(message) });
            }
        }
    }

    /// The next record in hand, if it is one (not an error), without
    /// reading more.
    pub(crate) fn take_read(&mut self) -> Option<Fetched<'c>> {
        let message = NonNull::new(*self.batch[self.next..self.len].first()?)?;
        // SAFETY: a message the reader owns.
        if unsafe { message.as_ref() }.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        self.next += 1;
        // SAFETY: the consumer's message, handed over once.
        unsafe { Fetched::from_queue(message) }.ok()
    }

    /// Drops the records of `partition` of `topic` read but not yet taken:
    /// its assignment ended, and they must not start a new one. librdkafka
    /// drops those still queued itself (the fetch stop outdates them).
    pub(crate) fn discard(&mut self, topic: &str, partition: i32) {
        let mut kept = self.next;
        for i in self.next..self.len {
            let message = self.batch[i];
            let Some(m) = NonNull::new(message) else {
                continue;
            };
            // SAFETY: a message the reader owns.
            let goes = unsafe { m.as_ref() }.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                // SAFETY: a record the reader owns (no error: `from_queue`
                // hands it back), looked at and not taken.
                && unsafe { Fetched::from_queue(m) }.is_ok_and(|record| {
                    let record = ManuallyDrop::new(record);
                    record.partition() == partition && record.topic() == topic
                });
            if goes {
                // SAFETY: ours, destroyed once.
                unsafe { rd::rd_kafka_message_destroy(message) };
            } else {
                self.batch[kept] = message;
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// The records read ahead of the run loop: queued, and read but not
    /// yet taken.
    pub(crate) fn len(&self) -> usize {
        self.queue.len() + (self.len - self.next)
    }

    /// Resolves once [`take`](Self::take) may have a record.
    pub(crate) fn ready(&self) -> impl Future<Output = ()> + '_ {
        self.queue.readiness.wait()
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        for &message in &self.batch[self.next..self.len] {
            if !message.is_null() {
                // SAFETY: a message the reader owns, destroyed once.
                unsafe { rd::rd_kafka_message_destroy(message) };
            }
        }
    }
}
