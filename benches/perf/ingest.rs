//! Acked events per second through the gRPC ingest service, run as its own
//! process (`PublishStream`, and `Publish` with 256 events per request, 16 in
//! flight), next to the three raw producers; CPU time per event (the
//! machine's, the service's against the `BaseProducer` loop's process, the
//! load generator's) and the service's resident memory under that load.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use prost::Message as _;
use prost::bytes::{BufMut as _, Bytes};
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::codec::IngestCodec;
use protobus_runtime::Event;
use tonic::client::Grpc;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::kafka::{Measure, Produced, RawProducer, RawRuns, figures};
use crate::{Bench, Row, Target, cost, kafka};

const BATCH: usize = 256;
/// Unary calls the load generator keeps in flight. Each waits for its
/// slowest event (linger plus the broker's ack), so at 8 the client, not the
/// service, set the pace (0.54 of raw at 1 KiB; 0.65 at 16).
const UNARY_IN_FLIGHT: usize = 16;

/// The paths of the ingest service's methods, as its generated client
/// calls them; made once, cloned (a reference count) per call.
static PUBLISH_STREAM_PATH: LazyLock<PathAndQuery> = LazyLock::new(|| path("PublishStream"));
static PUBLISH_PATH: LazyLock<PathAndQuery> = LazyLock::new(|| path("Publish"));

fn path(method: &str) -> PathAndQuery {
    format!("/{}/{method}", api::ingest_server::SERVICE_NAME)
        .parse()
        .expect("a method path")
}

/// The load generator's codec: requests go out as they were encoded before
/// the clock started (the bytes prost's codec writes), so its CPU on the
/// service's two cores is the transport and reading every answer.
#[derive(Debug, Default, Clone, Copy)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = api::PublishResponse;
    type Encoder = PreEncoded;
    type Decoder = <IngestCodec<api::PublishRequest, api::PublishResponse> as Codec>::Decoder;

    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        IngestCodec::<api::PublishRequest, api::PublishResponse>::default().decoder()
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, request: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(request);
        Ok(())
    }

    /// Room for a whole request of 1 KiB events with their framing, so the
    /// buffer does not grow under each one.
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(BATCH * 1100, 32 * 1024)
    }
}

fn request(events: &[api::Event], id: usize) -> Bytes {
    api::PublishRequest {
        events: events.to_vec(),
        request_id: id as u64,
    }
    .encode_to_vec()
    .into()
}

fn count_acks(response: &api::PublishResponse) -> usize {
    response
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
        .count()
}

/// The round's requests, built and encoded before the clock starts: a
/// client has its events in hand; copying them into requests is not the
/// service's work.
fn requests(events: &[api::Event]) -> Vec<Bytes> {
    events
        .chunks(BATCH)
        .enumerate()
        .map(|(i, batch)| request(batch, i))
        .collect()
}

async fn stream(client: &mut Grpc<Channel>, requests: Vec<Bytes>, events: usize) -> Produced {
    let measure = Measure::start();
    client.ready().await.expect("ready");
    let mut responses = client
        .streaming(
            Request::new(tokio_stream::iter(requests)),
            PUBLISH_STREAM_PATH.clone(),
            PreEncoded,
        )
        .await
        .expect("stream")
        .into_inner();
    let mut acked = 0;
    while let Some(response) = responses.message().await.expect("stream response") {
        acked += count_acks(&response);
    }
    assert_eq!(acked, events, "stream acks");
    measure.end(events)
}

async fn unary(client: &Grpc<Channel>, requests: Vec<Bytes>, events: usize) -> Produced {
    let measure = Measure::start();
    let acked: usize = futures_util::stream::iter(requests)
        .map(|request| {
            let mut client = client.clone();
            async move {
                client.ready().await.expect("ready");
                let response = client
                    .unary(Request::new(request), PUBLISH_PATH.clone(), PreEncoded)
                    .await
                    .expect("publish");
                count_acks(&response.into_inner())
            }
        })
        .buffer_unordered(UNARY_IN_FLIGHT)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    assert_eq!(acked, events, "unary acks");
    measure.end(events)
}

