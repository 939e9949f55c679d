//! The `Ingest` gRPC service.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use protobus_runtime::{
    Contract, ErrorKind, EventInfo, EventProducer, PendingDelivery, SendOptions, traceparent,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::{Instrument, debug, info_span, warn};

use crate::Error;
use crate::api::ingest_server::{Ingest, IngestServer};
use crate::api::{Ack, Failure, PublishRequest, PublishResponse, event, result};
use crate::auth::{Authenticate, Grant, Tokens};
use crate::budget::{Budget, Charged, Charges};
use crate::dedupe::{Claim, Dedupe, Ticket};
use crate::types::{EventType, EventTypes, Rejection};

/// Limits and windows of the ingest service.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Largest payload of one event.
    pub max_event_bytes: usize,
    /// Largest request (one batch).
    pub max_request_bytes: usize,
    /// Memory that requests being published may hold at once: their bytes
    /// plus [`EVENT_OVERHEAD_BYTES`] per event. Beyond it unary calls get
    /// RESOURCE_EXHAUSTED and streams stop being read until it drains.
    pub max_in_flight_bytes: usize,
    /// How long an idempotency key's result is remembered.
    pub idempotency_window: Duration,
    /// How many idempotency keys are remembered at most.
    pub idempotency_capacity: usize,
    /// How many bytes remembered idempotency results may take at most.
    pub idempotency_max_bytes: usize,
    /// Longest idempotency key accepted, in bytes.
    pub max_idempotency_key_bytes: usize,
    /// Bearer tokens callers must send; `None`: no authentication.
    pub tokens: Option<Arc<Tokens>>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_event_bytes: 1024 * 1024,
            max_request_bytes: 16 * 1024 * 1024,
            max_in_flight_bytes: 16 * 1024 * 1024,
            idempotency_window: Duration::from_secs(600),
            idempotency_capacity: 1_000_000,
            idempotency_max_bytes: 64 * 1024 * 1024,
            max_idempotency_key_bytes: 256,
            tokens: None,
        }
    }
}

/// What an event holds while in flight besides its bytes: its task, the
/// Kafka message and its ack. Charging it keeps small events from filling
/// memory: 16 MiB of 100-byte events would otherwise be 120 000 at once,
/// which the heap profile showed as 58 MiB of task state alone.
pub const EVENT_OVERHEAD_BYTES: usize = 1024;
/// Batches of one `PublishStream` being published or waiting to be read by
/// the client; the stream is not read beyond them (the in-flight budget also
/// bounds their bytes). What is in flight when a broker dies may time out
/// (outcome unknown): more batches cover Kafka's acknowledgement latency
/// better and expose more events to an outage.
const STREAM_BATCHES_IN_FLIGHT: usize = 32;
/// Header names Protobus writes itself; clients cannot set them.
const RESERVED_HEADER_PREFIX: &str = "protobus-";

/// The ingest service; cheap to clone.
#[derive(Clone)]
pub struct IngestService {
    inner: Arc<Inner>,
}

struct Inner {
    contract: &'static Contract,
    types: EventTypes,
    producer: EventProducer,
    settings: IngestSettings,
    budget: Budget,
    dedupe: Arc<Dedupe>,
}

impl std::fmt::Debug for IngestService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestService")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// What the request's metadata adds to its events.
#[derive(Debug, Clone, Default)]
struct Meta {
    correlation_id: Option<String>,
    traceparent: Option<Vec<u8>>,
}

