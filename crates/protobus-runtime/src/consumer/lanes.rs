//! Which records may start now: each record has a lane (its partition, its
//! key, or none, by [`ProcessingOrder`]); one record per lane runs at a time
//! and the others wait for it in offset order. The records that waited
//! start together as a [`Run`], handled one after another by one call, so
//! what starting and finishing costs is paid per run. Also where each
//! partition's commit position moved, when a partition should stop
//! fetching, and which results still count after a revoke.

use std::collections::VecDeque;
use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, RandomState};

use crate::consumer::ProcessingOrder;
use crate::consumer::fetched::Fetched;
use crate::consumer::offsets::{OffsetTracker, Position};

/// What the lanes need to know of a record.
pub(crate) trait Record {
    fn offset(&self) -> i64;
    fn key(&self) -> Option<&[u8]>;
    fn leader_epoch(&self) -> i32;
}

impl Record for Fetched<'_> {
    fn offset(&self) -> i64 {
        Fetched::offset(self)
    }

    fn key(&self) -> Option<&[u8]> {
        Fetched::key(self)
    }

    fn leader_epoch(&self) -> i32 {
        Fetched::leader_epoch(self)
    }
}

/// A partition of this member: its topic's index among the subscribed
/// topics, and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PartitionId {
    pub(crate) topic: usize,
    pub(crate) partition: i32,
}

/// Which lane of which assignment of a partition a started record belongs
/// to: a result for a partition revoked (and maybe assigned again) since is
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) partition: PartitionId,
    generation: u64,
    /// Key order: the key's hash; 0 otherwise.
    lane: u64,
}

/// What became of a record read.
pub(crate) enum Accepted<M> {
    /// Its lane was free: start it.
    Start(M, Ticket),
    /// It waits for the record ahead of it in its lane.
    Waiting,
    /// Its partition is leaving this member, or it was read before: drop it.
    Dropped(M),
}

/// Records of one lane started together, in offset order: `first`, then
/// `rest` (empty, and so not allocated, for a run of one).
#[derive(Debug, PartialEq)]
pub(crate) struct Run<M> {
    pub(crate) first: M,
    pub(crate) rest: VecDeque<M>,
}

impl<M> Run<M> {
    pub(crate) fn one(first: M) -> Self {
        Run {
            first,
            rest: VecDeque::new(),
        }
    }

    /// The records of `queue`, if it has any.
    fn of(mut queue: VecDeque<M>) -> Option<Self> {
        let first = queue.pop_front()?;
        Some(Run { first, rest: queue })
    }

    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }
}

/// How the records of a topic may start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicLanes {
    pub(crate) order: ProcessingOrder,
    /// Records of one partition read and not committed past, at most
    /// (`usize::MAX`: bounded elsewhere).
    pub(crate) max_outstanding: usize,
}

impl TopicLanes {
    #[cfg(test)]
    fn new(order: ProcessingOrder, max_outstanding: usize) -> Self {
        TopicLanes {
            order,
            max_outstanding,
        }
    }
}

/// The lanes of every partition of a member.
pub(crate) struct Lanes<M> {
    /// By topic index.
    topics: Vec<TopicLanes>,
    /// By topic index, then partition number.
    partitions: Vec<Vec<Option<Partition<M>>>>,
    generations: u64,
    hasher: RandomState,
    /// Partitions whose commit position moved since it was last taken.
    moved: Vec<PartitionId>,
    /// Partitions to pause (`true`) or resume, in the order decided.
    pauses: Vec<(PartitionId, bool)>,
}

struct Partition<M> {
    generation: u64,
    offsets: OffsetTracker,
    in_flight: usize,
    retrying: usize,
    /// Partition order: whether its one lane is taken.
    busy: bool,
    /// Partition order: the records waiting for the lane.
    waiting: VecDeque<M>,
    /// Key order: the taken lanes, by key hash, each with its waiting
    /// records. Two keys with one hash share a lane: more order, never less.
    keys: HashMap<u64, VecDeque<M>>,
    paused: bool,
    /// Revoked: nothing more starts.
    closing: bool,
    /// The commit position, when it moved since it was last taken.
    unstored: Option<Position>,
}

impl<M: Record> Lanes<M> {
    /// Lanes for `topics` (by topic index).
    pub(crate) fn new(topics: Vec<TopicLanes>) -> Self {
        Lanes {
            partitions: topics.iter().map(|_| Vec::new()).collect(),
            topics,
            generations: 0,
            hasher: RandomState::new(),
            moved: Vec::new(),
            pauses: Vec::new(),
        }
    }

    /// The state of `ticket`'s partition, if it is still that assignment.
    fn live(
        partitions: &mut [Vec<Option<Partition<M>>>],
        ticket: Ticket,
    ) -> Option<&mut Partition<M>> {
        Self::find(partitions, ticket.partition).filter(|p| p.generation == ticket.generation)
    }