/// Resident set and its high-water mark, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The ingest process (in a process group of its own, with any profiler
/// wrapping it), interrupted when the bench ends whatever happens.
struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let interrupted = Command::new("kill").args(["-INT", "--", &group]).status();
        if !interrupted.is_ok_and(|s| s.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

pub(crate) async fn run(bench: &Bench) -> Vec<Row> {
    let (prefix, topic) = kafka::topic(&bench.bootstrap, "ingest").await;
    let schema_id = bench.schemas.id_of::<OrderPlaced>().await.unwrap();
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    // `PROTOBUS_BENCH_INGEST_WRAPPER="heaptrack"` (or `perf record -g`, …)
    // runs the service under a profiler.
    let wrapper = std::env::var("PROTOBUS_BENCH_INGEST_WRAPPER").unwrap_or_default();
    let mut command = wrapper
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    command.push(env!("CARGO_BIN_EXE_protobus").to_owned());
    let mut ingest = Ingest(
        Command::new(&command[0])
            .args(&command[1..])
            .args([
                "ingest",
                "--listen",
                &listen.to_string(),
                "--kafka",
                &bench.bootstrap,
            ])
            .args(["--registry", &bench.registry_url, "--topic-prefix", &prefix])
            .env("RUST_LOG", "warn")
            .process_group(0)
            .stdout(Stdio::null())
            .spawn()
            .expect("start protobus ingest"),
    );
    let pid = ingest.0.id();
    let mut client = loop {
        match Channel::from_shared(format!("http://{listen}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => break Grpc::new(channel),
            Err(_) if ingest.0.try_wait().unwrap().is_none() => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("protobus ingest did not start: {e}"),
        }
    };
    let peak = Arc::new(Mutex::new(0.0_f64));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let (rss, _) = rss_mib(pid);
                {
                    let mut p = peak.lock().unwrap();
                    *p = p.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut rows = Vec::new();
    // The bars of each call, against the fastest raw producer: `Publish`
    // waits for its slowest event before a request slot frees.
    const PUBLISH: f64 = 0.75;
    for (size, label, stream_target) in [(100, "100 B", 0.75), (1024, "1 KiB", 0.85)] {
        let orders: Arc<Vec<OrderPlaced>> = Arc::new(
            (0..bench.per_round)
                .map(|i| kafka::event(i, size))
                .collect(),
        );
        let events: Vec<api::Event> = orders
            .iter()
            .map(|order| api::Event {
                r#type: OrderPlaced::FULL_NAME.into(),
                payload: Some(Payload::Binary(order.encode_to_vec().into())),
                ..api::Event::default()
            })
            .collect();
        // Warm-up: connections, registration, topic metadata.
        let warm_up = BATCH.min(events.len());
        let _ = stream(&mut client, requests(&events[..warm_up]), warm_up).await;
        // Each call's rounds: the load generator's figures, and the
        // service's CPU time per event.
        let (mut streams, mut unaries) = (Vec::new(), Vec::new());
        let mut raws = RawRuns::new();
        let clients = kafka::raw_clients(&bench.bootstrap, &topic, schema_id).await;
        for round in 0..bench.rounds {
            // Each side goes first in turn, as in the producer pair.
            let sides = RawProducer::ALL.len() + 2;
            for k in 0..sides {
                let before = cost::pid_cpu_seconds(pid);
                let per_event = |n: usize| (cost::pid_cpu_seconds(pid) - before) * 1e6 / n as f64;
                match (round + k) % sides {
                    0 => {
                        let produced = stream(&mut client, requests(&events), events.len()).await;
                        streams.push((produced, per_event(events.len())));
                    }
                    1 => {
                        let produced = unary(&client, requests(&events), events.len()).await;
                        unaries.push((produced, per_event(events.len())));
                    }
                    side => {
                        let raw = RawProducer::ALL[side - 2];
                        let produced = clients[side - 2]
                            .produce(&topic, schema_id, orders.clone())
                            .await;
                        raws.push(raw, produced);
                    }
                }
            }
        }
        let publish = format!("Publish ({BATCH}/request, {UNARY_IN_FLIGHT} in flight)");
        for (call, rounds, target) in [
            ("PublishStream", &streams, stream_target),
            (publish.as_str(), &unaries, PUBLISH),
        ] {
            let load: Vec<Produced> = rounds.iter().map(|(load, _)| *load).collect();
            rows.push(Row::throughput(
                format!("ingest {call} vs {{raw}}, {label}"),
                figures(&load, |p| p.rate),
                raws.rates(),
                Some(target),
            ));
            // Where the time goes on two shared cores: the machine's CPU
            // per event (broker, load generator and service), and the
            // service's against the raw producer's process.
            rows.push(raws.cpu_row(
                format!("machine CPU per event, ingest {call} vs {{raw}}, {label}"),
                figures(&load, |p| p.machine_cpu_us),
                RawProducer::Base,
                |p| p.machine_cpu_us,
            ));
            rows.push(raws.cpu_row(
                format!("process CPU per event, ingest service ({call}) vs {{raw}}, {label}"),
                rounds.iter().map(|(_, service)| *service).collect(),
                RawProducer::Base,
                |p| p.process_cpu_us,
            ));
            rows.push(Row::single(
                format!("gRPC load generator CPU per event ({call}), {label}"),
                "µs",
                figures(&load, |p| p.process_cpu_us),
                None,
            ));
        }
    }
    sampler.abort();
    let (_, hwm) = rss_mib(pid);
    let peak = peak.lock().unwrap().max(hwm);
    rows.push(Row::single(
        "ingest service resident memory under that load (peak)",
        "MiB",
        vec![peak],
        Some(Target::AtMost(100.0)),
    ));
    drop(ingest);
    rows
}