impl Meta {
    fn from(metadata: &MetadataMap) -> Self {
        let text = |name: &str| {
            metadata
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Meta {
            correlation_id: text("x-correlation-id"),
            // An invalid trace context is dropped, as W3C Trace Context asks.
            traceparent: text(traceparent::HEADER)
                .filter(|t| traceparent::TraceParent::parse(t).is_some())
                .map(String::into_bytes),
        }
    }
}

/// An event that passed validation, ready to write.
struct Prepared {
    info: &'static EventInfo,
    payload: prost::bytes::Bytes,
    key: Option<Vec<u8>>,
}

impl IngestService {
    /// A service for the event types of `contract`, whose encoded
    /// `FileDescriptorSet` is `descriptors`, writing with `producer`.
    pub fn new(
        contract: &'static Contract,
        descriptors: &[u8],
        producer: EventProducer,
        settings: IngestSettings,
    ) -> Result<Self, Error> {
        if settings.max_request_bytes > settings.max_in_flight_bytes {
            return Err(Error::settings(
                "max_in_flight_bytes must be at least max_request_bytes",
            ));
        }
        let budget = Budget::new(settings.max_in_flight_bytes, settings.max_request_bytes);
        Ok(IngestService {
            inner: Arc::new(Inner {
                contract,
                types: EventTypes::new(contract, descriptors)?,
                producer: producer.with_queue_wait(Duration::ZERO),
                budget,
                dedupe: Arc::new(Dedupe::new(
                    settings.idempotency_window,
                    settings.idempotency_capacity,
                    settings.idempotency_max_bytes,
                )),
                settings,
            }),
        })
    }

    /// The tonic server for this service, with its request size limit;
    /// callers are authenticated from the request's metadata before its
    /// body is read, and each message is charged to the in-flight budget
    /// before it is read.
    pub fn into_server(self) -> Charged<InterceptedService<IngestServer<Self>, Authenticate>> {
        let limit = self.inner.settings.max_request_bytes;
        let authenticate = Authenticate::new(self.inner.settings.tokens.clone());
        let budget = self.inner.budget.clone();
        Charged::new(
            InterceptedService::new(
                IngestServer::new(self).max_decoding_message_size(limit),
                authenticate,
            ),
            budget,
        )
    }

    /// Waits until every event written so far is acknowledged, or `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), protobus_runtime::Error> {
        self.inner.producer.flush(timeout)
    }

