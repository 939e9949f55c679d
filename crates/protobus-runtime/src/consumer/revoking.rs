//! Partitions leaving the member: a revoke stops what has not started for
//! them, waits (at most `drain_timeout`) for their handler calls, then lets
//! the group have them.

use std::sync::atomic::Ordering;
use std::time::Instant;

use rdkafka::consumer::Consumer as _;
use tracing::warn;

use crate::consumer::Dispatch;
use crate::consumer::group;
use crate::consumer::handling::Job;
use crate::consumer::lanes::PartitionId;
use crate::consumer::member::Member;
use crate::consumer::run_loop::State;

/// A deferred revoke: the group waits until its handler calls are done or
/// `deadline` has passed.
pub(super) struct Revoking {
    pub(super) partitions: Vec<(String, i32)>,
    pub(super) ids: Vec<PartitionId>,
    pub(super) deadline: Instant,
}

impl<D: Dispatch> Member<D> {
    /// Takes the revokes librdkafka reported, and gives up the partitions
    /// whose handler calls are done or whose time is up.
    pub(super) async fn revokes(&self, st: &mut State<'_>) {
        for revoke in self.consumer.context().take_revokes() {
            let ids: Vec<PartitionId> = revoke
                .partitions
                .iter()
                .filter_map(|(topic, partition)| {
                    Some(PartitionId {
                        topic: self.topic_index(topic)?,
                        partition: *partition,
                    })
                })
                .collect();
            for &id in &ids {
                // Read before the revoke, not yet taken: taken later, they
                // would open the partition again in the lanes, and its next
                // assignment's first records would read as seen before.
                st.fetched
                    .discard(&self.shared.topics[id.topic], id.partition);
                drop(st.lanes.close(id));
                st.aside.retain(|a| a.job.ticket.partition != id);
                let lanes = &mut st.lanes;
                let mut leaving = |job: &Job, records: usize| {
                    let keep = job.ticket.partition != id;
                    if !keep {
                        lanes.abandon(job.ticket, records);
                    }
                    keep
                };
                st.ready.retain(|(run, job)| leaving(job, run.len()));
                let before = st.batches.iter().map(|b| b.records.len()).sum::<usize>();
                for next in &mut st.batches {
                    next.records.retain(|(_, job)| leaving(job, 1));
                    if next.records.is_empty() {
                        next.since = None;
                    }
                }
                st.batched -= before - st.batches.iter().map(|b| b.records.len()).sum::<usize>();
            }
            self.count_aside(st);
            if revoke.deferred {
                // Nothing more of them is handled here: stop fetching them.
                for &id in &ids {
                    self.pause(id, true);
                }
                st.revoking.push(Revoking {
                    partitions: revoke.partitions,
                    ids,
                    deadline: Instant::now() + self.shared.settings.drain_timeout,
                });
            } else {
                for id in ids {
                    self.forget(id, st);
                }
            }
        }
        let mut i = 0;
        while i < st.revoking.len() {
            let revoking = &st.revoking[i];
            let running: usize = revoking.ids.iter().map(|&id| st.lanes.in_flight(id)).sum();
            if running > 0 && Instant::now() < revoking.deadline {
                i += 1;
                continue;
            }
            let revoking = st.revoking.swap_remove(i);
            if running > 0 {
                warn!(
                    running,
                    partitions = ?revoking.partitions,
                    timeout = ?self.shared.settings.drain_timeout,
                    "revoked partitions given up while handler calls for them still run; \
                     their results are ignored and their events go to the next owner too"
                );
            }
            // Their commit takes what finished.
            self.store_moved(st);
            group::give_up(&self.consumer, revoking.partitions).await;
            for id in revoking.ids {
                self.forget(id, st);
            }
        }
    }

    /// Forgets a partition that left this member, and lifts any pause of
    /// ours (librdkafka keeps an application's pause across assignments).
    pub(super) fn forget(&self, id: PartitionId, st: &mut State<'_>) {
        if st.lanes.paused(id) {
            self.shared.stats.paused.fetch_sub(1, Ordering::Relaxed);
        }
        st.lanes.forget(id);
        self.pause(id, false);
    }
}
