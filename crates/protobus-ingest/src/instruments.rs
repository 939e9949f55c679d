//! What the ingest service reports through the [`metrics`] facade (the
//! events it writes are counted by the runtime's producer as well).

use std::time::Duration;

use metrics::{counter, histogram};
use tonic::Code;

use crate::api::{self, result::Outcome};

/// Calls (a stream's batches one by one), by `method` and gRPC `code`.
pub const REQUESTS: &str = "protobus_ingest_requests_total";
/// Time from a call's (or batch's) arrival to its answer, by `method`.
pub const REQUEST_DURATION: &str = "protobus_ingest_request_duration_seconds";
/// Events by `outcome`: `ack`, `duplicate`, or a failure's gRPC code.
pub const EVENTS: &str = "protobus_ingest_events_total";

pub(crate) fn request(method: &'static str, code: Code, took: Duration) {
    counter!(REQUESTS, "method" => method, "code" => code_name(code)).increment(1);
    histogram!(REQUEST_DURATION, "method" => method).record(took);
}

/// Counts a batch's results, one increment per outcome rather than per event.
pub(crate) fn event_results(results: &[api::Result]) {
    let (mut acks, mut duplicates) = (0, 0);
    let mut failures: Vec<(i32, u64)> = Vec::new();
    for result in results {
        match &result.outcome {
            Some(Outcome::Ack(ack)) if ack.duplicate => duplicates += 1,
            Some(Outcome::Ack(_)) => acks += 1,
            Some(Outcome::Failure(failure)) => {
                match failures.iter_mut().find(|(code, _)| *code == failure.code) {
                    Some((_, n)) => *n += 1,
                    None => failures.push((failure.code, 1)),
                }
            }
            None => {}
        }
    }
    if acks > 0 {
        counter!(EVENTS, "outcome" => "ack").increment(acks);
    }
    if duplicates > 0 {
        counter!(EVENTS, "outcome" => "duplicate").increment(duplicates);
    }
    for (code, n) in failures {
        counter!(EVENTS, "outcome" => code_name(Code::from_i32(code))).increment(n);
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
