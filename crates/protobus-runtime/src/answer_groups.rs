//! Kafka's answers for records sent together, handed from the threads that
//! serve their delivery reports to the one task awaiting them all.
//!
//! A group is one slot of a pool, whatever the number of its records: the
//! sender touches it when it is made and when it is sealed, not per record,
//! and its waiter is woken once, when the last answer is in. Each record's
//! delivery opaque carries the group's key with the record's index in the
//! high bits the pool leaves free.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use sharded_slab::pool::Ref;
use sharded_slab::{Clear, Pool};

/// Bits of a record's opaque that hold its index in its group.
const INDEX_BITS: usize = 10;
/// Where the index starts: the bits above what the pool uses for its keys.
const INDEX_SHIFT: usize = usize::BITS as usize - INDEX_BITS;

/// The most records one group answers for.
pub(crate) const MAX_GROUP: usize = 1 << INDEX_BITS;

/// Where a record landed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivered {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// Kafka's answer for one record; an error boxed, as errors are rare and
/// every answer takes the room of the largest.
pub(crate) type Answer = Result<Delivered, Box<KafkaError>>;

/// A producer's groups in flight: the context of its librdkafka client,
/// shared with the clients that replace it after a fatal error, so that a
/// group goes on with the replacement. A pool rather than a box per group:
/// a group's memory, its answers' included, is reused rather than freed on
/// the task that awaited it.
#[derive(Clone)]
pub(crate) struct Answers {
    groups: Arc<Pool<Group, GroupPages>>,
}

/// The pool's pages: its first, per sending thread, holds 1 024 groups,
/// made on the thread's first send, and each next one twice as many. A
/// group is looked for page by page from the first, so with thousands of
/// single sends in flight, large first pages keep that search short.
///
/// A key packs, from the low bits: the group's place in its page and the
/// page (11 + 14 bits: up to 16 million groups per thread), the thread
/// (13 bits, for the pool's default of 4 096 threads), the generation that
/// tells a reused place from the group that was there (16 bits: an answer
/// for a group let go finds no group, rather than the next one there), and
/// the record's index above them.
struct GroupPages;

impl sharded_slab::Config for GroupPages {
    const INITIAL_PAGE_SIZE: usize = 1024;
    const MAX_PAGES: usize = 14;
    const RESERVED_BITS: usize = INDEX_BITS;
}

/// The answers for one group's records, in the order they were queued:
/// the first in the group itself, so that a single send's answer shares
/// its cache lines with the group's count and waker, the rest beside it.
#[derive(Default)]
struct Group {
    first: OnceLock<Answer>,
    rest: Vec<OnceLock<Answer>>,
    /// The records queued and not yet answered, once the group is sealed;
    /// until then, minus the answers in so far (wrapping). It reaches zero
    /// once: sealed, and every answer in.
    left: AtomicUsize,
    waker: AtomicWaker,
}

/// The most answers a group keeps room for once let go. A pool takes a
/// fresh place for each new group until its page is full, before it reuses
/// places let go on other threads, so it can hold some thousand groups per
/// sending thread: a large batch's answers (32 bytes each) are freed with
/// its group.
const KEPT_ANSWERS: usize = 16;

impl Clear for Group {
    fn clear(&mut self) {
        // A single send's room is kept for the group made here next.
        self.first = OnceLock::new();
        if self.rest.capacity() > KEPT_ANSWERS {
            self.rest = Vec::new();
        }
        self.rest.clear();
        *self.left.get_mut() = 0;
        self.waker = AtomicWaker::new();
    }
}

impl Group {
    /// Where the answer for the record at `index` goes.
    fn answer(&self, index: usize) -> Option<&OnceLock<Answer>> {
        match index {
            0 => Some(&self.first),
            _ => self.rest.get(index - 1),
        }
    }

