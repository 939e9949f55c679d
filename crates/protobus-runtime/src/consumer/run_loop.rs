//! The run loop: reads records, starts those whose lane is free (up to
//! `max_in_flight` handler calls at once), completes them, stores the offsets
//! their partitions may commit (before each commit), sets failed events aside
//! until their retry is due, pauses full partitions, finishes revokes and
//! drains at shutdown.
//!
//! Handler calls run concurrently on the loop's own task: no spawn, no copy
//! of the record, and a handler that finishes without waiting costs no
//! allocation (it completes in the loop's one inline slot). The records in
//! hand go to their lanes before any starts, so that those of a busy lane
//! start together as one call, a run (`runs`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::future::OptionFuture;
use futures_util::stream::FuturesUnordered;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use tracing::{debug, error, info, warn};

use crate::consumer::batching::{BatchDone, Collecting};
use crate::consumer::disposal::Disposal;
use crate::consumer::fetch_queue::Reader;
use crate::consumer::fetched::{Fetched, Spent};
use crate::consumer::group::{self, commit, ends_run};
use crate::consumer::handling::{Job, Outcome, Resolved};
use crate::consumer::lanes::{Accepted, Lanes, PartitionId, Run, TopicLanes};
use crate::consumer::member::Member;
use crate::consumer::revoking::Revoking;
use crate::consumer::runs::{Completed, Mailbox};
use crate::consumer::stats::Share;
use crate::consumer::woken::Woken;
use crate::consumer::{ConsumerSettings, Dispatch, ProcessingOrder};
use crate::error::{Error, ErrorKind};

/// Records taken one after another, while nothing else is going on, without
/// looking at shutdown or commits.
const BURST: u32 = 8;

/// An event set aside until its retry is due.
pub(super) struct Aside<'c> {
    due: Instant,
    message: Fetched<'c>,
    pub(super) job: Job,
}

/// What the loop holds besides the handler calls in flight.
pub(super) struct State<'c> {
    /// Records read from the member's fetch queue, not yet taken.
    pub(super) fetched: Reader<'c>,
    pub(super) lanes: Lanes<Fetched<'c>>,
    /// Started in the lanes, waiting for room among the handler calls.
    pub(super) ready: VecDeque<(Run<Fetched<'c>>, Job)>,
    pub(super) aside: Vec<Aside<'c>>,
    pub(super) revoking: Vec<Revoking>,
    /// Handler calls running.
    pub(super) in_flight: usize,
    /// By topic index, for batch handlers' topics.
    pub(super) batches: Vec<Collecting<'c>>,
    /// Records in batches, running or filling.
    pub(super) batched: usize,
    /// The last writer type resolved.
    pub(super) recent: Option<Arc<Resolved>>,
    /// This member's parts of the consumer's gauges.
    pub(super) shown: Shown,
    /// Records finished, on their way to being freed. Dropped with the
    /// state, within the run: every record is freed before the consumer.
    pub(super) disposal: Disposal<Spent>,
}

/// This member's parts of the gauges in [`ConsumerStats`](crate::ConsumerStats), which its
/// consumer's members share.
#[derive(Default)]
pub(super) struct Shown {
    in_flight: Share,
    prefetched: Share,
    waiting_to_retry: Share,
}

impl<'c> State<'c> {
    /// Takes `record`, finished, to be freed elsewhere.
    fn dispose(&mut self, record: Fetched<'c>) {
        if let Some(spent) = record.spend() {
            let bytes = spent.bytes();
            self.disposal.push(spent, bytes);
        }
    }

    /// Whether the loop may take another record: room among the handler
    /// calls, and a batch handler's topics hold a running and a filling
    /// batch at most.
    fn may_take(&self, settings: &ConsumerSettings) -> bool {
        self.in_flight + self.ready.len() < settings.max_in_flight
            && self.batched < 2 * settings.max_batch_size
    }

    /// When the loop must look at its timers again.
    fn wake_at(&self, draining: Option<Instant>, settings: &ConsumerSettings) -> Option<Instant> {
        let aside = self.aside.iter().map(|a| a.due);
        let revoking = self.revoking.iter().map(|r| r.deadline);
        let batches = self
            .batches
            .iter()
            .filter_map(|b| b.due(settings.max_batch_size, settings.max_batch_wait));
        aside.chain(revoking).chain(batches).chain(draining).min()
    }
}

/// The type of an empty inline slot for the futures `start` makes.
fn empty_slot<A, B, C, F>(_start: &impl Fn(A, B, C) -> F) -> OptionFuture<F> {
    None.into()
}

