//! Publishing: each event of a batch validated, claimed under its
//! idempotency key, and handed to the producer in order; then each one's
//! result awaited.

use std::sync::Arc;

use protobus_runtime::{SendBatch, SendOptions, traceparent};
use tonic::Code;
use tracing::{debug, warn};

use super::idempotency::Claim;
use super::outcome::{Enqueued, duplicate, failure, not_acknowledged, send_failure};
use super::validation::{self, Meta};
use super::{Inner, Table};
use crate::api::{PublishRequest, PublishResponse};
use crate::auth::Grant;

/// Enqueues every event of the request in order in one producer batch,
/// then waits once for all their acknowledgements: no task, future or
/// wake per event while Kafka acknowledges (a `join_all` of 256 sends was
/// a tenth of the CPU).
pub(super) async fn publish_batch(
    inner: &Inner,
    table: &Table,
    request: PublishRequest,
    meta: &Meta,
    grant: Option<&Grant>,
) -> PublishResponse {
    // Idempotency keys are the caller's own: scoped by token name.
    let scope: Arc<str> = grant.map_or("", Grant::name).into();
    let results = match table.producer.batch(request.events.len()) {
        Ok(mut batch) => {
            let mut enqueued = Vec::with_capacity(request.events.len());
            for event in request.events {
                enqueued.push(enqueue_one(inner, table, &mut batch, event, meta, &scope).await);
            }
            // In the order the events were handed over.
            let mut deliveries = batch.await.into_iter();
            let mut results = Vec::with_capacity(enqueued.len());
            for outcome in enqueued {
                results.push(outcome.result(&mut deliveries).await);
            }
            results
        }
        Err(err) => {
            warn!(error = %err, "no event of the request was queued");
            (request.events.iter())
                .map(|_| send_failure(&err))
                .collect()
        }
    };
    crate::instruments::event_results(&results);
    PublishResponse {
        results,
        request_id: request.request_id,
    }
}

async fn enqueue_one(
    inner: &Inner,
    table: &Table,
    batch: &mut SendBatch<'_>,
    mut event: crate::api::Event,
    meta: &Meta,
    scope: &Arc<str>,
) -> Enqueued {
    let prepared = match validation::prepare(inner, table, &mut event) {
        Ok(prepared) => prepared,
        Err(rejection) => {
            debug!(event_type = %event.r#type, field = rejection.field, reason = %rejection.reason, "event rejected");
            return Enqueued::Done(failure(
                Code::InvalidArgument,
                rejection.reason,
                rejection.field,
                false,
            ));
        }
    };
    let ticket = if event.idempotency_key.is_empty() {
        None
    } else {
        let digest = inner.dedupe.digest(
            prepared.info.full_name,
            &prepared.payload,
            event.key.as_deref(),
        );
        match inner.dedupe.claim(scope, &event.idempotency_key, digest) {
            Claim::Duplicate(ack) => return Enqueued::Done(duplicate(ack)),
            Claim::Wait(outcome) => return Enqueued::Waiting(outcome),
            Claim::Conflict => {
                return Enqueued::Done(failure(
                    Code::AlreadyExists,
                    format!(
                        "idempotency key `{}` was used for a different event within the last {} s; nothing was written: a new event needs a new key",
                        event.idempotency_key,
                        inner.settings.idempotency_window.as_secs()
                    ),
                    "idempotency_key",
                    false,
                ));
            }
            Claim::Fresh(ticket) => Some(ticket),
        }
    };
    let mut headers: Vec<(String, Vec<u8>)> = event
        .headers
        .into_iter()
        .map(|h| (h.key, h.value))
        .collect();
    if let Some(trace) = &meta.traceparent {
        headers.push((traceparent::HEADER.into(), trace.clone()));
    }
    let options = SendOptions {
        event_id: Some(event.idempotency_key).filter(|k| !k.is_empty()),
        correlation_id: Some(event.correlation_id)
            .filter(|c| !c.is_empty())
            .or_else(|| meta.correlation_id.clone()),
        key: event.key,
        headers,
    };
    let enqueued = batch
        .enqueue_encoded(
            table.contract,
            prepared.info,
            &prepared.payload,
            prepared.key.as_deref(),
            options,
        )
        .await;
    match enqueued {
        Ok(_) => Enqueued::Sent {
            ticket,
            event_type: prepared.info.full_name,
        },
        Err(err) => Enqueued::Done(not_acknowledged(ticket, prepared.info.full_name, &err)),
    }
}
