//! Records a member is done with, destroyed on a thread of its own.
//!
//! Destroying a record (librdkafka's message and the operation that carried
//! it, allocated by librdkafka's fetching thread, so that most frees take
//! that thread's arena lock under glibc) came out of every record's time on
//! the task that runs the handlers; handed over, it runs on a core that
//! task leaves idle (`docs/performance.md` measures what that gives).
//! Garbage-collected clients free on their collector's threads; a member
//! hands its finished records, a batch at a time, to a thread that only
//! drops them. A thread that falls behind holds nothing up: while its queue
//! is full, the member drops the next batch itself. A batch is handed over
//! at 256 records or 1 MiB of them, so the records kept alive past their
//! use stay bounded in bytes as in number, whatever their size.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use tracing::warn;

/// Items handed over at a time: the hand-over's cost spread thin.
const BATCH: usize = 256;

/// Bytes of items that make a batch go at once, however few: large
/// records are not kept alive by the hundred.
const BATCH_BYTES: usize = 1024 * 1024;

/// Batches waiting for the thread at most: enough to ride out the moments
/// it is not scheduled (with 4, a member reading small events at full speed
/// on 2 cores dropped 15 % of its records itself; with 16, 4 %).
const WAITING: usize = 16;

/// Drops what it is given on a thread of its own, and joins that thread
/// when dropped: everything given is dropped by then.
pub(crate) struct Disposal<T: Send + 'static> {
    batch: Vec<T>,
    /// What the items of `batch` weigh.
    bytes: usize,
    /// `None` when no thread could be started: items are dropped here.
    thread: Option<(SyncSender<Vec<T>>, JoinHandle<()>)>,
}

impl<T: Send + 'static> Disposal<T> {
    pub(crate) fn new() -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Vec<T>>(WAITING);
        let thread = std::thread::Builder::new()
            .name("protobus-free".into())
            .spawn(move || receiver.into_iter().for_each(drop))
            .inspect_err(|err| {
                warn!(error = %err, "no thread to free finished records on; the consumer's task frees them");
            })
            .ok();
        Disposal {
            batch: Vec::with_capacity(BATCH),
            bytes: 0,
            thread: thread.map(|thread| (sender, thread)),
        }
    }

    /// Takes `item`, which holds `bytes`, to drop soon, elsewhere.
    pub(crate) fn push(&mut self, item: T, bytes: usize) {
        if self.thread.is_none() {
            return;
        }
        self.batch.push(item);
        self.bytes += bytes;
        if self.batch.len() == BATCH || self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Hands the items taken so far over, so that none wait for more.
    pub(crate) fn flush(&mut self) {
        let Some((sender, _)) = &self.thread else {
            return;
        };
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.bytes = 0;
        // The thread is behind (or gone): dropped here instead.
        if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) =
            sender.try_send(batch)
        {
            drop(batch);
        }
    }
}

impl<T: Send + 'static> Drop for Disposal<T> {
    fn drop(&mut self) {
        self.flush();
        if let Some((sender, thread)) = self.thread.take() {
            drop(sender);
            // At most the batches waiting are left to drop.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier, Mutex};

    use super::*;

    /// Notes the name of the thread that drops it.
    struct Noted(Arc<Mutex<Vec<String>>>, Option<Arc<Barrier>>);

    impl Drop for Noted {
        fn drop(&mut self) {
            // Met twice: once the thread holds it, and to let it go on.
            if let Some(gate) = &self.1 {
                gate.wait();
                gate.wait();
            }
            let thread = std::thread::current();
            self.0
                .lock()
                .unwrap()
                .push(thread.name().unwrap_or("").to_owned());
        }
    }

    fn names(noted: &Mutex<Vec<String>>) -> Vec<String> {
        let mut names = noted.lock().unwrap().clone();
        names.dedup();
        names
    }

    #[test]
    fn items_are_dropped_on_the_thread_and_all_of_them_by_its_drop() {
        let noted = Arc::new(Mutex::new(Vec::new()));
        let mut disposal = Disposal::new();
        for _ in 0..BATCH + 10 {
            disposal.push(Noted(noted.clone(), None), 1);
        }
        drop(disposal);
        assert_eq!(noted.lock().unwrap().len(), BATCH + 10);
        assert_eq!(names(&noted), ["protobus-free"]);
    }

    #[test]
    fn a_batch_is_handed_over_at_its_byte_bound_however_few_its_items() {
        let noted = Arc::new(Mutex::new(Vec::new()));
        let mut disposal = Disposal::new();
        disposal.push(Noted(noted.clone(), None), BATCH_BYTES / 2);
        assert_eq!(disposal.batch.len(), 1, "below both bounds: kept");
        disposal.push(Noted(noted.clone(), None), BATCH_BYTES / 2);
        assert!(disposal.batch.is_empty(), "1 MiB: handed over");
        disposal.push(Noted(noted.clone(), None), 4 * BATCH_BYTES);
        assert!(disposal.batch.is_empty(), "a large item goes alone");
        drop(disposal);
        assert_eq!(names(&noted), ["protobus-free"]);
        assert_eq!(noted.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_thread_that_falls_behind_leaves_the_next_batches_to_the_caller() {
        let noted = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Barrier::new(2));
        std::thread::Builder::new()
            .name("caller".into())
            .spawn({
                let (noted, gate) = (noted.clone(), gate.clone());
                move || {
                    let mut disposal = Disposal::new();
                    // The first item holds the thread until the caller has
                    // handed over more batches than may wait.
                    disposal.push(Noted(noted.clone(), Some(gate.clone())), 1);
                    disposal.flush();
                    gate.wait();
                    for _ in 0..(WAITING + 2) * BATCH {
                        disposal.push(Noted(noted.clone(), None), 1);
                    }
                    let by_caller = names(&noted);
                    gate.wait();
                    drop(disposal);
                    by_caller
                }
            })
            .unwrap()
            .join()
            .map(|by_caller| assert_eq!(by_caller, ["caller"]))
            .unwrap();
        let noted = noted.lock().unwrap();
        assert_eq!(noted.len(), 1 + (WAITING + 2) * BATCH);
        let by_caller = noted.iter().filter(|n| *n == "caller").count();
        assert_eq!(by_caller, 2 * BATCH, "the batches beyond those waiting");
    }
}
