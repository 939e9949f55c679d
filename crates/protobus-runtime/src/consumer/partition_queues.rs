//! Each assigned partition's records in a queue of its own, read a batch at
//! a time.
//!
//! rdkafka reads one record per call from the consumer's queue: the lock,
//! two clock reads and a reference count per record cost more than half
//! of a raw read loop. librdkafka's batch read cannot serve that queue,
//! though: it would answer a rebalance with its own assignment, bypassing
//! the group context. So each partition's records are split off into their
//! own queue when it is assigned (librdkafka then never forwards them to
//! the consumer's queue again), and those queues are read in batches. The
//! consumer's queue still carries rebalances and errors, read through
//! rdkafka's stream.
//!
//! A queue that goes from empty to non-empty calls [`on_records`] on a
//! librdkafka thread, which flags it and wakes the run loop.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::{CString, c_void};
use std::future::Future;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use rdkafka::bindings as rd;
use rdkafka::client::Client;
use rdkafka::error::KafkaError;

use crate::consumer::fetched::Fetched;
use crate::consumer::lanes::PartitionId;

/// Records read from the queues at most per batch: enough that a read's
/// own cost (two clock reads, the partition's lock per record) is spread
/// thin, few enough that records read but not yet taken stay a small part
/// of what librdkafka buffers.
const READ_BATCH: usize = 256;

/// Whether any queue may have records, and the task to wake when one does.
/// The group context holds it too: a partition just assigned wakes the run
/// loop, which then takes its queue.
#[derive(Default)]
pub(crate) struct Readiness {
    any: AtomicBool,
    waker: AtomicWaker,
}

impl Readiness {
    pub(crate) fn wake(&self) {
        self.any.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// What a queue's wake-up knows: its own flag, and the shared readiness.
struct Signal {
    ready: AtomicBool,
    readiness: Arc<Readiness>,
}

/// Called by librdkafka, under the queue's lock, when a record lands in an
/// empty queue: no call back into librdkafka, nothing that can unwind.
unsafe extern "C" fn on_records(_client: *mut rd::rd_kafka_t, signal: *mut c_void) {
    // SAFETY: the `Signal` registered with the queue, which outlives the
    // registration (`PartitionQueue::drop` takes the registration back, under
    // the same lock, before it frees the signal).
    let signal = unsafe { &*signal.cast::<Signal>() };
    signal.ready.store(true, Ordering::Release);
    signal.readiness.wake();
}

/// A partition's own queue of fetched records.
pub(crate) struct PartitionQueue {
    ptr: NonNull<rd::rd_kafka_queue_t>,
    /// Registered with the queue once the run loop adopts it.
    signal: Option<Box<Signal>>,
}

// SAFETY: librdkafka's queues are thread-safe; the handle is only a
// reference to one.
unsafe impl Send for PartitionQueue {}

impl PartitionQueue {
    /// Splits `partition`'s records off the consumer's queue. Called before
    /// the partition is assigned, so that none of its records reach the
    /// consumer's queue first; `None` when librdkafka knows no such topic
    /// name.
    pub(crate) fn split<C: rdkafka::ClientContext>(
        client: &Client<C>,
        topic: &str,
        partition: i32,
    ) -> Option<Self> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: a live consumer handle and a C string librdkafka copies.
        let ptr = unsafe {
            rd::rd_kafka_queue_get_partition(client.native_ptr(), topic.as_ptr(), partition)
        };
        let ptr = NonNull::new(ptr)?;
        // SAFETY: a queue handle of ours. Forwarding to nothing marks the
        // queue as the application's: librdkafka's fetch start no longer
        // forwards it to the consumer's queue, for the consumer's lifetime.
        unsafe { rd::rd_kafka_queue_forward(ptr.as_ptr(), ptr::null_mut()) };
        Some(PartitionQueue { ptr, signal: None })
    }

    /// Reads up to `max` records into `into`, without waiting; how many
    /// were there (records and errors).
    fn read<'c>(
        &self,
        scratch: &mut [*mut rd::rd_kafka_message_t],
        max: usize,
        into: &mut VecDeque<Result<Fetched<'c>, KafkaError>>,
    ) -> usize {
        let max = max.min(scratch.len());
        // SAFETY: our queue handle, and room for `max` messages.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.ptr.as_ptr(), 0, scratch.as_mut_ptr(), max)
        };
        let n = usize::try_from(n).unwrap_or(0);
        for &message in &scratch[..n] {
            if let Some(message) = NonNull::new(message) {
                // SAFETY: each message is the consumer's, handed over once.
                into.push_back(unsafe { Fetched::from_queue(message) });
            }
        }
        n
    }
}