    /// Counts `queued` records in at the seal; true when all their answers
    /// are in already.
    fn seal(&self, queued: usize) -> bool {
        self.left
            .fetch_add(queued, Ordering::AcqRel)
            .wrapping_add(queued)
            == 0
    }

    /// Counts one answer in; true when it was the sealed group's last.
    fn answered(&self) -> bool {
        self.left.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            groups: Arc::new(Pool::new_with_config::<GroupPages>()),
        }
    }
}

impl ClientContext for Answers {}

impl ProducerContext for Answers {
    /// The record's group key, and its index in the group above
    /// [`INDEX_SHIFT`].
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (key, index) = (opaque & !(usize::MAX << INDEX_SHIFT), opaque >> INDEX_SHIFT);
        // None: the group's waiter is gone, and no one waits for the answer.
        let Some(group) = self.groups.get(key) else {
            return;
        };
        let answer = match result {
            Ok(message) => Ok(Delivered {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((err, _)) => Err(Box::new(err.clone())),
        };
        if let Some(slot) = group.answer(index) {
            let _ = slot.set(answer);
        }
        if group.answered() {
            group.waker.wake();
        }
    }
}

impl Answers {
    /// A new group for up to `capacity` records (at most [`MAX_GROUP`]);
    /// its key. None when the pool has no room: as full as a queue can be.
    pub(crate) fn open(&self, capacity: usize) -> Option<usize> {
        debug_assert!(capacity <= MAX_GROUP);
        self.groups.create_with(|group| {
            (group.rest).resize_with(capacity.saturating_sub(1), OnceLock::new);
        })
    }

    /// The opaque of the record at `index` of group `key`.
    pub(crate) fn opaque(key: usize, index: usize) -> usize {
        debug_assert!(index < MAX_GROUP && key >> INDEX_SHIFT == 0);
        key | index << INDEX_SHIFT
    }

    /// Ready once every answer of group `key` is in, the group sealed
    /// first when `seal` gives the number of its records handed to
    /// librdkafka: no more are, after it.
    pub(crate) fn poll_answered(
        &self,
        key: usize,
        seal: Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Answered<'_>> {
        let group = self
            .groups
            .get(key)
            .expect("a group lives until its owner closes it");
        if let Some(queued) = seal
            && group.seal(queued)
        {
            return Poll::Ready(Answered(group));
        }
        if group.left.load(Ordering::Acquire) == 0 {
            return Poll::Ready(Answered(group));
        }
        group.waker.register(cx.waker());
        if group.left.load(Ordering::Acquire) == 0 {
            return Poll::Ready(Answered(group));
        }
        Poll::Pending
    }

    /// Lets group `key` go, answered or not: answers still to come go
    /// nowhere.
    pub(crate) fn close(&self, key: usize) {
        self.groups.clear(key);
    }

    #[cfg(test)]
    pub(crate) fn is_open(&self, key: usize) -> bool {
        self.groups.get(key).is_some()
    }
}

/// A group whose answers are all in.
pub(crate) struct Answered<'a>(Ref<'a, Group, GroupPages>);

impl Answered<'_> {
    /// The answer for the record at `index`.
    pub(crate) fn get(&self, index: usize) -> Option<Answer> {
        self.0.answer(index)?.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_takes_32_bytes() {
        // What a group's room costs per record (see `KEPT_ANSWERS`).
        assert_eq!(std::mem::size_of::<OnceLock<Answer>>(), 32);
    }

    #[test]
    fn an_index_rides_above_every_key_the_pool_hands_out() {
        // The pool's keys leave the reserved bits clear, and reading a key
        // with an index on it finds the same group.
        let answers = Answers::default();
        let key = answers.open(MAX_GROUP).unwrap();
        assert_eq!(key >> INDEX_SHIFT, 0);
        for index in [0, 1, MAX_GROUP - 1] {
            let opaque = Answers::opaque(key, index);
            assert_eq!(opaque >> INDEX_SHIFT, index);
            assert!(answers.groups.get(opaque).is_some());
        }
    }
}
