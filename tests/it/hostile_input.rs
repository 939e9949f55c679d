//! The front door under hostile input. `protobus registry` (state in Kafka,
//! basic auth) and `protobus ingest` (bearer tokens) run as processes of
//! their own on 127.0.0.1; each known reproduction is replayed, then a seeded
//! random pass over registry bodies and ingest requests. Every request must
//! be answered (a status, and an error code when refused) within its
//! deadline, both processes must stay up, and each one's peak resident
//! memory (VmHWM) must stay under [`PEAK_BOUND_BYTES`]. Prints one figure
//! line: inputs tried, answered, crashes, hangs, peak memory.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use prost::Message as _;
use protobus::contract::shop::customers::v1::CustomerRegistered;
use protobus::contract::shop::orders::v1::OrderPlaced;
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, event::Payload, result::Outcome};
use protobus_ingest::codec::MAX_EVENTS_PER_REQUEST;
use protobus_runtime::Event as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Peak resident memory each process may reach over the whole suite.
const PEAK_BOUND_BYTES: u64 = 384 * 1024 * 1024;
/// Longest any one request may take to be answered (the registry's work
/// timeout is 10 s).
const DEADLINE: Duration = Duration::from_secs(20);
const USER: &str = "hostile";
const PASSWORD: &str = "hostile-password-0123";
const ORDERS_TOKEN: &str = "orders-0123456789-secret";
const CUSTOMERS_TOKEN: &str = "customers-0123456789-secret";

#[derive(Default)]
struct Tally {
    tried: AtomicUsize,
    answered: AtomicUsize,
    hangs: AtomicUsize,
}

struct Front {
    registry: common::Process,
    ingest: common::Process,
    registry_url: String,
    http: reqwest::Client,
    ingest_client: IngestClient<Channel>,
    ingest_client_channel: Channel,
    tally: Tally,
    _dir: tempfile::TempDir,
}

