//! A stream polled again only once it has woken its task.
//!
//! Each poll of rdkafka's `MessageStream` polls librdkafka's queue (a lock
//! and three clock reads), twice when the queue is empty. The consumer's
//! queue carries only rebalances and errors, while the run loop's `select!`
//! polls it every few records; this wrapper answers those polls from a flag
//! until the stream's own wake-up (librdkafka's, when the queue fills) has
//! set it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::Stream;
use futures_util::task::AtomicWaker;

/// Set by the inner stream's wake-up; wakes the task that polled last.
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

pub(crate) struct Woken<S> {
    inner: S,
    flag: Arc<Flag>,
    /// Handed to the inner stream: wakes through `flag`.
    waker: Waker,
}

impl<S: Stream + Unpin> Woken<S> {
    pub(crate) fn new(inner: S) -> Self {
        let flag = Arc::new(Flag {
            // Polled once before anything could have woken it.
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Woken {
            inner,
            waker: Waker::from(Arc::clone(&flag)),
            flag,
        }
    }
}

impl<S: Stream + Unpin> Stream for Woken<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.flag.task.register(cx.waker());
        if !self.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(&mut Context::from_waker(&this.waker));
        if polled.is_ready() {
            // There may be more: poll again next time.
            this.flag.woken.store(true, Ordering::Release);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready with its count when `ready` is set, else it
    /// keeps the waker to wake later.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: std::sync::Mutex<Option<Waker>>,
    }

    struct ProbeStream(Arc<Probe>);

    impl Stream for ProbeStream {
        type Item = usize;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
            let n = self.0.polls.fetch_add(1, Ordering::Relaxed) + 1;
            if self.0.ready.swap(false, Ordering::AcqRel) {
                return Poll::Ready(Some(n));
            }
            *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn the_inner_stream_is_polled_only_after_it_woke() {
        let probe = Arc::new(Probe::default());
        let mut stream = Woken::new(ProbeStream(Arc::clone(&probe)));
        let task = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&task);
        let mut poll = || Pin::new(&mut stream).poll_next(&mut cx);
        assert!(poll().is_pending());
        // Not woken: the inner stream is left alone, however often asked.
        for _ in 0..10 {
            assert!(poll().is_pending());
        }
        assert_eq!(probe.polls.load(Ordering::Relaxed), 1);
        probe.ready.store(true, Ordering::Release);
        probe.waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(poll(), Poll::Ready(Some(2)));
        // After an item it is asked again, and then rests until woken.
        assert!(poll().is_pending());
        assert!(poll().is_pending());
        assert_eq!(probe.polls.load(Ordering::Relaxed), 3);
    }
}
