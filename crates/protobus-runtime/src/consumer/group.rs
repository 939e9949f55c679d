//! The member's life in its group: partitions assigned at once, revoked only
//! once the run loop has finished (bounded) what was in flight for them and
//! committed it, errors that end the run, and leaving the group at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::TopicPartitionList;
use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use tracing::{debug, error, warn};

use crate::consumer::ConsumerSettings;
use crate::consumer::fetch_queue::FetchQueue;
use crate::consumer::offsets::Position;
use crate::error::{Error, ErrorKind};
use crate::instruments;

/// Partitions leaving the member.
#[derive(Debug)]
pub(crate) struct Revoke {
    pub(crate) partitions: Vec<(String, i32)>,
    /// The group waits for the run loop to give them up
    /// ([`give_up`]); otherwise (lost, or the member is closing) they were
    /// given up already and whatever is in flight for them no longer counts.
    pub(crate) deferred: bool,
}

/// The consumer's context: defers revokes to the run loop, keeps the latest
/// group state for the error of a close that does not end, and reports lag.
pub(crate) struct GroupContext {
    group: Arc<str>,
    /// Formatted only for the error that needs it.
    group_state: Arc<Mutex<Option<rdkafka::statistics::ConsumerGroup>>>,
    /// Revokes the run loop has not seen yet.
    revokes: Mutex<Vec<Revoke>>,
    /// Whether `revokes` has any: a load per loop instead of a lock.
    any_revoke: AtomicBool,
    /// The queue assigned partitions forward their records to, while a run
    /// loop reads it.
    fetch_queue: Mutex<Option<Arc<FetchQueue>>>,
    /// Set when the member closes: revokes are then done at once.
    closing: AtomicBool,
    /// Deferred revokes not yet given up, to give up when closing.
    deferred: Mutex<Vec<Vec<(String, i32)>>>,
    /// Which member of this member's consumer reports each partition's lag.
    lag_reporters: Arc<Mutex<instruments::LagReporters>>,
    /// This member's index among its consumer's.
    member: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl GroupContext {
    /// The context of member `member` of a consumer of `group`, whose
    /// members share `lag_reporters`.
    pub(crate) fn new(
        group: &str,
        lag_reporters: Arc<Mutex<instruments::LagReporters>>,
        member: usize,
    ) -> Self {
        GroupContext {
            group: Arc::from(group),
            group_state: Arc::default(),
            revokes: Mutex::default(),
            any_revoke: AtomicBool::new(false),
            fetch_queue: Mutex::default(),
            closing: AtomicBool::new(false),
            deferred: Mutex::default(),
            lag_reporters,
            member,
        }
    }

    /// Whether a revoke waits to be taken (a plain load: asked once per
    /// loop, while a revoke comes rarely).
    pub(crate) fn any_revoke(&self) -> bool {
        self.any_revoke.load(Ordering::Acquire)
    }

    /// The revokes since the last call.
    pub(crate) fn take_revokes(&self) -> Vec<Revoke> {
        if !self.any_revoke.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.revokes))
    }

    /// Opens the member's fetch queue for a run loop to read;
    /// [`GiveUpOnDrop`] closes it.
    pub(crate) fn open_fetch_queue<C: ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
    ) -> Arc<FetchQueue> {
        let queue = Arc::new(FetchQueue::new(client));
        *lock(&self.fetch_queue) = Some(Arc::clone(&queue));
        queue
    }

    fn push(&self, revoke: Revoke) {
        lock(&self.revokes).push(revoke);
        self.any_revoke.store(true, Ordering::Release);
    }
}

impl Drop for GroupContext {
    /// The context outlives librdkafka's handle, which a queue must not: a
    /// fetch queue still here (none is, once a run ended) is left alone.
    fn drop(&mut self) {
        if let Some(queue) = lock(&self.fetch_queue).take() {
            std::mem::forget(queue);
        }
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        instruments::consumer_lag(
            &self.group,
            &statistics,
            &mut lock(&self.lag_reporters),
            self.member,
        );
        if let Some(group) = statistics.cgrp {
            *lock(&self.group_state) = Some(group);
        }
    }
}