impl Drop for PartitionQueue {
    fn drop(&mut self) {
        // SAFETY: our handle. Unregistering takes the queue's lock, under
        // which the wake-up runs: once it returns, no wake-up holds `signal`.
        unsafe {
            if self.signal.is_some() {
                rd::rd_kafka_queue_cb_event_enable(self.ptr.as_ptr(), None, ptr::null_mut());
            }
            rd::rd_kafka_queue_destroy(self.ptr.as_ptr());
        }
    }
}

/// The run loop's partition queues and the records read from them but not
/// yet taken.
pub(crate) struct PartitionQueues<'c> {
    queues: Vec<(PartitionId, PartitionQueue)>,
    readiness: Arc<Readiness>,
    read: VecDeque<Result<Fetched<'c>, KafkaError>>,
    /// Where the next read starts, so that every partition gets its turn.
    next: usize,
    scratch: Box<[*mut rd::rd_kafka_message_t]>,
}

// SAFETY: `scratch` holds no pointer between reads; the rest is `Send`.
unsafe impl Send for PartitionQueues<'_> {}

impl<'c> PartitionQueues<'c> {
    pub(crate) fn new(readiness: Arc<Readiness>) -> Self {
        PartitionQueues {
            queues: Vec::new(),
            readiness,
            read: VecDeque::with_capacity(READ_BATCH),
            next: 0,
            scratch: vec![ptr::null_mut(); READ_BATCH].into_boxed_slice(),
        }
    }

    /// Starts reading `queue`, the split queue of `id`, in place of any
    /// earlier one of the same partition.
    pub(crate) fn adopt(&mut self, id: PartitionId, mut queue: PartitionQueue) {
        // Both handles name one queue, whose wake-up the old one's drop
        // takes back: the old one goes first.
        if let Some(i) = self.queues.iter().position(|(q, _)| *q == id) {
            self.queues.swap_remove(i);
        }
        // Records may have arrived since the split, before there was
        // anything to wake: the queue starts out ready.
        let signal = Box::new(Signal {
            ready: AtomicBool::new(true),
            readiness: Arc::clone(&self.readiness),
        });
        let opaque = ptr::from_ref::<Signal>(&signal).cast_mut().cast::<c_void>();
        // SAFETY: our handle; the boxed signal stays put until `drop` takes
        // the registration back.
        unsafe { rd::rd_kafka_queue_cb_event_enable(queue.ptr.as_ptr(), Some(on_records), opaque) };
        queue.signal = Some(signal);
        self.queues.push((id, queue));
        self.readiness.any.store(true, Ordering::Release);
    }

    /// The next record (or a partition's fetch error), without waiting.
    pub(crate) fn take(&mut self) -> Option<Result<Fetched<'c>, KafkaError>> {
        if let Some(record) = self.read.pop_front() {
            return Some(record);
        }
        if !self.readiness.any.swap(false, Ordering::AcqRel) {
            return None;
        }
        let len = self.queues.len();
        for turn in 0..len {
            let room = READ_BATCH - self.read.len();
            let i = (self.next + turn) % len;
            let (_, queue) = &self.queues[i];
            let signal = queue.signal.as_ref().expect("adopted queues have a signal");
            if room == 0 {
                // Full: the queues not read keep their turn.
                self.next = i;
                self.readiness.any.store(true, Ordering::Release);
                break;
            }
            // A plain load first: with hundreds of partitions, most are
            // not ready. Cleared before the read: a record landing after it
            // flags the queue again.
            if !signal.ready.load(Ordering::Acquire) {
                continue;
            }
            signal.ready.store(false, Ordering::Release);
            if queue.read(&mut self.scratch, room, &mut self.read) == room {
                // Maybe more.
                signal.ready.store(true, Ordering::Release);
                self.readiness.any.store(true, Ordering::Release);
            }
        }
        if !self.read.is_empty() {
            // Records in hand: the loop's wait for records ends at once.
            self.readiness.any.store(true, Ordering::Release);
        }
        self.read.pop_front()
    }

    /// Resolves once [`take`](Self::take) may have a record.
    pub(crate) fn ready(&self) -> impl Future<Output = ()> + '_ {
        let readiness = &self.readiness;
        std::future::poll_fn(move |cx| {
            if readiness.any.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            readiness.waker.register(cx.waker());
            if readiness.any.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}
