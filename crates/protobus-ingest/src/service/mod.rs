//! The `Ingest` gRPC service, by concern: [`admission`] (who may publish
//! what, the in-flight budget), [`validation`], [`publishing`],
//! [`idempotency`] and [`outcome`] (each event's `Ack` or `Failure`).

mod admission;
pub(crate) mod idempotency;
mod outcome;
mod publishing;
mod settings;
mod validation;

use std::sync::Arc;
use std::time::Duration;

use protobus_runtime::{Contract, EventProducer};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::{Instrument, debug, info_span};

pub use settings::{EVENT_OVERHEAD_BYTES, IngestSettings};

use crate::Error;
use crate::api::ingest_server::{Ingest, IngestServer};
use crate::api::{PublishRequest, PublishResponse};
use crate::auth::Authenticate;
use crate::budget::{Budget, Charged, Charges};
use crate::types::EventTypes;
use idempotency::Dedupe;
use settings::STREAM_BATCHES_IN_FLIGHT;
use validation::Meta;

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

    async fn publish_unary(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let grant = admission::grant(&self.inner, &request)?;
        let meta = Meta::from(request.metadata());
        let received = request
            .extensions()
            .get::<Charges>()
            .and_then(Charges::next);
        let request = request.into_inner();
        admission::check_batch(&request)?;
        admission::authorize(&self.inner, grant.as_deref(), &request)?;
        let permits = admission::permits(&self.inner, &request);
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
            publishing::publish_batch(&self.inner, request, &meta, grant.as_deref())
                .instrument(span)
                .await,
        ))
    }

    /// Each batch of a stream counts as one `PublishStream` request.
    fn publish_streaming(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<ReceiverStream<Result<PublishResponse, Status>>>, Status> {
        let grant = admission::grant(&self.inner, &request)?;
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
                if let Err(status) = admission::check_batch(&request)
                    .and_then(|()| admission::authorize(&service.inner, grant.as_deref(), &request))
                {
                    crate::instruments::request("PublishStream", status.code(), Duration::ZERO);
                    slot.send(Err(status));
                    break;
                }
                let started = std::time::Instant::now();
                // Waiting here stops reading the stream: HTTP/2 flow control
                // then slows the client down instead of buffering without bound.
                let permits = admission::permits(&service.inner, &request);
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
                        let response = publishing::publish_batch(
                            &service.inner,
                            request,
                            &meta,
                            grant.as_deref(),
                        )
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