fn cooperative<C: ConsumerContext>(consumer: &impl Consumer<C>) -> bool {
    matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    )
}

fn unassign<C: ConsumerContext>(consumer: &impl Consumer<C>, partitions: &[(String, i32)]) {
    let given_up = if cooperative(consumer) {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        consumer.incremental_unassign(&list)
    } else {
        consumer.unassign()
    };
    if let Err(err) = given_up {
        warn!(error = %err, "could not give up revoked partitions");
    }
}

impl ConsumerContext for GroupContext {
    /// librdkafka lets the application give revoked partitions up later:
    /// the group waits until it does (up to the rebalance timeout).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let list = || {
            partitions
                .elements()
                .iter()
                .map(|p| (p.topic().to_owned(), p.partition()))
                .collect::<Vec<_>>()
        };
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // Before the assignment starts their fetch. Without a run
                // loop (closing) they go to the consumer's queue.
                if let Some(queue) = &*lock(&self.fetch_queue) {
                    for p in partitions.elements() {
                        if !queue.forward(consumer.client(), p.topic(), p.partition()) {
                            warn!(
                                topic = p.topic(),
                                partition = p.partition(),
                                "partition not forwarded to the fetch queue; read through the consumer's queue"
                            );
                        }
                    }
                }
                let assigned = if cooperative(consumer) {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                };
                if let Err(err) = assigned {
                    error!(error = %err, "could not take assigned partitions");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions = list();
                // Closing (also when the consumer is dropped without `run`
                // ending, and no loop is left to give anything up): at once.
                let deferred = !self.closing.load(Ordering::Acquire)
                    && !consumer.closed()
                    && !consumer.assignment_lost();
                if deferred {
                    lock(&self.deferred).push(partitions.clone());
                } else {
                    unassign(consumer, &partitions);
                }
                self.push(Revoke {
                    partitions,
                    deferred,
                });
            }
            _ => {
                let code: RDKafkaErrorCode = err.into();
                error!(error = %code, "rebalance failed; giving up every partition");
                if let Err(err) = consumer.unassign() {
                    warn!(error = %err, "could not give up partitions");
                }
                self.push(Revoke {
                    partitions: list(),
                    deferred: false,
                });
            }
        }
    }
}

/// Gives up `partitions` after a deferred revoke: commits what was stored
/// for them, then lets the group move them. Blocking: runs on a thread that
/// may block.
pub(crate) async fn give_up(
    consumer: &Arc<StreamConsumer<GroupContext>>,
    partitions: Vec<(String, i32)>,
) {
    let consumer = Arc::clone(consumer);
    let given_up = tokio::task::spawn_blocking(move || {
        commit(&*consumer, CommitMode::Sync);
        unassign(&*consumer, &partitions);
        let mut deferred = lock(&consumer.context().deferred);
        if let Some(i) = deferred.iter().position(|d| *d == partitions) {
            deferred.swap_remove(i);
        }
    })
    .await;
    if let Err(err) = given_up {
        error!(error = %err, "giving up revoked partitions failed");
    }
}

/// Gives up, when dropped, the deferred revokes no one finished: a run
/// future dropped before its end (an aborted task) must not leave the group
/// waiting, nor the consumer's close hanging. Also closes the member's fetch
/// queue while the consumer still lives (librdkafka's handle must outlive
/// its queues).
pub(crate) struct GiveUpOnDrop<'c>(pub(crate) &'c StreamConsumer<GroupContext>);

impl Drop for GiveUpOnDrop<'_> {
    fn drop(&mut self) {
        drop(lock(&self.0.context().fetch_queue).take());
        let pending = std::mem::take(&mut *lock(&self.0.context().deferred));
        for partitions in pending {
            unassign(self.0, &partitions);
        }
    }
}

