//! Pausing and resuming partitions as their lanes fill and drain, and
//! having a resumed partition fetched again at once.

use std::sync::atomic::Ordering;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use tracing::debug;

use crate::consumer::Dispatch;
use crate::consumer::lanes::PartitionId;
use crate::consumer::member::Member;
use crate::consumer::run_loop::State;

impl<D: Dispatch> Member<D> {
    /// Pauses or resumes the partitions whose lanes now want it.
    #[inline]
    pub(super) fn apply_pauses(&self, st: &mut State<'_>) {
        if st.lanes.pauses_changed() {
            self.pause_and_resume(st);
        }
    }

    #[cold]
    fn pause_and_resume(&self, st: &mut State<'_>) {
        for (id, pause) in st.lanes.take_pauses() {
            self.pause(id, pause);
            if pause {
                self.shared.stats.paused.fetch_add(1, Ordering::Relaxed);
            } else {
                self.shared.stats.paused.fetch_sub(1, Ordering::Relaxed);
                if let Some(next) = st.lanes.next_to_read(id) {
                    self.wake_fetcher(id, next);
                }
            }
        }
    }

    /// Has the fetcher of `id`, just resumed, fetch again now. librdkafka's
    /// resume does not wake the leader's broker thread, which then idles
    /// for up to a second before it fetches the partition again (the
    /// pause dropped what it had fetched). A seek to where the resume would
    /// start, `next` (the offset after the last record read), restarts the
    /// partition's fetch state, and that wakes the thread.
    fn wake_fetcher(&self, id: PartitionId, next: i64) {
        let seek = self.consumer.seek(
            &self.shared.topics[id.topic],
            id.partition,
            rdkafka::Offset::Offset(next),
            std::time::Duration::ZERO,
        );
        if let Err(err) = seek {
            debug!(partition = id.partition, next, error = %err, "could not restart the fetch after a resume (no longer assigned?)");
        }
    }

    pub(super) fn pause(&self, id: PartitionId, pause: bool) {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.shared.topics[id.topic], id.partition);
        let done = if pause {
            self.consumer.pause(&list)
        } else {
            self.consumer.resume(&list)
        };
        if let Err(err) = done {
            debug!(partition = id.partition, pause, error = %err, "could not pause or resume (no longer assigned?)");
        }
    }
}
