//! The in-flight budget, charged as a request arrives. When the 5-byte
//! prefix of a gRPC message is read, the message's length and the most its
//! events can take once decoded are charged before the message itself is
//! read, so memory is bounded however many calls arrive at once. Once the
//! message is decoded, the service trues the charge up to what it holds
//! while publishing.
//!
//! A `Publish` call that finds no room is refused (`RESOURCE_EXHAUSTED`); a
//! `PublishStream` waits, and while it waits it is not read (HTTP/2 flow
//! control slows the client down).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame};
use prost::bytes::Bytes;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::server::NamedService;

use crate::codec::MAX_EVENTS_PER_REQUEST;

/// In-flight bytes are counted in units of this size.
pub(crate) const PERMIT_BYTES: usize = 1024;
/// The most an event takes once decoded besides its bytes on the wire: its
/// struct in the `Vec` it is pushed into (which grows to up to twice its
/// length). An empty event is 2 bytes on the wire.
const DECODED_EVENT_BYTES: usize = 320;

/// The budget's semaphore and its size.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    semaphore: Arc<Semaphore>,
    /// All of it, in permits.
    total: u32,
    /// Messages longer than this are refused by the decoder unread.
    max_message_bytes: usize,
}

impl Budget {
    pub(crate) fn new(bytes: usize, max_message_bytes: usize) -> Self {
        let total = bytes
            .div_ceil(PERMIT_BYTES)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize) as u32;
        Budget {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
            max_message_bytes,
        }
    }

    /// `bytes` in permits; never more than the whole budget, so that any
    /// request within the size limit can run alone.
    pub(crate) fn permits(&self, bytes: usize) -> u32 {
        (bytes.div_ceil(PERMIT_BYTES).max(1)).min(self.total as usize) as u32
    }

    pub(crate) fn try_acquire(&self, permits: u32) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().try_acquire_many_owned(permits).ok()
    }

    pub(crate) async fn acquire(&self, permits: u32) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.semaphore.clone().acquire_many_owned(permits).await
    }

    /// What a message of `len` bytes may take while it is received and decoded.
    fn receive_charge(len: usize) -> usize {
        len + (len / 2).min(MAX_EVENTS_PER_REQUEST) * DECODED_EVENT_BYTES
    }

    /// Makes `held` exactly `permits`: returns the excess, or acquires the
    /// rest (waiting for it when `wait`, else failing at once).
    pub(crate) async fn true_up(
        &self,
        held: Option<OwnedSemaphorePermit>,
        permits: u32,
        wait: bool,
    ) -> Option<OwnedSemaphorePermit> {
        let permits = permits.min(self.total) as usize;
        let Some(mut held) = held else {
            return match wait {
                true => self.acquire(permits as u32).await.ok(),
                false => self.try_acquire(permits as u32),
            };
        };
        let have = held.num_permits();
        if have > permits {
            drop(held.split(have - permits));
        } else if have < permits {
            let more = (permits - have) as u32;
            // While it waits, `held` stays charged: the request is received.
            let more = match wait {
                true => self.acquire(more).await.ok()?,
                false => self.try_acquire(more)?,
            };
            held.merge(more);
        }
        Some(held)
    }
}

/// Permits charged while a call's messages arrived, in message order, for
/// the service to take as it decodes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Charges(Arc<Mutex<VecDeque<OwnedSemaphorePermit>>>);

impl Charges {
    pub(crate) fn next(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    fn push(&self, permit: OwnedSemaphorePermit) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(permit);
    }
}

/// The ingest server with each call's body charged to the budget as it arrives.
#[derive(Debug, Clone)]
pub struct Charged<S> {
    inner: S,
    budget: Budget,
}

impl<S> Charged<S> {
    pub(crate) fn new(inner: S, budget: Budget) -> Self {
        Charged { inner, budget }
    }
}

impl<S: NamedService> NamedService for Charged<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower_service::Service<http::Request<tonic::body::Body>> for Charged<S>
where
    S: tower_service::Service<http::Request<ChargedBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let charges = Charges::default();
        let wait = request.uri().path().ends_with("/PublishStream");
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(charges.clone());
        let body = ChargedBody::new(body, self.budget.clone(), charges, wait);
        self.inner.call(http::Request::from_parts(parts, body))
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A call's body, holding each message back (from its prefix on) until it
/// is charged; what comes before it passes, so that the message before can
/// be decoded and its charge freed.
pub struct ChargedBody {
    inner: tonic::body::Body,
    budget: Budget,
    charges: Charges,
    /// Wait for room (streams) rather than fail (unary calls).
    wait: bool,
    /// The message prefix being read: a flag byte and a big-endian length.
    header: [u8; 5],
    filled: usize,
    /// Bytes of the current message still to pass.
    skip: u64,
    /// A frame held back, and how much of it is scanned.
    pending: Option<(Bytes, usize)>,
    /// A charge found by the scan and not yet made, in permits, and where
    /// in the pending frame its message's prefix starts.
    due: Option<(u32, usize)>,
    acquiring: Option<Acquiring>,
}