/// Whether a consumer error ends `run`: librdkafka's fatal errors, and
/// refusals no retry fixes. librdkafka would keep retrying those for ever
/// while the member handles nothing.
pub(crate) fn ends_run(err: &KafkaError) -> bool {
    match err {
        KafkaError::MessageConsumptionFatal(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        ),
        _ => false,
    }
}

/// Stores each partition's position as the offset its next commit takes,
/// in one call, with its leader epoch (which rdkafka's list cannot set).
#[allow(unsafe_code)]
pub(crate) fn store<'t, C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    positions: impl ExactSizeIterator<Item = (&'t str, i32, Position)>,
) {
    let mut list = TopicPartitionList::with_capacity(positions.len());
    for (topic, partition, position) in positions {
        let offset = rdkafka::Offset::Offset(position.offset);
        if list.add_partition_offset(topic, partition, offset).is_err() {
            continue;
        }
        // SAFETY: the list is ours, and the element just added is its last.
        unsafe {
            let raw = &*list.ptr();
            let element = raw.elems.add(raw.cnt as usize - 1);
            rd::rd_kafka_topic_partition_set_leader_epoch(element, position.leader_epoch);
        }
    }
    if let Err(err) = consumer.store_offsets(&list) {
        // A partition revoked meanwhile; its new owner reads it again.
        debug!(error = %err, "offsets not stored");
    }
}

pub(crate) fn commit<C: ConsumerContext>(consumer: &impl Consumer<C>, mode: CommitMode) {
    match consumer.commit_consumer_state(mode) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(err) => {
            warn!(error = %err, "committing offsets failed; they are committed again later")
        }
    }
}

/// Commits what is stored and leaves the group, on a thread of its own and for
/// at most [`ConsumerSettings::close_timeout`].
///
/// librdkafka's close blocks until the group lets the member go. That must not
/// hold a worker of the async runtime, and a consumer told to stop must stop
/// even if the close never ends: the thread is then left behind and the
/// error says in which group state the member was.
pub(crate) async fn leave(
    consumer: Arc<StreamConsumer<GroupContext>>,
    settings: &ConsumerSettings,
) -> Result<(), Error> {
    let context = consumer.context();
    context.closing.store(true, Ordering::Release);
    let group_state = context.group_state.clone();
    let (closed, on_closed) = tokio::sync::oneshot::channel();
    let close = move || {
        commit(&*consumer, CommitMode::Sync);
        // A revoke the run loop had not finished: the group waits for it.
        for partitions in std::mem::take(&mut *lock(&consumer.context().deferred)) {
            unassign(&*consumer, &partitions);
        }
        // Dropping the last reference closes: partitions are revoked, the
        // member leaves, and the drop returns once the broker agreed.
        if Arc::strong_count(&consumer) > 1 {
            debug!("the consumer is closed by the last of its users");
        }
        drop(consumer);
        let _ = closed.send(());
    };
    if let Err(err) = std::thread::Builder::new()
        .name("protobus-close".into())
        .spawn(close)
    {
        // The closure was dropped, and the consumer closed with it, right here.
        warn!(error = %err, "no thread to close the consumer on; closed it on this one");
    }
    match tokio::time::timeout(settings.close_timeout, on_closed).await {
        Ok(_) => Ok(()),
        Err(_) => {
            let state = match &*lock(&group_state) {
                Some(group) => format!(
                    "state {}, join state {}, {} partition(s) assigned, last rebalance {} ms ago ({})",
                    group.state,
                    group.join_state,
                    group.assignment_size,
                    group.rebalance_age,
                    group.rebalance_reason
                ),
                None => "no group statistics yet".into(),
            };
            Err(ErrorKind::CloseTimedOut {
                group: settings.group.clone(),
                timeout: settings.close_timeout,
                state,
            }
            .into())
        }
    }
}