    /// The caller's grant, which [`Authenticate`] found before the body was
    /// read; `None` when no tokens are configured.
    fn grant<T>(&self, request: &Request<T>) -> Result<Option<Arc<Grant>>, Status> {
        if self.inner.settings.tokens.is_none() {
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
    fn authorize(&self, grant: Option<&Grant>, request: &PublishRequest) -> Result<(), Status> {
        let Some(grant) = grant else {
            return Ok(());
        };
        for event in &request.events {
            if let Ok(event_type) = self.inner.types.get(&event.r#type) {
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
    fn permits(&self, request: &PublishRequest) -> u32 {
        let charge = request.encoded_len() + request.events.len() * EVENT_OVERHEAD_BYTES;
        self.inner.budget.permits(charge)
    }

    /// Enqueues every event of the batch in order, then waits for each
    /// one's acknowledgement: no task or future per event stays alive while
    /// Kafka acknowledges (a `join_all` of 256 sends was a tenth of the CPU).
    async fn publish_batch(
        &self,
        request: PublishRequest,
        meta: &Meta,
        grant: Option<&Grant>,
    ) -> PublishResponse {
        // Idempotency keys are the caller's own: scoped by token name.
        let scope: Arc<str> = grant.map_or("", Grant::name).into();
        let mut enqueued = Vec::with_capacity(request.events.len());
        for event in request.events {
            enqueued.push(self.enqueue_one(event, meta, &scope).await);
        }
        let mut results = Vec::with_capacity(enqueued.len());
        for outcome in enqueued {
            results.push(outcome.result().await);
        }
        crate::instruments::event_results(&results);
        PublishResponse {
            results,
            request_id: request.request_id,
        }
    }

    async fn enqueue_one(
        &self,
        mut event: crate::api::Event,
        meta: &Meta,
        scope: &Arc<str>,
    ) -> Enqueued {
        let prepared = match self.prepare(&mut event) {
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
            let digest = self.inner.dedupe.digest(
                prepared.info.full_name,
                &prepared.payload,
                event.key.as_deref(),
            );
            match self
                .inner
                .dedupe
                .claim(scope, &event.idempotency_key, digest)
            {
                Claim::Duplicate(ack) => return Enqueued::Done(duplicate(ack)),
                Claim::Wait(outcome) => return Enqueued::Waiting(outcome),
                Claim::Conflict => {
                    return Enqueued::Done(failure(
                        Code::AlreadyExists,
                        format!(
                            "idempotency key `{}` was used for a different event within the last {} s; nothing was written: a new event needs a new key",
                            event.idempotency_key,
                            self.inner.settings.idempotency_window.as_secs()
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
        let enqueued = self
            .inner
            .producer
            .enqueue_encoded(
                self.inner.contract,
                prepared.info,
                &prepared.payload,
                prepared.key.as_deref(),
                options,
            )
            .await;
        match enqueued {
            Ok(delivery) => Enqueued::Sent {
                delivery,
                ticket,
                event_type: prepared.info.full_name,
            },
            Err(err) => Enqueued::Done(not_acknowledged(ticket, prepared.info.full_name, &err)),
        }
    }

    fn prepare(&self, event: &mut crate::api::Event) -> Result<Prepared, Rejection> {
        let event_type: &EventType = self.inner.types.get(&event.r#type)?;
        let key_limit = self.inner.settings.max_idempotency_key_bytes;
        if event.idempotency_key.len() > key_limit {
            return Err(Rejection::new(
                "idempotency_key",
                format!(
                    "idempotency key of {} bytes exceeds the limit of {key_limit} bytes",
                    event.idempotency_key.len()
                ),
            ));
        }
        let limit = self.inner.settings.max_event_bytes;
        let too_large = |field, len: usize| {
            Rejection::new(
                field,
                format!("event of {len} bytes exceeds the limit of {limit} bytes"),
            )
        };
        // Binary payloads are checked and written as sent (no copy, no
        // re-encoding); JSON is encoded once.
        let (payload, key) = match &mut event.payload {
            Some(event::Payload::Binary(bytes)) if bytes.len() > limit => {
                return Err(too_large("binary", bytes.len()));
            }
            Some(event::Payload::Json(json)) if json.len() > limit => {
                return Err(too_large("json", json.len()));
            }
            Some(event::Payload::Binary(bytes)) => {
                let key = event_type.check_binary(bytes)?;
                (std::mem::take(bytes), key)
            }
            Some(event::Payload::Json(json)) => {
                let (bytes, key) = event_type.check_json(json)?;
                (bytes.into(), key)
            }
            None => {
                return Err(Rejection::new(
                    "payload",
                    "an event needs its payload as `binary` or `json`",
                ));
            }
        };
        if let Some(header) = event
            .headers
            .iter()
            .find(|h| h.key.starts_with(RESERVED_HEADER_PREFIX) || h.key.is_empty())
        {
            return Err(Rejection::new(
                "headers",
                format!(
                    "header name `{}` is empty or reserved (`{RESERVED_HEADER_PREFIX}*`)",
                    header.key
                ),
            ));
        }
        if key.is_none() && event.key.as_ref().is_none_or(|k| k.is_empty()) {
            return Err(Rejection::new(
                "key",
                format!(
                    "the key field `{}` of {} is unset or empty; set it or send a `key`",
                    event_type.info.key_field, event_type.info.full_name
                ),
            ));
        }
        Ok(Prepared {
            info: event_type.info,
            payload,
            key,
        })
    }
}

/// Where one event of a batch stands between enqueueing and its result.
enum Enqueued {
    /// Refused, a duplicate, or failed before Kafka had it.
    Done(crate::api::Result),
    /// Another request with the same idempotency key is writing it.
    Waiting(tokio::sync::watch::Receiver<Option<Option<Ack>>>),
    /// In librdkafka's queue; Kafka's acknowledgement is pending.
    Sent {
        delivery: PendingDelivery,
        ticket: Option<Ticket>,
        event_type: &'static str,
    },
}

impl Enqueued {
    async fn result(self) -> crate::api::Result {
        match self {
            Enqueued::Done(result) => result,
            Enqueued::Waiting(mut outcome) => {
                match outcome.wait_for(Option::is_some).await.map(|o| o.clone()) {
                    Ok(Some(Some(ack))) => duplicate(ack),
                    _ => failure(
                        Code::Unavailable,
                        "a concurrent publish with the same idempotency key failed; retry".into(),
                        "idempotency_key",
                        false,
                    ),
                }
            }
            Enqueued::Sent {
                delivery,
                ticket,
                event_type,
            } => match delivery.await {
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

fn not_acknowledged(
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

fn duplicate(mut ack: Ack) -> crate::api::Result {
    ack.duplicate = true;
    crate::api::Result {
        outcome: Some(result::Outcome::Ack(ack)),
    }
}

fn failure(code: Code, reason: String, field: &str, outcome_unknown: bool) -> crate::api::Result {
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
fn send_failure(err: &protobus_runtime::Error) -> crate::api::Result {
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

fn check_batch(request: &PublishRequest) -> Result<(), Status> {
    if request.events.is_empty() {
        return Err(Status::invalid_argument(format!(
            "request {} has no events; send at least one",
            request.request_id
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let started = std::time::Instant::now();
        let response = self.publish_unary(request).await;
        let code = response.as_ref().map_or_else(Status::code, |_| Code::Ok);
        crate::instruments::request("Publish", code, started.elapsed());
        response
    }

    type PublishStreamStream = ReceiverStream<Result<PublishResponse, Status>>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        // A stream refused before its first batch counts as one request.
        self.publish_streaming(request).inspect_err(|status| {
            crate::instruments::request("PublishStream", status.code(), Duration::ZERO);
        })
    }
}

impl IngestService {
    async fn publish_unary(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let grant = self.grant(&request)?;
        let meta = Meta::from(request.metadata());
        let received = request
            .extensions()
            .get::<Charges>()
            .and_then(Charges::next);
        let request = request.into_inner();
        check_batch(&request)?;
        self.authorize(grant.as_deref(), &request)?;
        let permits = self.permits(&request);
        let _in_flight = self
            .inner
            .budget
            .true_up(received, permits, false)
            .await
            .ok_or_else(|| {
                Status::resource_exhausted(
                    "too many bytes in flight; nothing was written, retry later",
                )
            })?;
        let span = info_span!(
            "publish",
            events = request.events.len(),
            request_id = request.request_id,
            correlation_id = meta.correlation_id.as_deref().unwrap_or_default()
        );
        Ok(Response::new(
            self.publish_batch(request, &meta, grant.as_deref())
                .instrument(span)
                .await,
        ))
    }

    /// Each batch of a stream counts as one `PublishStream` request.
    fn publish_streaming(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<ReceiverStream<Result<PublishResponse, Status>>>, Status> {
        let grant = self.grant(&request)?;
        let meta = Meta::from(request.metadata());
        let charges = request.extensions().get::<Charges>().cloned();
        let mut inbound = request.into_inner();
        let (responses, outbound) = mpsc::channel(STREAM_BATCHES_IN_FLIGHT);
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                // A batch is read only once its response has a place: a
                // client that does not read its results stops being read
                // (HTTP/2 flow control), instead of results piling up here.
                let Ok(slot) = responses.clone().reserve_owned().await else {
                    break;
                };
                let Some(next) = inbound.next().await else {
                    break;
                };
                let request = match next {
                    Ok(request) => request,
                    Err(status) => {
                        debug!(%status, "publish stream ended by the client");
                        break;
                    }
                };
                if let Err(status) = check_batch(&request)
                    .and_then(|()| service.authorize(grant.as_deref(), &request))
                {
                    crate::instruments::request("PublishStream", status.code(), Duration::ZERO);
                    slot.send(Err(status));
                    break;
                }
                let started = std::time::Instant::now();
                // Waiting here stops reading the stream: HTTP/2 flow control
                // then slows the client down instead of buffering without bound.
                let permits = service.permits(&request);
                let received = charges.as_ref().and_then(Charges::next);
                let Some(in_flight) = service.inner.budget.true_up(received, permits, true).await
                else {
                    break;
                };
                let (service, meta, grant) = (service.clone(), meta.clone(), grant.clone());
                let span = info_span!(
                    "publish_stream_batch",
                    events = request.events.len(),
                    request_id = request.request_id
                );
                tokio::spawn(
                    async move {
                        let response = service
                            .publish_batch(request, &meta, grant.as_deref())
                            .await;
                        drop(in_flight);
                        crate::instruments::request("PublishStream", Code::Ok, started.elapsed());
                        slot.send(Ok(response));
                    }
                    .instrument(span),
                );
            }
        });
        Ok(Response::new(ReceiverStream::new(outbound)))
    }
}