impl std::fmt::Debug for ChargedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargedBody")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl ChargedBody {
    fn new(inner: tonic::body::Body, budget: Budget, charges: Charges, wait: bool) -> Self {
        ChargedBody {
            inner,
            budget,
            charges,
            wait,
            header: [0; 5],
            filled: 0,
            skip: 0,
            pending: None,
            due: None,
            acquiring: None,
        }
    }

    /// Scans `data` from `at`; stops after a message prefix whose charge is
    /// due, returning the charge, where to resume, and where in `data` the
    /// prefix started (0 when it started in an earlier frame).
    fn scan(&mut self, data: &[u8], mut at: usize) -> Option<(usize, usize, usize)> {
        let mut prefix_start = 0;
        while at < data.len() {
            if self.skip > 0 {
                let step = (data.len() - at).min(self.skip.min(usize::MAX as u64) as usize);
                at += step;
                self.skip -= step as u64;
                continue;
            }
            if self.filled == 0 {
                prefix_start = at;
            }
            self.header[self.filled] = data[at];
            self.filled += 1;
            at += 1;
            if self.filled == self.header.len() {
                self.filled = 0;
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                self.skip = len as u64;
                // A longer message is refused by the decoder before it is read.
                if len <= self.budget.max_message_bytes {
                    return Some((Budget::receive_charge(len), at, prefix_start));
                }
            }
        }
        None
    }
}

impl Body for ChargedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(acquiring) = &mut this.acquiring {
                let permit = ready!(acquiring.as_mut().poll(cx))
                    .map_err(|_| Status::unavailable("the ingest service is stopping"));
                this.acquiring = None;
                match permit {
                    Ok(permit) => this.charges.push(permit),
                    Err(status) => return Poll::Ready(Some(Err(status))),
                }
            }
            if let Some((permits, prefix_start)) = this.due.take() {
                if let Some(permit) = this.budget.try_acquire(permits) {
                    this.charges.push(permit);
                    continue;
                }
                if !this.wait {
                    return Poll::Ready(Some(Err(Status::resource_exhausted(
                        "too many bytes in flight; nothing was written, retry later",
                    ))));
                }
                let budget = this.budget.clone();
                this.acquiring = Some(Box::pin(async move { budget.acquire(permits).await }));
                // The messages before this one pass while it waits: they
                // may be what holds the budget.
                if prefix_start > 0
                    && let Some((mut rest, scanned)) = this.pending.take()
                {
                    let head = rest.split_to(prefix_start);
                    this.pending = Some((rest, scanned - prefix_start));
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                continue;
            }
            if let Some((data, at)) = this.pending.take() {
                let Some((charge, resume, prefix_start)) = this.scan(&data, at) else {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                };
                this.pending = Some((data, resume));
                this.due = Some((this.budget.permits(charge), prefix_start));
                continue;
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.pending = Some((data, 0)),
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt as _;

    use super::*;

    /// A body of `frames`, charged against a budget of `budget` bytes.
    fn charged(frames: Vec<Bytes>, budget: &Budget, wait: bool) -> (ChargedBody, Charges) {
        let stream =
            tokio_stream::iter(frames.into_iter().map(|f| Ok::<_, Status>(Frame::data(f))));
        let charges = Charges::default();
        let inner = tonic::body::Body::new(http_body_util::StreamBody::new(stream));
        let body = ChargedBody::new(inner, budget.clone(), charges.clone(), wait);
        (body, charges)
    }

    fn message(len: usize) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend(std::iter::repeat_n(0x0a, len));
        out
    }

    #[test]
    fn a_message_is_charged_its_worst_decoded_size() {
        // 1 000 bytes may be 500 empty events once decoded.
        assert_eq!(
            Budget::receive_charge(1000),
            1000 + 500 * DECODED_EVENT_BYTES
        );
        assert_eq!(
            Budget::receive_charge(16 << 20),
            (16 << 20) + MAX_EVENTS_PER_REQUEST * DECODED_EVENT_BYTES
        );
        let struct_bytes = std::mem::size_of::<crate::api::Event>();
        assert!(
            2 * struct_bytes <= DECODED_EVENT_BYTES,
            "{struct_bytes} bytes"
        );
    }

    #[tokio::test]
    async fn a_unary_call_without_room_is_refused_before_its_message_is_read() {
        let budget = Budget::new(64 * 1024, 1 << 20);
        let _held = budget.try_acquire(60).unwrap();
        let (mut body, charges) = charged(vec![message(1000).into()], &budget, false);
        let status = body.frame().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(charges.next().is_none());
    }

    #[tokio::test]
    async fn a_stream_waits_for_room_and_lets_the_message_before_pass() {
        let budget = Budget::new(64 * 1024, 1 << 20);
        let mut frame = message(30_000);
        let first_len = frame.len();
        frame.extend(message(30_000));
        let (mut body, charges) = charged(vec![frame.into()], &budget, true);
        // The first message is charged (all of the budget) and passes alone.
        let head = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(head.len(), first_len);
        let first = charges.next().expect("charged");
        assert_eq!(first.num_permits(), 64);
        // The second waits while the first holds the budget...
        let waiting = tokio::time::timeout(Duration::from_millis(100), body.frame()).await;
        assert!(waiting.is_err(), "read without room");
        // ...and passes once it is freed.
        drop(first);
        let rest = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(head.len() + rest.len(), 2 * first_len);
        assert!(charges.next().is_some());
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn true_up_returns_the_excess_and_takes_the_rest() {
        let budget = Budget::new(64 * 1024, 1 << 20);
        let held = budget.try_acquire(10);
        let held = budget.true_up(held, 4, false).await.unwrap();
        assert_eq!(held.num_permits(), 4);
        assert_eq!(budget.semaphore.available_permits(), 60);
        let held = budget.true_up(Some(held), 30, false).await.unwrap();
        assert_eq!(held.num_permits(), 30);
        assert!(budget.true_up(None, 40, false).await.is_none(), "no room");
    }
}
