//! Per partition, which offset may be committed: the lowest one not finished.
//!
//! Records finish in any order when handled concurrently; the committed
//! offset must never pass one that is still in flight, waiting or retrying,
//! or a crash would lose it. The tracker keeps the offsets read and not yet
//! committed past, in order, and says where the commit position moves.

use std::collections::VecDeque;

/// Where a partition's reading resumes: the offset to commit, and the leader
/// epoch of the record before it (-1 when not known), with which the next
/// owner detects a log truncated under it (KIP-320).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
}

/// The offsets of one partition read and not yet committed past.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    /// Ascending offsets with whether each is finished; the first is never
    /// finished (finished ones at the front are dropped at once).
    open: VecDeque<(i64, bool)>,
    /// The commit position once `open` is empty: after the last offset finished.
    next: Option<i64>,
}

impl OffsetTracker {
    /// Records that `offset` was read. Offsets arrive in ascending order; one
    /// at or below an offset already read (a rewind) is refused.
    pub(crate) fn read(&mut self, offset: i64) -> bool {
        let last = self
            .open
            .back()
            .map(|(o, _)| *o)
            .or(self.next.map(|n| n - 1));
        if last.is_some_and(|last| offset <= last) {
            return false;
        }
        self.open.push_back((offset, false));
        true
    }

    /// Records that `offset` is finished (handled, dead-lettered or skipped).
    /// Returns the new commit position when it moved.
    pub(crate) fn finish(&mut self, offset: i64) -> Option<i64> {
        // Mostly the first open one: records of a partition finish in
        // order unless handled concurrently.
        if self.open.front().is_some_and(|&(o, _)| o == offset) {
            self.open[0].1 = true;
        } else {
            let index = self.open.binary_search_by_key(&offset, |(o, _)| *o).ok()?;
            self.open[index].1 = true;
            if index != 0 {
                return None;
            }
        }
        while let Some(&(o, true)) = self.open.front() {
            self.open.pop_front();
            self.next = Some(o + 1);
        }
        Some(self.position().expect("an offset was finished"))
    }

    /// The offset to commit: the lowest one not finished, or after the last
    /// one read when all are; `None` before anything was finished.
    pub(crate) fn position(&self) -> Option<i64> {
        match self.open.front() {
            Some(&(o, _)) if self.next.is_some() => Some(o),
            Some(_) => None,
            None => self.next,
        }
    }

    /// Offsets read and not committed past (finished or not).
    pub(crate) fn outstanding(&self) -> usize {
        self.open.len()
    }

    /// The offset after the last one read, if any was.
    pub(crate) fn next_to_read(&self) -> Option<i64> {
        self.open.back().map(|(o, _)| o + 1).or(self.next)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_position_waits_for_the_lowest_unfinished_offset() {
        let mut t = OffsetTracker::default();
        for o in [10, 11, 12, 15] {
            assert!(t.read(o));
        }
        assert_eq!(t.position(), None, "nothing finished yet");
        assert_eq!(t.finish(11), None, "10 is still open");
        assert_eq!(t.finish(12), None);
        assert_eq!(t.outstanding(), 4);
        assert_eq!(t.finish(10), Some(15), "past 10, 11 and 12 up to 15");
        assert_eq!(t.position(), Some(15));
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.finish(15), Some(16), "after the last one read");
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn the_next_offset_to_read_follows_the_last_one_read() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.next_to_read(), None, "nothing read");
        assert!(t.read(7));
        assert!(t.read(9));
        assert_eq!(t.next_to_read(), Some(10));
        t.finish(7);
        t.finish(9);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.next_to_read(), Some(10), "all finished");
    }

    #[test]
    fn a_rewind_or_an_unknown_offset_changes_nothing() {
        let mut t = OffsetTracker::default();
        assert!(t.read(5));
        assert!(!t.read(5), "read twice");
        assert!(!t.read(3), "a rewind");
        assert_eq!(t.finish(4), None, "never read");
        assert_eq!(t.finish(5), Some(6));
        assert_eq!(t.finish(5), None, "finished twice");
        assert!(!t.read(5), "below the commit position");
        assert!(t.read(9), "a gap (compaction, transaction markers) is fine");
        assert_eq!(t.position(), Some(9));
    }

    proptest! {
        /// Random completion orders never commit past an unfinished offset,
        /// and once all are finished the position is after the last one.
        #[test]
        fn random_completion_orders_never_pass_unfinished_work(
            gaps in prop::collection::vec(1i64..4, 1..200),
            seed in any::<u64>(),
        ) {
            let mut offsets = Vec::with_capacity(gaps.len());
            let mut offset = 100;
            for gap in gaps {
                offset += gap;
                offsets.push(offset);
            }
            let mut t = OffsetTracker::default();
            for &o in &offsets {
                prop_assert!(t.read(o));
            }
            // A random permutation from the seed (Fisher-Yates, xorshift).
            let mut finishing = offsets.clone();
            let mut x = seed | 1;
            for i in (1..finishing.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                finishing.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut finished = std::collections::BTreeSet::new();
            let mut last = None;
            for o in finishing {
                finished.insert(o);
                let moved = t.finish(o);
                let lowest_open = offsets.iter().find(|o| !finished.contains(o));
                if let Some(position) = t.position() {
                    if let Some(&open) = lowest_open {
                        prop_assert!(position <= open, "{position} passes unfinished {open}");
                    }
                    prop_assert!(offsets.iter().filter(|&&o| o < position).all(|o| finished.contains(o)));
                    prop_assert!(last.is_none_or(|l| l <= position), "the position went back");
                    last = Some(position);
                }
                if let Some(moved) = moved {
                    prop_assert_eq!(Some(moved), t.position());
                }
            }
            prop_assert_eq!(t.position(), Some(offsets[offsets.len() - 1] + 1));
            prop_assert_eq!(t.outstanding(), 0);
        }
    }
}
