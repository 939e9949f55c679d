//! A single send's outcome: a batch of one event, awaited alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::error::Error;
use crate::event_id::EventId;
use crate::kafka_producer::Batch;
use crate::producer::{Delivery, delivery};
use crate::producer_types::SendType;

/// An event handed to the producer; resolves to its [`Delivery`] once Kafka
/// answers. Dropping it does not cancel the send.
#[must_use = "the send's outcome is only known by awaiting it"]
pub struct PendingDelivery {
    /// A batch of this one event.
    batch: Batch,
    /// Taken when the delivery completes.
    event_id: Option<EventId>,
    send_type: Arc<SendType>,
}

impl std::fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDelivery")
            .field("topic", &self.send_type.instruments.topic)
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

impl PendingDelivery {
    pub(crate) fn new(batch: Batch, event_id: EventId, send_type: Arc<SendType>) -> Self {
        send_type.instruments.queued.increment(1.0);
        PendingDelivery {
            batch,
            event_id: Some(event_id),
            send_type,
        }
    }
}

impl Drop for PendingDelivery {
    fn drop(&mut self) {
        // Dropped before Kafka answered (the send goes on): no longer counted
        // as waiting. A completed delivery has taken its event id.
        if self.event_id.is_some() {
            self.send_type.instruments.queued.decrement(1.0);
        }
    }
}

impl Future for PendingDelivery {
    type Output = Result<Delivery, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let delivered = ready!(self.batch.poll_answered(cx)).get(0);
        let event_id = (self.event_id.take()).expect("a delivery is not polled once complete");
        let instruments = &self.send_type.instruments;
        instruments.queued.decrement(1.0);
        match &delivered {
            Ok(_) => instruments.produced.increment(1),
            Err(_) => instruments.failed.increment(1),
        }
        Poll::Ready(delivery(instruments, event_id, delivered))
    }
}
