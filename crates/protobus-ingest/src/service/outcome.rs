//! Outcomes: what each event's result says, `Ack` or `Failure` with a code,
//! never a success for an event Kafka does not have.

use protobus_runtime::{Delivery, ErrorKind};
use tonic::Code;
use tracing::warn;

use super::idempotency::{KeyState, Ticket};
use crate::api::{Ack, Failure, result};

/// Where one event of a batch stands between enqueueing and its result.
pub(super) enum Enqueued {
    /// Refused, a duplicate, or failed before Kafka had it.
    Done(crate::api::Result),
    /// Another request with the same idempotency key is writing it.
    Waiting(tokio::sync::watch::Receiver<KeyState>),
    /// In the request's producer batch; Kafka's acknowledgement is pending.
    Sent {
        ticket: Option<Ticket>,
        event_type: &'static str,
    },
}

impl Enqueued {
    /// The event's result; a sent one's delivery is the next of
    /// `deliveries`, the batch's in the order its events were sent.
    pub(super) async fn result(
        self,
        deliveries: &mut impl Iterator<Item = Result<Delivery, protobus_runtime::Error>>,
    ) -> crate::api::Result {
        match self {
            Enqueued::Done(result) => result,
            Enqueued::Waiting(mut outcome) => {
                let settled = outcome
                    .wait_for(|state| !matches!(state, KeyState::InFlight))
                    .await
                    .map(|state| state.clone());
                match settled {
                    Ok(KeyState::Acked(ack)) => duplicate(ack),
                    _ => failure(
                        Code::Unavailable,
                        "a concurrent publish with the same idempotency key failed; retry".into(),
                        "idempotency_key",
                        false,
                    ),
                }
            }
            Enqueued::Sent { ticket, event_type } => match deliveries
                .next()
                .expect("the batch has a delivery for each event sent")
            {
                Ok(delivery) => {
                    let ack = Ack {
                        topic: delivery.topic,
                        partition: delivery.partition,
                        offset: delivery.offset,
                        event_id: delivery.event_id,
                        duplicate: false,
                    };
                    if let Some(ticket) = ticket {
                        ticket.settle(Some(ack.clone()));
                    }
                    crate::api::Result {
                        outcome: Some(result::Outcome::Ack(ack)),
                    }
                }
                Err(err) => not_acknowledged(ticket, event_type, &err),
            },
        }
    }
}

pub(super) fn not_acknowledged(
    ticket: Option<Ticket>,
    event_type: &str,
    err: &protobus_runtime::Error,
) -> crate::api::Result {
    if let Some(ticket) = ticket {
        ticket.settle(None);
    }
    warn!(event_type, error = %err, "event not acknowledged");
    send_failure(err)
}

pub(super) fn duplicate(mut ack: Ack) -> crate::api::Result {
    ack.duplicate = true;
    crate::api::Result {
        outcome: Some(result::Outcome::Ack(ack)),
    }
}

pub(super) fn failure(
    code: Code,
    reason: String,
    field: &str,
    outcome_unknown: bool,
) -> crate::api::Result {
    crate::api::Result {
        outcome: Some(result::Outcome::Failure(Failure {
            code: code as i32,
            reason,
            field: field.to_owned(),
            outcome_unknown,
        })),
    }
}

/// How a failed write is reported: never as success, and "outcome unknown"
/// when the event may have been written.
pub(super) fn send_failure(err: &protobus_runtime::Error) -> crate::api::Result {
    match err.kind() {
        ErrorKind::OutcomeUnknown(_) => failure(
            Code::DeadlineExceeded,
            format!(
                "outcome unknown: the delivery timed out and the event may or may not be in Kafka ({err})"
            ),
            "",
            true,
        ),
        ErrorKind::ProducerFatal(_) => failure(
            Code::Unavailable,
            format!("outcome unknown: {err}; retry with the same idempotency key"),
            "",
            true,
        ),
        ErrorKind::TooLarge { .. } => {
            failure(Code::InvalidArgument, err.to_string(), "payload", false)
        }
        ErrorKind::QueueFull => failure(
            Code::ResourceExhausted,
            "the producer's queue is full; nothing was written, retry later".into(),
            "",
            false,
        ),
        ErrorKind::MissingKey { .. } => {
            failure(Code::InvalidArgument, err.to_string(), "key", false)
        }
        ErrorKind::Registry(_) => failure(Code::FailedPrecondition, err.to_string(), "type", false),
        ErrorKind::RegistryUnavailable(_) | ErrorKind::Kafka(_) => {
            failure(Code::Unavailable, format!("not written: {err}"), "", false)
        }
        _ => failure(Code::Internal, format!("not written: {err}"), "", false),
    }
}