    fn state(&mut self, id: PartitionId) -> Option<&mut Partition<M>> {
        Self::find(&mut self.partitions, id)
    }

    fn find(
        partitions: &mut [Vec<Option<Partition<M>>>],
        id: PartitionId,
    ) -> Option<&mut Partition<M>> {
        partitions
            .get_mut(id.topic)?
            .get_mut(usize::try_from(id.partition).ok()?)?
            .as_mut()
    }

    fn lane(&self, record: &M) -> u64 {
        self.hasher.hash_one(record.key())
    }

    /// Takes a record just read from `id`.
    pub(crate) fn accept(&mut self, id: PartitionId, record: M) -> Accepted<M> {
        let lanes = self.topics[id.topic];
        let order = lanes.order;
        let lane = match order {
            ProcessingOrder::Key => self.lane(&record),
            _ => 0,
        };
        let Ok(number) = usize::try_from(id.partition) else {
            return Accepted::Dropped(record);
        };
        let topic = &mut self.partitions[id.topic];
        if topic.len() <= number {
            topic.resize_with(number + 1, || None);
        }
        let p = topic[number].get_or_insert_with(|| {
            self.generations += 1;
            Partition {
                generation: self.generations,
                offsets: OffsetTracker::default(),
                in_flight: 0,
                retrying: 0,
                busy: false,
                waiting: VecDeque::new(),
                keys: HashMap::new(),
                paused: false,
                closing: false,
                unstored: None,
            }
        });
        if p.closing || !p.offsets.read(record.offset()) {
            return Accepted::Dropped(record);
        }
        note_pause(&mut self.pauses, lanes, id, p);
        let ticket = Ticket {
            partition: id,
            generation: p.generation,
            lane,
        };
        let free = match order {
            ProcessingOrder::Partition if p.busy => {
                p.waiting.push_back(record);
                return Accepted::Waiting;
            }
            ProcessingOrder::Partition => {
                p.busy = true;
                record
            }
            ProcessingOrder::Key => match p.keys.entry(lane) {
                Entry::Occupied(mut waiting) => {
                    waiting.get_mut().push_back(record);
                    return Accepted::Waiting;
                }
                Entry::Vacant(free) => {
                    free.insert(VecDeque::new());
                    record
                }
            },
            ProcessingOrder::Unordered => record,
        };
        p.in_flight += 1;
        Accepted::Start(free, ticket)
    }

