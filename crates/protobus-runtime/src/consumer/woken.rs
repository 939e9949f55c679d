//! A stream polled again only once it has woken its task.
//!
//! Each poll of rdkafka's `MessageStream` polls librdkafka's queue (a lock
//! and three clock reads), twice when the queue is empty. The consumer's
//! queue carries only rebalances and errors, while the run loop's `select!`
//! polls it every few records; this wrapper answers those polls from a flag
//! until the stream's own wake-up (librdkafka's, when the queue fills) has
//! set it. [`Signal`], the flag, also wakes the run loop for the fetch
//! queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::Stream;
use futures_util::task::AtomicWaker;

/// A flag raised from any thread (a librdkafka thread, a stream's wake-up)
/// that wakes the task waiting for it.
#[derive(Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    task: AtomicWaker,
}

impl Signal {
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.task.wake();
    }

    /// Raises it without a wake-up: for the task that waits on it itself.
    pub(crate) fn set(&self) {
        self.raised.store(true, Ordering::Release);
    }

    /// Whether it was raised, lowering it.
    pub(crate) fn take(&self) -> bool {
        self.raised.swap(false, Ordering::AcqRel)
    }

    /// Resolves once it is raised (without lowering it).
    pub(crate) fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.raised.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.task.register(cx.waker());
            if self.raised.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.raise();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.raise();
    }
}

pub(crate) struct Woken<S> {
    inner: S,
    /// Raised by the inner stream's wake-up.
    woken: Arc<Signal>,
    /// Handed to the inner stream: raises `woken`.
    waker: Waker,
}

impl<S: Stream + Unpin> Woken<S> {
    pub(crate) fn new(inner: S) -> Self {
        let woken = Arc::new(Signal::default());
        // Polled once before anything could have woken it.
        woken.set();
        Woken {
            inner,
            waker: Waker::from(Arc::clone(&woken)),
            woken,
        }
    }
}

impl<S: Stream + Unpin> Stream for Woken<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.woken.task.register(cx.waker());
        if !self.woken.take() {
            return Poll::Pending;
        }
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(&mut Context::from_waker(&this.waker));
        if polled.is_ready() {
            // There may be more: poll again next time.
            this.woken.set();
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
