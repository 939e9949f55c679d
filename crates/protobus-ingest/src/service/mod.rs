//! The `Ingest` gRPC service, by concern: [`admission`] (who may publish
//! what, the in-flight budget), [`validation`], [`publishing`],
//! [`idempotency`] and [`outcome`] (each event's `Ack` or `Failure`).

mod admission;
pub(crate) mod idempotency;
mod outcome;
mod publishing;
mod settings;
mod validation;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use protobus_runtime::{Contract, EventProducer, Registration};
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
use crate::contracts::Loaded;
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
    /// The contract events are validated against; replaced whole when the
    /// contract is reloaded, while requests under way finish with theirs.
    table: RwLock<Arc<Table>>,
    /// The Kafka client every table's producer shares.
    producer: EventProducer,
    settings: IngestSettings,
    budget: Budget,
    dedupe: Arc<Dedupe>,
}

/// A contract's event types, and the producer that writes them with schema
/// ids found for this contract.
struct Table {
    loaded: Loaded,
    contract: &'static Contract,
    types: EventTypes,
    producer: EventProducer,
}

impl Inner {
    /// The current contract; a request uses one table from start to end.
    fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }
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
        descriptors: &'static [u8],
        producer: EventProducer,
        settings: IngestSettings,
    ) -> Result<Self, Error> {
        Self::with_contract(Loaded::compiled(contract, descriptors), producer, settings)
    }

    /// A service for a contract loaded from a
    /// [`ContractSource`](crate::ContractSource), writing with `producer`.
    pub fn with_contract(
        loaded: Loaded,
        producer: EventProducer,
        settings: IngestSettings,
    ) -> Result<Self, Error> {
        if settings.max_request_bytes > settings.max_in_flight_bytes {
            return Err(Error::settings(
                "max_in_flight_bytes must be at least max_request_bytes",
            ));
        }
        let producer = producer.with_queue_wait(Duration::ZERO);
        let table = Table::new(loaded, producer.clone())?;
        let budget = Budget::new(settings.max_in_flight_bytes, settings.max_request_bytes);
        Ok(IngestService {
            inner: Arc::new(Inner {
                table: RwLock::new(Arc::new(table)),
                producer,
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

    /// Serves `loaded` from now on, unless it is the contract served now;
    /// returns whether it changed. Requests under way finish with the
    /// contract they started with, and connections stay open. Schema ids
    /// are found afresh for the new contract. A contract that does not
    /// build leaves the current one in place.
    pub fn replace_contract(&self, loaded: Loaded) -> Result<bool, Error> {
        if self.inner.table().loaded == loaded {
            return Ok(false);
        }
        let registry = Arc::new(self.inner.producer.registry().fresh());
        let table = Table::new(loaded, self.inner.producer.clone().with_registry(registry))?;
        *self.inner.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(true)
    }

    /// The event types served now, by full name, in order.
    pub fn event_types(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .inner
            .table()
            .contract
            .events
            .iter()
            .map(|e| e.full_name)
            .collect();
        names.sort_unstable();
        names
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
        let table = self.inner.table();
        admission::authorize(&table, grant.as_deref(), &request)?;
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
            publishing::publish_batch(&self.inner, &table, request, &meta, grant.as_deref())
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
                let table = service.inner.table();
                if let Err(status) = admission::check_batch(&request)
                    .and_then(|()| admission::authorize(&table, grant.as_deref(), &request))
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
                            &table,
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

impl Table {
    fn new(loaded: Loaded, producer: EventProducer) -> Result<Self, Error> {
        let contract = loaded.contract()?;
        let types = EventTypes::new(contract, loaded.descriptors())?;
        if !loaded.has_sources() && producer.registry().registration() != Registration::UseLatest {
            return Err(Error::settings(
                "a contract without sources (a descriptor set) cannot register or look up \
                 schemas: use the registry's latest versions (`--registration latest`)",
            ));
        }
        Ok(Table {
            loaded,
            contract,
            types,
            producer,
        })
    }
}