    /// `records`, started with `ticket`, are finished (handled,
    /// dead-lettered or skipped); false when their partition was revoked
    /// since. Where the partition's commit position moved is kept for
    /// [`take_moved`](Self::take_moved).
    pub(crate) fn finish<'r>(
        &mut self,
        ticket: Ticket,
        records: impl IntoIterator<Item = &'r M>,
    ) -> bool
    where
        M: 'r,
    {
        let lanes = self.topics[ticket.partition.topic];
        let Some(p) = Self::live(&mut self.partitions, ticket) else {
            return false;
        };
        // The last move, with the record that made it.
        let mut moved = None;
        let mut finished = 0;
        for record in records {
            finished += 1;
            if let Some(offset) = p.offsets.finish(record.offset()) {
                moved = Some((offset, record));
            }
        }
        p.in_flight -= finished;
        if let Some((offset, record)) = moved {
            // The record's epoch is the position's only when the position
            // is right after it; an older epoch would read as a truncation.
            let leader_epoch = if offset == record.offset() + 1 {
                record.leader_epoch()
            } else {
                -1
            };
            let position = Position {
                offset,
                leader_epoch,
            };
            if p.unstored.replace(position).is_none() {
                self.moved.push(ticket.partition);
            }
            note_pause(&mut self.pauses, lanes, ticket.partition, p);
        }
        true
    }

    /// A run started with `ticket` ended with `rest` not handled: they go
    /// back to the front of its lane. Unless `hold` (a record of the run is
    /// set aside to be retried, and keeps the lane), the lane's next run
    /// starts: returned, or the lane is free. Records of a partition revoked
    /// since are dropped.
    pub(crate) fn end_run(
        &mut self,
        ticket: Ticket,
        mut rest: VecDeque<M>,
        hold: bool,
    ) -> Option<Run<M>> {
        let order = self.topics[ticket.partition.topic].order;
        let p = Self::live(&mut self.partitions, ticket)?;
        p.in_flight -= rest.len();
        if p.closing {
            return None;
        }
        let waiting = match order {
            ProcessingOrder::Partition => &mut p.waiting,
            ProcessingOrder::Key => p.keys.get_mut(&ticket.lane)?,
            // Unordered records start alone, as they are read.
            ProcessingOrder::Unordered => return None,
        };
        // What arrived while the run ran goes behind its rest; the larger
        // allocation of the two serves the lane from now on.
        if !rest.is_empty() || rest.capacity() > waiting.capacity() {
            rest.append(waiting);
            *waiting = rest;
        }
        if hold {
            return None;
        }
        let next = Run::of(std::mem::take(waiting));
        match &next {
            Some(run) => p.in_flight += run.len(),
            None if order == ProcessingOrder::Key => {
                p.keys.remove(&ticket.lane);
            }
            None => p.busy = false,
        }
        next
    }

    /// The commit positions that moved since the last call, one per
    /// partition still here.
    pub(crate) fn take_moved(&mut self) -> Vec<(PartitionId, Position)> {
        let mut moved = std::mem::take(&mut self.moved);
        let positions = moved
            .drain(..)
            .filter_map(|id| Some((id, self.state(id)?.unstored.take()?)))
            .collect();
        // The list's allocation serves the next round.
        self.moved = moved;
        positions
    }

    /// A started record is set aside to be retried: its lane stays taken.
    /// False when its partition was revoked since (drop the record).
    pub(crate) fn set_aside(&mut self, ticket: Ticket) -> bool {
        let lanes = self.topics[ticket.partition.topic];
        let Some(p) = Self::live(&mut self.partitions, ticket) else {
            return false;
        };
        p.in_flight -= 1;
        p.retrying += 1;
        note_pause(&mut self.pauses, lanes, ticket.partition, p);
        true
    }

    /// A record set aside starts again. False when its partition was revoked
    /// since (drop the record).
    pub(crate) fn retry(&mut self, ticket: Ticket) -> bool {
        let lanes = self.topics[ticket.partition.topic];
        let Some(p) = Self::live(&mut self.partitions, ticket) else {
            return false;
        };
        p.retrying -= 1;
        p.in_flight += 1;
        note_pause(&mut self.pauses, lanes, ticket.partition, p);
        true
    }

    /// `records` started will not run after all (their partition is leaving).
    pub(crate) fn abandon(&mut self, ticket: Ticket, records: usize) {
        if let Some(p) = Self::live(&mut self.partitions, ticket) {
            p.in_flight -= records;
        }
    }

    /// The partitions to pause (`true`) or resume since the last call, in
    /// the order decided: a partition is paused at `max_outstanding`
    /// records until half of them are done, and in partition order while
    /// it waits for a retry. Decided as the records come and go, where the
    /// partition is at hand, rather than looked up again after each step.
    pub(crate) fn take_pauses(&mut self) -> Vec<(PartitionId, bool)> {
        std::mem::take(&mut self.pauses)
    }

    /// Whether a pause or resume waits to be taken.
    #[inline]
    pub(crate) fn pauses_changed(&self) -> bool {
        !self.pauses.is_empty()
    }

    /// `id` is leaving this member: nothing more of it starts. Returns the
    /// records that were waiting (to drop) and how many are still in flight.
    pub(crate) fn close(&mut self, id: PartitionId) -> Vec<M> {
        let Some(p) = self.state(id) else {
            return Vec::new();
        };
        p.closing = true;
        let mut dropped: Vec<M> = p.waiting.drain(..).collect();
        for (_, waiting) in p.keys.drain() {
            dropped.extend(waiting);
        }
        dropped
    }

    /// Handler calls in flight for `id`.
    pub(crate) fn in_flight(&mut self, id: PartitionId) -> usize {
        self.state(id).map_or(0, |p| p.in_flight)
    }

    /// The offset after the last record of `id` read, if any was.
    pub(crate) fn next_to_read(&mut self, id: PartitionId) -> Option<i64> {
        self.state(id).and_then(|p| p.offsets.next_to_read())
    }

    /// Whether `id` was paused (and so must be resumed if it is kept).
    pub(crate) fn paused(&mut self, id: PartitionId) -> bool {
        self.state(id).is_some_and(|p| p.paused)
    }

    /// Forgets `id`: results of its records still in flight are ignored.
    pub(crate) fn forget(&mut self, id: PartitionId) {
        if let Some(slot) = self
            .partitions
            .get_mut(id.topic)
            .and_then(|t| t.get_mut(usize::try_from(id.partition).ok()?))
        {
            *slot = None;
        }
    }
}

/// Notes in `pauses` whether `p`, partition `id` of a topic with `lanes`,
/// must now be paused or resumed (a partition closing is left as it is).
fn note_pause<M>(
    pauses: &mut Vec<(PartitionId, bool)>,
    lanes: TopicLanes,
    id: PartitionId,
    p: &mut Partition<M>,
) {
    if p.closing {
        return;
    }
    let outstanding = p.offsets.outstanding();
    let full = if p.paused {
        outstanding > lanes.max_outstanding / 2
    } else {
        outstanding >= lanes.max_outstanding
    };
    let wanted = full || (lanes.order == ProcessingOrder::Partition && p.retrying > 0);
    if wanted != p.paused {
        p.paused = wanted;
        pauses.push((id, wanted));
    }
}

#[cfg(test)]
mod tests;