/// A record, or an error, from the consumer's stream, which never ends.
fn from_stream(message: Option<KafkaResult<BorrowedMessage<'_>>>) -> KafkaResult<Fetched<'_>> {
    message
        .expect("Kafka message streams never end")
        .map(Fetched::from_stream)
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

impl<D: Dispatch> Member<D> {
    pub(super) async fn run_until(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let settings = &self.shared.settings;
        let _give_up = group::GiveUpOnDrop(&self.consumer);
        let mut shutdown = pin!(shutdown);
        // A timer rather than a clock read per record.
        let mut commit_due = tokio::time::interval(settings.commit_interval);
        commit_due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        commit_due.reset();
        // The member's fetch queue carries the records; the consumer's queue,
        // read through one stream for the whole run (each `recv()` makes a
        // stream of its own, two mutex locks a call) and only once it woke,
        // carries rebalances and errors.
        let fetch_queue = self
            .consumer
            .context()
            .open_fetch_queue(self.consumer.client());
        let mut st = State {
            fetched: Reader::new(fetch_queue),
            lanes: Lanes::new(
                self.shared
                    .batch_topics
                    .iter()
                    .map(|&batch| {
                        if batch {
                            // Batches go one at a time, in read order, and
                            // bound what a topic holds (a running and a
                            // filling batch): a pause would only delay the
                            // fetch after it by up to `fetch.wait.max.ms`.
                            TopicLanes {
                                order: ProcessingOrder::Unordered,
                                max_outstanding: usize::MAX,
                            }
                        } else {
                            TopicLanes {
                                order: settings.order,
                                max_outstanding: settings.max_outstanding_per_partition.max(1),
                            }
                        }
                    })
                    .collect(),
            ),
            ready: VecDeque::new(),
            aside: Vec::new(),
            revoking: Vec::new(),
            in_flight: 0,
            batches: self
                .shared
                .topics
                .iter()
                .map(|_| Collecting::default())
                .collect(),
            batched: 0,
            recent: None,
            shown: Shown::default(),
            disposal: Disposal::new(),
        };
        let mut messages = Woken::new(self.consumer.stream());
        let mailbox = Mailbox::default();
        let start = |run, job, recent| self.handle(run, job, recent, &mailbox);
        let mut inline = pin!(empty_slot(&start));
        let mut inline_busy = false;
        let mut others = FuturesUnordered::new();
        let mut batches = FuturesUnordered::new();
        let mut draining: Option<Instant> = None;
        let mut burst = 0;
        let result = 'run: loop {
            self.take_mail(&mailbox, &mut st);
            if draining.is_none() {
                if !st.revoking.is_empty() || self.consumer.context().any_revoke() {
                    self.revokes(&mut st).await;
                }
                for (topic, next) in st.batches.iter_mut().enumerate() {
                    if next.records.is_empty() {
                        continue;
                    }
                    if next.ready(settings.max_batch_size, settings.max_batch_wait) {
                        let size = next.records.len().min(settings.max_batch_size);
                        let records: Vec<_> = next.records.drain(..size).collect();
                        next.since = (!next.records.is_empty()).then(Instant::now);
                        next.running = true;
                        batches.push(self.handle_batch(topic, records));
                    }
                }
                while st.in_flight < settings.max_in_flight {
                    let Some((run, job)) = st.ready.pop_front() else {
                        break;
                    };
                    // Moved rather than shared when no other call runs (two
                    // atomic operations less per event); it comes back with
                    // the call's result.
                    let recent = if st.in_flight == 0 {
                        st.recent.take()
                    } else {
                        st.recent.clone()
                    };
                    st.in_flight += 1;
                    // Made where it runs: a call's future is hundreds of
                    // bytes, copied whole by every move.
                    if inline_busy {
                        others.push(start(run, job, recent));
                        continue;
                    }
                    inline.set(Some(start(run, job, recent)).into());
                    // A handler that does not wait finishes right here.
                    match futures_util::poll!(inline.as_mut()) {
                        Poll::Ready(Some(done)) => {
                            inline.set(None.into());
                            if let Err(err) = self.complete(done, &mut st) {
                                break 'run Err(err);
                            }
                        }
                        _ => inline_busy = true,
                    }
                }
            } else if st.in_flight == 0 && batches.is_empty() {
                break Ok(());
            }
            let running_batched = if st.batched == 0 {
                0
            } else {
                st.batched - st.batches.iter().map(|b| b.records.len()).sum::<usize>()
            };
            st.shown.in_flight.set(
                &self.shared.stats.in_flight,
                (st.in_flight + running_batched) as u64,
            );
            let quiet = st.in_flight == 0
                && st.batched == 0
                && st.ready.is_empty()
                && st.aside.is_empty()
                && st.revoking.is_empty();
            let record = if quiet && burst < BURST {
                // Records already fetched come first: the other branches are
                // polled only when none is ready, and every few records the
                // branch below looks at shutdown, commits and timers first.
                burst += 1;
                match st.fetched.take() {
                    Some(record) => record,
                    None => tokio::select! {
                        biased;
                        message = messages.next() => from_stream(message),
                        _ = st.fetched.ready() => continue,
                        _ = &mut shutdown => break Ok(()),
                        _ = commit_due.tick() => {
                            self.on_commit_tick(&mailbox, &mut st);
                            continue;
                        }
                    },
                }
            } else {
                burst = 0;
                let take = draining.is_none() && st.may_take(settings);
                let wake = st.wake_at(draining, settings);
                tokio::select! {
                    biased;
                    Some(done) = &mut inline, if inline_busy => {
                        inline.set(None.into());
                        inline_busy = false;
                        match self.complete(done, &mut st) {
                            Ok(()) => continue,
                            Err(err) => break Err(err),
                        }
                    }
                    Some(done) = others.next(), if !others.is_empty() => {
                        match self.complete(done, &mut st) {
                            Ok(()) => continue,
                            Err(err) => break Err(err),
                        }
                    }
                    Some(done) = batches.next(), if !batches.is_empty() => {
                        match self.complete_batch(done, &mut st) {
                            Ok(()) => continue,
                            Err(err) => break Err(err),
                        }
                    }
                    _ = &mut shutdown, if draining.is_none() => {
                        info!(in_flight = st.in_flight, batched = running_batched, "stopping: waiting for the handler calls in flight");
                        draining = Some(Instant::now() + settings.drain_timeout);
                        continue;
                    }
                    _ = commit_due.tick() => {
                        self.on_commit_tick(&mailbox, &mut st);
                        continue;
                    }
                    _ = sleep_until(wake) => {
                        if draining.is_some_and(|d| d <= Instant::now()) {
                            warn!(
                                in_flight = st.in_flight,
                                timeout = ?settings.drain_timeout,
                                "stopping: handler calls still running are cancelled; their events are read again"
                            );
                            break Ok(());
                        }
                        self.resume_due(&mut st);
                        continue;
                    }
                    message = messages.next(), if take => from_stream(message),
                    _ = st.fetched.ready(), if take => match st.fetched.take() {
                        Some(record) => record,
                        None => continue,
                    },
                }
            };
            match record {
                Ok(message) => {
                    self.accept(message, &mut st);
                    // The records in hand go to their lanes before any
                    // starts: those of a busy lane then start as one run.
                    while st.may_take(settings) {
                        let Some(message) = st.fetched.take_read() else {
                            break;
                        };
                        self.accept(message, &mut st);
                    }
                }
                Err(err) if ends_run(&err) => {
                    error!(error = %err, "the consumer cannot go on");
                    break Err(ErrorKind::ConsumerFailed(err).into());
                }
                Err(err) => warn!(error = %err, "consumer error"),
            }
        };
        // For the commit when the member leaves.
        self.take_mail(&mailbox, &mut st);
        self.store_moved(&mut st);
        st.shown.in_flight.set(&self.shared.stats.in_flight, 0);
        st.shown.prefetched.set(&self.shared.stats.prefetched, 0);
        result
    }

    /// Commits what finished since the last tick, and refreshes the
    /// records read ahead (a queue length under librdkafka's lock: once a
    /// tick, not per record).
    fn on_commit_tick<'c>(&self, mailbox: &Mailbox<'c>, st: &mut State<'c>) {
        self.take_mail(mailbox, st);
        st.disposal.flush();
        self.store_moved(st);
        commit(&*self.consumer, CommitMode::Async);
        st.shown
            .prefetched
            .set(&self.shared.stats.prefetched, st.fetched.len() as u64);
    }

    /// Finishes the records that runs sent ahead of a record of theirs
    /// still waiting.
    fn take_mail<'c>(&self, mailbox: &Mailbox<'c>, st: &mut State<'c>) {
        let mut mail = mailbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (ticket, records) in mail.drain(..) {
            // Revoked meanwhile (false): their next owner handles them again.
            st.lanes.finish(ticket, &records);
            for record in records {
                st.dispose(record);
            }
        }
        drop(mail);
        self.apply_pauses(st);
    }

    /// Takes a record just read.
    fn accept<'c>(&'c self, message: Fetched<'c>, st: &mut State<'c>) {
        // Records come from the subscribed topics only: with one, its name
        // need not be read (a C string validated as UTF-8 per call).
        let topic = if self.shared.topics.len() == 1 {
            Some(0)
        } else {
            self.topic_index(message.topic())
        };
        let Some(topic) = topic else {
            warn!(
                topic = message.topic(),
                "a record of a topic not subscribed; ignored"
            );
            return;
        };
        let id = PartitionId {
            topic,
            partition: message.partition(),
        };
        match st.lanes.accept(id, message) {
            Accepted::Start(message, ticket) if self.shared.batch_topics[topic] => {
                let next = &mut st.batches[topic];
                next.since.get_or_insert_with(Instant::now);
                next.records.push((message, Job { ticket, attempt: 1 }));
                st.batched += 1;
            }
            Accepted::Start(message, ticket) => st
                .ready
                .push_back((Run::one(message), Job { ticket, attempt: 1 })),
            Accepted::Waiting => {}
            Accepted::Dropped(message) => debug!(
                partition = message.partition(),
                offset = message.offset(),
                "record of a partition leaving this member, or read twice; dropped"
            ),
        }
        self.apply_pauses(st);
    }

    /// Takes a finished run of handler calls; an error ends the run.
    fn complete<'c>(&'c self, done: Completed<'c>, st: &mut State<'c>) -> Result<(), Error> {
        st.in_flight -= 1;
        if done.resolved.is_some() {
            st.recent = done.resolved;
        }
        let Completed {
            run: Run { first, mut rest },
            finished,
            job,
            outcome,
            ..
        } = done;
        let ticket = job.ticket;
        // The record tried and not finished, if any: the first one after
        // those finished.
        let unfinished = if finished == 0 {
            Some(first)
        } else {
            let finished_records = std::iter::once(&first).chain(rest.iter().take(finished - 1));
            if !st.lanes.finish(ticket, finished_records) {
                debug!(
                    partition = first.partition(),
                    offset = first.offset(),
                    "finished after its partition left this member; its next owner handles it again"
                );
                return Ok(());
            }
            st.dispose(first);
            for record in rest.drain(..finished - 1) {
                st.dispose(record);
            }
            None
        };
        let hold = match outcome {
            Outcome::Done => false,
            Outcome::Retry { delay, counted } => {
                let message = unfinished
                    .or_else(|| rest.pop_front())
                    .expect("a run's outcome is its next record's");
                self.shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                if !st.lanes.set_aside(ticket) {
                    return Ok(());
                }
                let attempt = if finished > 0 { 1 } else { job.attempt };
                st.aside.push(Aside {
                    due: Instant::now() + delay,
                    message,
                    job: Job {
                        attempt: if counted { attempt + 1 } else { attempt },
                        ..job
                    },
                });
                self.count_aside(st);
                true
            }
            Outcome::Stop(err) => return Err(err),
        };
        if let Some(next) = st.lanes.end_run(ticket, rest, hold) {
            st.ready.push_back((next, Job { ticket, attempt: 1 }));
        }
        self.apply_pauses(st);
        Ok(())
    }

    /// Takes a finished batch: every record in it is done (handled or
    /// dead-lettered), unless the run must end.
    fn complete_batch<'c>(&'c self, done: BatchDone<'c>, st: &mut State<'c>) -> Result<(), Error> {
        st.batches[done.topic].running = false;
        st.batched -= done.records.len();
        if let Some(err) = done.stop {
            return Err(err);
        }
        for (message, job) in &done.records {
            // Revoked meanwhile (false): its next owner handles it again.
            // Batch topics start every record at once: none waits.
            st.lanes.finish(job.ticket, [message]);
        }
        for (message, _) in done.records {
            st.dispose(message);
        }
        self.apply_pauses(st);
        Ok(())
    }

    /// Stores where the partitions' commit positions moved, for the next
    /// commit to take: before each commit rather than per record (a call
    /// under the partition's lock, which librdkafka's fetching thread takes
    /// too).
    pub(super) fn store_moved(&self, st: &mut State<'_>) {
        let moved = st.lanes.take_moved();
        if !moved.is_empty() {
            let positions = moved
                .iter()
                .map(|(id, position)| (&*self.shared.topics[id.topic], id.partition, *position));
            group::store(&*self.consumer, positions);
        }
    }

    pub(super) fn count_aside(&self, st: &mut State<'_>) {
        st.shown
            .waiting_to_retry
            .set(&self.shared.stats.waiting_to_retry, st.aside.len() as u64);
    }

    /// Starts the events set aside whose retry is due.
    fn resume_due<'c>(&'c self, st: &mut State<'c>) {
        let now = Instant::now();
        let mut i = 0;
        while i < st.aside.len() {
            if st.aside[i].due > now {
                i += 1;
                continue;
            }
            let Aside { message, job, .. } = st.aside.swap_remove(i);
            if st.lanes.retry(job.ticket) {
                st.ready.push_back((Run::one(message), job));
                self.apply_pauses(st);
            }
        }
        self.count_aside(st);
    }
}