impl Front {
    async fn start() -> Front {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{USER}:{PASSWORD}\n")).unwrap();
        let tokens = dir.path().join("tokens.json");
        std::fs::write(
            &tokens,
            json!({ "tokens": [
                { "name": "orders-writer", "token": ORDERS_TOKEN, "topics": [OrderPlaced::TOPIC] },
                { "name": "customers-writer", "token": CUSTOMERS_TOKEN, "topics": [CustomerRegistered::TOPIC] },
            ]})
            .to_string(),
        )
        .unwrap();
        let registry_address = common::free_address().to_string();
        let registry = quiet(&[
            "registry",
            "--listen",
            &registry_address,
            "--topic",
            &common::unique_name("_schemas-hostile"),
            "--users-file",
            users.to_str().unwrap(),
        ]);
        let registry_url = format!("http://{registry_address}");
        let http = reqwest::Client::builder()
            .timeout(DEADLINE)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = http
                .get(format!("{registry_url}/subjects"))
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await;
            if up.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "the registry did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ingest_address = common::free_address().to_string();
        let prefix = format!("{}.", common::unique_name("hostile"));
        let kafka = common::kafka().await;
        for topic in [OrderPlaced::TOPIC, CustomerRegistered::TOPIC] {
            kafka.create_topic(&format!("{prefix}{topic}"), 1).await;
        }
        let ingest = quiet(&[
            "ingest",
            "--listen",
            &ingest_address,
            "--registry",
            &format!("http://{USER}:{PASSWORD}@{registry_address}"),
            "--tokens-file",
            tokens.to_str().unwrap(),
            "--topic-prefix",
            &prefix,
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let channel = loop {
            match Channel::from_shared(format!("http://{ingest_address}"))
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(err) => {
                    assert!(Instant::now() < deadline, "ingest did not start: {err}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Front {
            registry,
            ingest,
            registry_url,
            http,
            ingest_client_channel: channel.clone(),
            ingest_client: IngestClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
            tally: Tally::default(),
            _dir: dir,
        }
    }

    /// A registry request; `(status, body)`, with the answer checked to
    /// carry Confluent's `error_code` when it is a refusal.
    async fn registry(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        self.tally.tried.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.registry_url))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", "application/vnd.schemaregistry.v1+json");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                self.tally.hangs.fetch_add(1, Ordering::Relaxed);
                panic!("{path}: no answer within {DEADLINE:?}");
            }
            Err(err) => panic!("{path}: no answer: {err}"),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            assert!(
                value["error_code"].as_u64().is_some() && value["message"].is_string(),
                "{path}: {status} without an error code: {value}"
            );
        }
        self.tally.answered.fetch_add(1, Ordering::Relaxed);
        (status, value)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.registry(
            reqwest::Method::POST,
            path,
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    /// A `Publish` call; its status, or its results.
    async fn publish(
        &self,
        token: Option<&str>,
        events: Vec<api::Event>,
    ) -> Result<Vec<Outcome>, tonic::Status> {
        self.tally.tried.fetch_add(1, Ordering::Relaxed);
        let mut request = tonic::Request::new(api::PublishRequest {
            events,
            request_id: 1,
        });
        request.set_timeout(DEADLINE);
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let answer = self.ingest_client.clone().publish(request).await;
        if let Err(status) = &answer {
            assert_ne!(
                status.code(),
                Code::Unknown,
                "an answer without a code: {status:?}"
            );
            if status.code() == Code::DeadlineExceeded && status.message().contains("Timeout") {
                self.tally.hangs.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.tally.answered.fetch_add(1, Ordering::Relaxed);
        answer.map(|response| {
            response
                .into_inner()
                .results
                .into_iter()
                .map(|r| r.outcome.expect("every result has an outcome"))
                .collect()
        })
    }

    /// A `Publish` call whose request is `body` as it is on the wire: what a
    /// client could send that no well-behaved encoder would build.
    async fn publish_raw(&self, token: Option<&str>, body: Vec<u8>) -> tonic::Status {
        self.tally.tried.fetch_add(1, Ordering::Relaxed);
        let mut request = tonic::Request::new(body);
        request.set_timeout(DEADLINE);
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let mut grpc = tonic::client::Grpc::new(self.ingest_client_channel.clone())
            .max_encoding_message_size(64 * 1024 * 1024);
        grpc.ready().await.unwrap();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/protobus.ingest.v1.Ingest/Publish",
        );
        let answer = grpc.unary(request, path, RawCodec).await;
        self.tally.answered.fetch_add(1, Ordering::Relaxed);
        answer.expect_err("refused")
    }

    /// How many of the two processes have exited.
    fn exited(&mut self) -> usize {
        [&mut self.registry, &mut self.ingest]
            .into_iter()
            .filter_map(|p| p.0.try_wait().unwrap())
            .count()
    }
}

/// Starts `protobus` with `args` against the test broker, logging errors only
/// (the suite's refusals would otherwise log thousands of warnings).
fn quiet(args: &[&str]) -> common::Process {
    common::Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", common::bootstrap_servers())
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start protobus"),
    )
}

/// Sends bytes as they are; reads an answer as a `PublishResponse`.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = api::PublishResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = api::PublishResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        api::PublishResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// The peak resident memory of `process`, from `/proc/PID/status`.
fn peak_bytes(process: &common::Process) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.0.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

fn proto(schema: &str) -> Value {
    json!({ "schemaType": "PROTOBUF", "schema": schema })
}

fn with_refs(schema: &str, references: Value) -> Value {
    json!({ "schemaType": "PROTOBUF", "schema": schema, "references": references })
}

fn code(value: &Value) -> u64 {
    value["error_code"].as_u64().unwrap_or(0)
}

fn order(order_id: &str, coupon: &str) -> api::Event {
    let order = OrderPlaced {
        order_id: order_id.into(),
        coupon_code: coupon.into(),
        ..Default::default()
    };
    api::Event {
        r#type: OrderPlaced::FULL_NAME.into(),
        payload: Some(Payload::Binary(order.encode_to_vec().into())),
        ..Default::default()
    }
}

fn customer(customer_id: &str) -> api::Event {
    let customer = CustomerRegistered {
        customer_id: customer_id.into(),
        ..Default::default()
    };
    api::Event {
        r#type: CustomerRegistered::FULL_NAME.into(),
        payload: Some(Payload::Binary(customer.encode_to_vec().into())),
        ..Default::default()
    }
}

fn failure(outcome: &Outcome) -> &api::Failure {
    match outcome {
        Outcome::Failure(failure) => failure,
        Outcome::Ack(ack) => panic!("acknowledged: {ack:?}"),
    }
}

fn ack(outcome: &Outcome) -> &api::Ack {
    match outcome {
        Outcome::Ack(ack) => ack,
        Outcome::Failure(failure) => panic!("failed: {failure:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_answers_hostile_input_and_stays_up_within_its_memory() {
    let mut front = Front::start().await;
    registry_reproductions(&front).await;
    ingest_reproductions(&front).await;
    random_registry_bodies(&front, 0x5eed_0001, 400).await;
    random_ingest_requests(&front, 0x5eed_0002, 400).await;

    let crashes = front.exited();
    let peaks = [peak_bytes(&front.registry), peak_bytes(&front.ingest)];
    let tally = &front.tally;
    common::figure(&format!(
        "hostile input: tried={} answered={} crashes={crashes} hangs={} peak_registry_mib={} peak_ingest_mib={} bound_mib={}",
        tally.tried.load(Ordering::Relaxed),
        tally.answered.load(Ordering::Relaxed),
        tally.hangs.load(Ordering::Relaxed),
        peaks[0] >> 20,
        peaks[1] >> 20,
        PEAK_BOUND_BYTES >> 20,
    ));
    assert_eq!(crashes, 0);
    assert_eq!(tally.hangs.load(Ordering::Relaxed), 0);
    assert_eq!(
        tally.tried.load(Ordering::Relaxed),
        tally.answered.load(Ordering::Relaxed)
    );
    for peak in peaks {
        assert!(peak < PEAK_BOUND_BYTES, "peak {} MiB", peak >> 20);
    }
}

async fn registry_reproductions(front: &Front) {
    // 1. A custom option value nested 100 levels: refused before parsing.
    let deep = format!(
        "syntax = \"proto3\";\nimport \"google/protobuf/descriptor.proto\";\nmessage R {{ R r = 1; }}\n\
         extend google.protobuf.FileOptions {{ R deep = 50000; }}\noption (deep) = {{ {}{} }};\n",
        "r { ".repeat(100),
        "} ".repeat(100)
    );
    for path in [
        "/subjects/deep-value/versions",
        "/subjects/deep-value",
        "/compatibility/subjects/deep-value/versions",
    ] {
        let (status, answer) = front.post(path, proto(&deep)).await;
        assert_eq!(
            (status.as_u16(), code(&answer)),
            (422, 42201),
            "{path}: {answer}"
        );
    }

    // 2. 81 registrations shaped as 40 diamonds, then one small request.
    for side in ["a", "b"] {
        let schema =
            format!("syntax = \"proto3\";\npackage d0{side};\nmessage L {{ string id = 1; }}\n");
        let (status, _) = front
            .post(&format!("/subjects/d0-{side}/versions"), proto(&schema))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for layer in 1..=40 {
        let below = layer - 1;
        let references = json!([
            { "name": format!("d{below}a.proto"), "subject": format!("d{below}-a"), "version": -1 },
            { "name": format!("d{below}b.proto"), "subject": format!("d{below}-b"), "version": -1 },
        ]);
        for side in ["a", "b"] {
            let schema = format!(
                "syntax = \"proto3\";\npackage d{layer}{side};\nimport \"d{below}a.proto\";\nimport \"d{below}b.proto\";\nmessage M {{ string id = 1; }}\n"
            );
            let (status, answer) = front
                .post(
                    &format!("/subjects/d{layer}-{side}/versions"),
                    with_refs(&schema, references.clone()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }
    let (status, answer) = front
        .post(
            "/compatibility/subjects/top/versions",
            with_refs(
                "syntax = \"proto3\";\nimport \"top.proto\";\nmessage T { string id = 1; }\n",
                json!([{ "name": "top.proto", "subject": "d40-a", "version": -1 }]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // 3. A large compile while reads go on: both answered.
    let mut large = String::from("syntax = \"proto3\";\npackage big;\n");
    let mut i = 0;
    while large.len() < 250_000 {
        large.push_str(&format!("message M{i} {{ string a = 1; int64 b = 2; }}\n"));
        i += 1;
    }
    let (registered, listed) = tokio::join!(
        front.post("/subjects/big-value/versions", proto(&large)),
        front.registry(reqwest::Method::GET, "/subjects", None)
    );
    assert_eq!((registered.0, listed.0), (StatusCode::OK, StatusCode::OK));

    // 4 and 5. Hundreds and tens of thousands of reference names.
    for count in [500, 40_000] {
        let references: Value = (0..count)
            .map(|i| json!({ "name": format!("r{i}.proto"), "subject": "big-value", "version": 1 }))
            .collect();
        let (status, answer) = front
            .post(
                "/subjects/refs-value/versions",
                with_refs(
                    "syntax = \"proto3\";\nmessage T { string id = 1; }\n",
                    references,
                ),
            )
            .await;
        assert_eq!((status.as_u16(), code(&answer)), (422, 42201), "{answer}");
    }

    // 6. A 3 MB schema.
    let huge = format!(
        "syntax = \"proto3\";\n// {}\nmessage H {{ string a = 1; }}\n",
        "x".repeat(3_000_000)
    );
    let (status, answer) = front
        .post("/subjects/huge-value/versions", proto(&huge))
        .await;
    assert_eq!((status.as_u16(), code(&answer)), (422, 42201), "{answer}");

    // 7. `version: -1` is stored as the version it meant, and guards it.
    let (_, stored) = front
        .registry(reqwest::Method::GET, "/subjects/d1-a/versions/1", None)
        .await;
    assert_eq!(stored["references"][0]["version"], 1, "{stored}");
    let (status, answer) = front
        .registry(reqwest::Method::DELETE, "/subjects/d0-a/versions/1", None)
        .await;
    assert_eq!((status.as_u16(), code(&answer)), (422, 42206), "{answer}");

    // 8. A descriptor with `syntax: "proto9"`.
    let odd = prost_types::FileDescriptorProto {
        name: Some("odd.proto".into()),
        syntax: Some("proto9".into()),
        ..Default::default()
    };
    let base64 = base64::engine::general_purpose::STANDARD.encode(odd.encode_to_vec());
    let (status, answer) = front
        .post("/subjects/odd-value/versions", proto(&base64))
        .await;
    assert_eq!((status.as_u16(), code(&answer)), (422, 42201), "{answer}");
}

async fn ingest_reproductions(front: &Front) {
    // 9. 16 MiB of empty events: refused before decoding, without a token
    // before even that.
    let empty = [0x0a, 0x00].repeat(8 * 1024 * 1024 - 16);
    let status = front.publish_raw(None, empty.clone()).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = front.publish_raw(Some(ORDERS_TOKEN), empty).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains(&MAX_EVENTS_PER_REQUEST.to_string()),
        "{status:?}"
    );

    // 10. A stream whose results are never read stops being read.
    let pulled = Arc::new(AtomicUsize::new(0));
    let batches = {
        let pulled = pulled.clone();
        tokio_stream::iter(0..).map(move |n: u64| {
            pulled.fetch_add(1, Ordering::Relaxed);
            api::PublishRequest {
                events: (0..500)
                    .map(|i| order(&format!("s{n}-{i}"), &"c".repeat(200)))
                    .collect(),
                request_id: n,
            }
        })
    };
    let mut call = tonic::Request::new(batches);
    call.metadata_mut().insert(
        "authorization",
        format!("Bearer {ORDERS_TOKEN}").parse().unwrap(),
    );
    front.tally.tried.fetch_add(1, Ordering::Relaxed);
    let unread = front
        .ingest_client
        .clone()
        .publish_stream(call)
        .await
        .unwrap();
    front.tally.answered.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stalled_at = pulled.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = pulled.load(Ordering::Relaxed);
    // 500 events of ~250 bytes a batch: the HTTP/2 windows hold some, the
    // server 16 more; unbounded, thousands would have gone in 11 s.
    assert!(
        later <= stalled_at + 1 && later < 200,
        "still pulling: {stalled_at} then {later}"
    );
    drop(unread);

    // 11. A 400 kB idempotency key.
    let mut event = order("long-key", "");
    event.idempotency_key = "k".repeat(400_000);
    let results = front
        .publish(Some(ORDERS_TOKEN), vec![event])
        .await
        .unwrap();
    let refused = failure(&results[0]);
    assert_eq!(
        (refused.code, refused.field.as_str()),
        (Code::InvalidArgument as i32, "idempotency_key")
    );

    // 12. One key, two callers; one key, two events.
    let key = common::unique_name("shared-key");
    let mut first = customer("c-1");
    first.idempotency_key = key.clone();
    let results = front
        .publish(Some(CUSTOMERS_TOKEN), vec![first])
        .await
        .unwrap();
    assert!(ack(&results[0]).topic.ends_with(CustomerRegistered::TOPIC));
    let mut other = order("o-1", "");
    other.idempotency_key = key.clone();
    let results = front
        .publish(Some(ORDERS_TOKEN), vec![other.clone()])
        .await
        .unwrap();
    let written = ack(&results[0]);
    assert!(
        !written.duplicate && written.topic.ends_with(OrderPlaced::TOPIC),
        "{written:?}"
    );
    let results = front
        .publish(Some(ORDERS_TOKEN), vec![other])
        .await
        .unwrap();
    assert!(ack(&results[0]).duplicate, "a retry of the same event");
    let mut changed = order("o-2", "");
    changed.idempotency_key = key;
    let results = front
        .publish(Some(ORDERS_TOKEN), vec![changed])
        .await
        .unwrap();
    assert_eq!(failure(&results[0]).code, Code::AlreadyExists as i32);

    // 13. Within the 1 MiB event limit, over the producer's message.max.bytes.
    let big = order(&"o".repeat(600_000), &"c".repeat(400_000));
    let results = front.publish(Some(ORDERS_TOKEN), vec![big]).await.unwrap();
    let refused = failure(&results[0]);
    assert_eq!(refused.code, Code::InvalidArgument as i32, "{refused:?}");
    assert!(refused.reason.contains("message.max.bytes"), "{refused:?}");
}

/// xorshift64*: the same inputs for the same seed, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Fewer than `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const PIECES: &[&str] = &[
    "syntax = \"proto3\";",
    "syntax = \"proto2\";",
    "package p;",
    "import \"google/protobuf/descriptor.proto\";",
    "import \"r.proto\";",
    "message M { string a = 1; }",
    "message N { M m = 1; repeated N n = 2; map<string, N> x = 3; }",
    "enum E { A = 0; B = 1; }",
    "option (x) = { a { b { c: 1 } } };",
    "extend google.protobuf.FieldOptions { string y = 50001; }",
    "{",
    "}",
    "[",
    "<",
    "(",
    "\"",
    "/*",
    "//",
    "\\",
    "\u{0}",
    "\u{feff}",
    "message M { oneof o { string a = 1; } reserved 1 to max; }",
    "service S { rpc R(M) returns (M); }",
];

async fn random_registry_bodies(front: &Front, seed: u64, count: usize) {
    let mut random = Random(seed);
    let subjects = ["r-value", "d1-a", "big-value", "%2F..%2F", "x%00y", "leaf"];
    for _ in 0..count {
        let subject = *random.pick(&subjects);
        let mut schema = String::new();
        for _ in 0..random.below(12) {
            let piece = random.pick::<&str>(PIECES);
            schema.push_str(piece);
            if random.below(3) == 0 {
                schema.push_str(&random.pick(PIECES).repeat(random.below(80)));
            }
            schema.push('\n');
        }
        if random.below(6) == 0 {
            schema = base64::engine::general_purpose::STANDARD.encode(random.bytes(400));
        }
        let references: Value = (0..random.below(4))
            .map(|_| {
                json!({
                    "name": random.pick(&["r.proto", "d0a.proto", "", "../x"]),
                    "subject": random.pick(&subjects),
                    "version": random.pick(&[-1i64, 0, 1, 2, i64::from(i32::MAX), -7]),
                })
            })
            .collect();
        let mut body = serde_json::to_vec(&json!({
            "schemaType": random.pick(&["PROTOBUF", "AVRO", "", "JSON"]),
            "schema": schema,
            "references": references,
        }))
        .unwrap();
        match random.below(5) {
            0 => body.truncate(random.below(body.len() + 1)),
            1 => {
                for _ in 0..random.below(8) + 1 {
                    let at = random.below(body.len());
                    body[at] = random.next() as u8;
                }
            }
            2 => {
                body = format!(
                    "{}{}",
                    "[".repeat(random.below(5000)),
                    "]".repeat(random.below(5000))
                )
                .into_bytes()
            }
            _ => {}
        }
        let (method, path) = match random.below(5) {
            0 => (reqwest::Method::POST, format!("/subjects/{subject}")),
            1 => (
                reqwest::Method::POST,
                format!("/compatibility/subjects/{subject}/versions/latest?verbose=true"),
            ),
            2 => (reqwest::Method::PUT, format!("/config/{subject}")),
            _ => (
                reqwest::Method::POST,
                format!("/subjects/{subject}/versions?normalize=true"),
            ),
        };
        front.registry(method, &path, Some(body)).await;
    }
}

async fn random_ingest_requests(front: &Front, seed: u64, count: usize) {
    let mut random = Random(seed);
    let types = [
        OrderPlaced::FULL_NAME,
        CustomerRegistered::FULL_NAME,
        "",
        "shop.orders.v1.Nope",
        "\u{0}",
    ];
    let tokens = [
        Some(ORDERS_TOKEN),
        Some(CUSTOMERS_TOKEN),
        None,
        Some("wrong-0123456789-token"),
    ];
    for _ in 0..count {
        let events = (0..random.below(20))
            .map(|_| {
                let valid = order(&format!("r{}", random.next()), "").payload;
                let payload = match random.below(4) {
                    0 => valid,
                    1 => Some(Payload::Binary(random.bytes(300).into())),
                    2 => Some(Payload::Json(format!(
                        "{}\"orderId\": \"x\"{}",
                        "{".repeat(random.below(200)),
                        "}".repeat(random.below(200))
                    ))),
                    _ => None,
                };
                api::Event {
                    r#type: (*random.pick(&types)).to_owned(),
                    payload,
                    key: (random.below(3) == 0).then(|| random.bytes(64)),
                    headers: (0..random.below(3))
                        .map(|_| api::Header {
                            key: random
                                .pick(&["", "protobus-event-id", "x-a", "é"])
                                .to_string(),
                            value: random.bytes(32),
                        })
                        .collect(),
                    correlation_id: String::from_utf8_lossy(&random.bytes(16)).into_owned(),
                    idempotency_key: if random.below(2) == 0 {
                        String::new()
                    } else {
                        format!("k{}", random.below(8))
                    },
                }
            })
            .collect();
        let token = *random.pick(&tokens);
        let _ = front.publish(token, events).await;
    }
}
