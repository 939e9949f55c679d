//! A run: records of one lane that waited for it, started together and
//! handled one after another by one call of the run loop, so that what
//! starting and completing a call costs is paid per run, not per record.
//!
//! A run goes on while its handlers return without waiting. A record whose
//! handling waits (on I/O, a timer, a dead-letter write) ends the run once
//! it finishes; the records finished before it in the run go to the loop
//! at once, through the [`Mailbox`], so that their commit never waits for
//! it. The records after it wait in its lane, as they would behind any
//! record.

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use crate::consumer::Dispatch;
use crate::consumer::fetched::Fetched;
use crate::consumer::handling::{Job, Outcome, Resolved};
use crate::consumer::lanes::{Run, Ticket};
use crate::consumer::member::Member;

/// Records handled in one run at most: a run that never waits is one poll
/// of the run loop, which looks at commits, revokes and shutdown between
/// runs.
const RUN_LENGTH: usize = 64;

/// Records of runs, finished before a record of their run that is still
/// waiting: the run loop takes them before it commits or gives a partition
/// up.
pub(crate) type Mailbox<'c> = Mutex<Vec<(Ticket, Vec<Fetched<'c>>)>>;

/// A record whose handling ended.
struct Handled<'c> {
    message: Fetched<'c>,
    outcome: Outcome,
    /// Its writer type, to reuse for the next records.
    resolved: Option<Arc<Resolved>>,
}

/// A run whose handling ended, with what became of its records.
pub(crate) struct Completed<'c> {
    /// In order: the records finished, then the one `outcome` is of when it
    /// is not `Done`, then those not tried (records sent through the
    /// mailbox are not here).
    pub(crate) run: Run<Fetched<'c>>,
    /// Records finished (handled, dead-lettered or skipped).
    pub(crate) finished: usize,
    pub(crate) job: Job,
    pub(crate) outcome: Outcome,
    /// The writer type of the last record resolved, to reuse for the next ones.
    pub(crate) resolved: Option<Arc<Resolved>>,
}

impl<'c> Completed<'c> {
    /// `handled`, then `rest`, not tried.
    fn of(handled: Handled<'c>, rest: std::collections::VecDeque<Fetched<'c>>, job: Job) -> Self {
        Completed {
            finished: usize::from(matches!(handled.outcome, Outcome::Done)),
            run: Run {
                first: handled.message,
                rest,
            },
            job,
            outcome: handled.outcome,
            resolved: handled.resolved,
        }
    }
}

impl<D: Dispatch> Member<D> {
    /// Handles the records of `run`, started as `job`, one after another;
    /// `recent` is the last writer type resolved.
    pub(crate) async fn handle<'c>(
        &'c self,
        run: Run<Fetched<'c>>,
        job: Job,
        recent: Option<Arc<Resolved>>,
        mailbox: &Mailbox<'c>,
    ) -> Completed<'c> {
        let topic_index = job.ticket.partition.topic;
        let record =
            |message, attempt, recent| self.handle_record(message, topic_index, attempt, recent);
        let Run { first, mut rest } = run;
        // Should the first record wait, the run ends with it.
        let mut step = pin!(record(first, job.attempt, recent));
        let (waited, handled) = match futures_util::poll!(step.as_mut()) {
            Poll::Ready(handled) => (false, handled),
            Poll::Pending => (true, step.await),
        };
        if waited || rest.is_empty() || !matches!(handled.outcome, Outcome::Done) {
            return Completed::of(handled, rest, job);
        }
        let Handled {
            message: first,
            mut resolved,
            ..
        } = handled;
        // Each record tried moves behind those not tried: `rest` holds the
        // records not tried, then those finished.
        let mut not_tried = rest.len();
        let mut finished = 1;
        let outcome = loop {
            if not_tried == 0 || finished == RUN_LENGTH {
                break Outcome::Done;
            }
            let message = rest.pop_front().expect("a record not tried");
            not_tried -= 1;
            let mut step = pin!(record(message, 1, resolved.take()));
            let handled = match futures_util::poll!(step.as_mut()) {
                Poll::Ready(handled) => handled,
                Poll::Pending => {
                    // The records finished so far go to the loop now.
                    let mut done = Vec::with_capacity(finished);
                    done.push(first);
                    done.extend(rest.drain(not_tried..));
                    mailbox
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((job.ticket, done));
                    return Completed::of(step.await, rest, Job { attempt: 1, ..job });
                }
            };
            resolved = handled.resolved;
            if let Outcome::Done = handled.outcome {
                rest.push_back(handled.message);
                finished += 1;
                continue;
            }
            rest.rotate_left(not_tried);
            rest.insert(finished - 1, handled.message);
            break handled.outcome;
        };
        if let Outcome::Done = outcome {
            // The records finished first, then those not tried.
            rest.rotate_left(not_tried);
        }
        Completed {
            run: Run { first, rest },
            finished,
            job,
            outcome,
            resolved,
        }
    }

    /// Handles `message`, which it holds.
    async fn handle_record<'c>(
        &'c self,
        message: Fetched<'c>,
        topic_index: usize,
        attempt: u32,
        recent: Option<Arc<Resolved>>,
    ) -> Handled<'c> {
        let (outcome, resolved) = self.process(&message, topic_index, attempt, recent).await;
        Handled {
            message,
            outcome,
            resolved,
        }
    }
}
