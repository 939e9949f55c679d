//! Admission: who may publish what, and the share of the in-flight budget a
//! request takes. Authentication ran before the body was read
//! ([`Authenticate`](crate::auth::Authenticate)), and each message was charged
//! to the budget as it arrived ([`Charged`](crate::budget::Charged)).

use std::sync::Arc;

use prost::Message as _;
use tonic::{Request, Status};
use tracing::warn;

use super::settings::EVENT_OVERHEAD_BYTES;
use super::{Inner, Table};
use crate::api::PublishRequest;
use crate::auth::Grant;

/// The caller's grant, which [`Authenticate`] found before the body was
/// read; `None` when no tokens are configured.
pub(super) fn grant<T>(inner: &Inner, request: &Request<T>) -> Result<Option<Arc<Grant>>, Status> {
    if inner.settings.tokens.is_none() {
        return Ok(None);
    }
    request
        .extensions()
        .get::<Arc<Grant>>()
        .cloned()
        .map(Some)
        .ok_or_else(|| Status::unauthenticated("the request was not authenticated"))
}

/// Refuses the whole request if any of its events goes to a topic the
/// caller's token may not publish to (unknown types are left to validation).
pub(super) fn authorize(
    table: &Table,
    grant: Option<&Grant>,
    request: &PublishRequest,
) -> Result<(), Status> {
    let Some(grant) = grant else {
        return Ok(());
    };
    for event in &request.events {
        if let Ok(event_type) = table.types.get(&event.r#type) {
            grant
                .allow(event_type.info.topic, event_type.info.full_name)
                .inspect_err(|status| {
                    warn!(
                        token = grant.name(),
                        reason = status.message(),
                        "publish refused"
                    );
                })?;
        }
    }
    Ok(())
}

/// The share of the in-flight budget that `request` takes while it is
/// published; never more than all of it, so that any request within
/// `max_request_bytes` can run alone.
pub(super) fn permits(inner: &Inner, request: &PublishRequest) -> u32 {
    let charge = request.encoded_len() + request.events.len() * EVENT_OVERHEAD_BYTES;
    inner.budget.permits(charge)
}

/// Refuses a batch with no events.
pub(super) fn check_batch(request: &PublishRequest) -> Result<(), Status> {
    if request.events.is_empty() {
        return Err(Status::invalid_argument(format!(
            "request {} has no events; send at least one",
            request.request_id
        )));
    }
    Ok(())
}
