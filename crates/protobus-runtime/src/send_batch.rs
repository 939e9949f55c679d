//! Events sent together and answered together: one group of answers for
//! all of them, one wake when the last is in, and each event type looked up
//! in the producer's shared table once per batch rather than per event.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::event::{Contract, Event, EventInfo};
use crate::event_id::EventId;
use crate::kafka_producer::Batch;
use crate::producer::{Delivery, EventProducer, SendOptions, check_key, delivery};
use crate::producer_types::SendType;

/// Events handed to an [`EventProducer`] together; awaiting the batch
/// gives each one's [`Delivery`] in the order they were enqueued, once
/// Kafka has answered them all. Made by [`EventProducer::batch`].
///
/// Dropping a batch, awaited or not, does not cancel its sends.
#[must_use = "the sends' outcomes are only known by awaiting the batch"]
pub struct SendBatch<'p> {
    producer: &'p EventProducer,
    batch: Batch,
    /// Each queued event's id and the place of its type in `types`.
    events: Vec<(EventId, usize)>,
    /// The types this batch sent, each found in the producer's table once.
    types: Vec<(&'static EventInfo, Arc<SendType>)>,
}

impl std::fmt::Debug for SendBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl<'p> SendBatch<'p> {
    /// The most events a batch holds.
    pub const MAX_EVENTS: usize = crate::answer_groups::MAX_GROUP;

    pub(crate) fn new(producer: &'p EventProducer, batch: Batch) -> Self {
        SendBatch {
            producer,
            batch,
            events: Vec::new(),
            types: Vec::new(),
        }
    }

    /// Hands `event` to the producer's queue, as
    /// [`EventProducer::enqueue`]; its place in the batch's deliveries.
    pub async fn enqueue<E: Event>(
        &mut self,
        event: &E,
        options: SendOptions,
    ) -> Result<usize, Error> {
        let t = self.send_type(E::contract(), E::info()).await?;
        let event_id = self
            .producer
            .write_event(&mut self.batch, &self.types[t].1, event, options)
            .await?;
        Ok(self.queued(event_id, t))
    }

    /// Hands an encoded event to the producer's queue, as
    /// [`EventProducer::enqueue_encoded`]; its place in the batch's
    /// deliveries.
    pub async fn enqueue_encoded(
        &mut self,
        contract: &Contract,
        event: &'static EventInfo,
        payload: &[u8],
        key: Option<&[u8]>,
        options: SendOptions,
    ) -> Result<usize, Error> {
        check_key(event, key, &options)?;
        let t = self.send_type(contract, event).await?;
        let event_id = self
            .producer
            .write_encoded(
                &mut self.batch,
                &self.types[t].1,
                event,
                payload,
                key,
                options,
            )
            .await?;
        Ok(self.queued(event_id, t))
    }

    /// How many events were handed over.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event was handed over.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn queued(&mut self, event_id: EventId, t: usize) -> usize {
        self.events.push((event_id, t));
        debug_assert_eq!(self.events.len(), self.batch.len());
        self.events.len() - 1
    }

    /// The place of `event`'s type in `types`, added on its first send.
    async fn send_type(
        &mut self,
        contract: &Contract,
        event: &'static EventInfo,
    ) -> Result<usize, Error> {
        if let Some(t) = self.types.iter().position(|(e, _)| std::ptr::eq(*e, event)) {
            return Ok(t);
        }
        let send_type = self.producer.send_type(contract, event).await?;
        self.types.push((event, send_type));
        Ok(self.types.len() - 1)
    }
}

impl<'p> IntoFuture for SendBatch<'p> {
    type Output = Vec<Result<Delivery, Error>>;
    type IntoFuture = Deliveries<'p>;

    fn into_future(self) -> Deliveries<'p> {
        if let Some((_, send_type)) = self.types.first() {
            // One gauge per producer, whatever the type.
            (send_type.instruments.queued).increment(self.events.len() as f64);
        }
        Deliveries { batch: Some(self) }
    }
}

/// An awaited [`SendBatch`]: resolves to each event's [`Delivery`], in the
/// order they were enqueued.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Deliveries<'p> {
    /// Taken when the deliveries are read.
    batch: Option<SendBatch<'p>>,
}

impl Drop for Deliveries<'_> {
    fn drop(&mut self) {
        // Dropped before Kafka answered (the sends go on): no longer
        // counted as waiting.
        if let Some(batch) = &self.batch
            && let Some((_, send_type)) = batch.types.first()
        {
            (send_type.instruments.queued).decrement(batch.events.len() as f64);
        }
    }
}

impl Future for Deliveries<'_> {
    type Output = Vec<Result<Delivery, Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sent = self
            .batch
            .as_mut()
            .expect("deliveries are not polled once read");
        let Poll::Ready(answers) = sent.batch.poll_answered(cx) else {
            return Poll::Pending;
        };
        let events = std::mem::take(&mut sent.events);
        let types = &sent.types;
        // Counted per type, then added to each type's counters once.
        let mut counts = vec![(0u64, 0u64); types.len()];
        let deliveries = events
            .into_iter()
            .enumerate()
            .map(|(index, (event_id, t))| {
                let delivered = answers.get(index);
                let (produced, failed) = &mut counts[t];
                *if delivered.is_ok() { produced } else { failed } += 1;
                delivery(&types[t].1.instruments, event_id, delivered)
            })
            .collect::<Vec<_>>();
        for ((_, send_type), (produced, failed)) in types.iter().zip(counts) {
            let instruments = &send_type.instruments;
            instruments.produced.increment(produced);
            instruments.failed.increment(failed);
        }
        if let Some((_, send_type)) = types.first() {
            (send_type.instruments.queued).decrement(deliveries.len() as f64);
        }
        drop(answers);
        self.batch = None;
        Poll::Ready(deliveries)
    }
}
