//! The Confluent Schema Registry REST API over a [`Registry`].

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use protobus_compat::CompatibilityLevel;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::records::Reference;
use crate::registry::{PROTOBUF, Registry, SchemaFormat, SchemaInput, VersionSpec};

/// The content type Confluent's API answers with.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Largest request body accepted (Confluent's clients send schemas, not data).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

type Params = Query<HashMap<String, String>>;
type Reply = Result<Response, Error>;

/// The REST API as an axum router, ready to serve or to nest.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/", get(|| async { ok(&json!({})) }))
        .route("/health", get(|| async { ok(&json!({ "status": "UP" })) }))
        .route("/schemas/types", get(|| async { ok(&json!([PROTOBUF])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_of_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_one),
        )
        .route(
            "/config",
            get(global_config)
                .put(set_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(subject_config)
                .put(set_subject_config)
                .delete(delete_subject_config),
        )
        // A route layer: it runs once the route is known, so requests are
        // counted by route; paths that match none are not counted.
        .route_layer(axum::middleware::from_fn(count_request))
        .layer(axum::middleware::from_fn(answer_panics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(registry)
}

/// Requests by `method`, `endpoint` (the route, such as
/// `/subjects/{subject}/versions`) and `status`.
pub const REQUESTS: &str = "protobus_registry_requests_total";
/// Time to answer, by `method` and `endpoint`.
pub const REQUEST_DURATION: &str = "protobus_registry_request_duration_seconds";

async fn count_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "method" => method.clone(), "endpoint" => endpoint.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(REQUEST_DURATION, "method" => method, "endpoint" => endpoint)
        .record(started.elapsed());
    response
}

/// A handler that panics answers its request with a 500 and error code 500
/// (the panic is logged); the connection and other requests go on.
async fn answer_panics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::FutureExt as _;
    let endpoint = request.uri().path().to_owned();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = crate::workers::panic_message(&*panic);
            tracing::error!(endpoint, panic = %message, "a registry request panicked");
            Error::internal("the request failed unexpectedly").into_response()
        }
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("responses serialize");
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn ok(body: &impl serde::Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

/// A schema's text as the body, under the API's content type (as Confluent does).
fn raw_text(text: String) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn parse_id(id: &str) -> Result<i32, Error> {
    id.parse().map_err(|_| Error::schema_not_found(id))
}

/// The request body as JSON, whatever content type the client declared.
fn body<T: for<'de> Deserialize<'de>>(bytes: Result<Bytes, BytesRejection>) -> Result<T, Error> {
    let bytes = bytes.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::too_large(MAX_BODY_BYTES),
        _ => Error::bad_request(rejection.body_text()),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("Malformed JSON request body: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<Reference>>,
}

impl SchemaRequest {
    fn into_input(self) -> Result<SchemaInput, Error> {
        let schema = self
            .schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::invalid_schema("Empty schema"))?;
        Ok(SchemaInput {
            schema,
            schema_type: self.schema_type,
            references: self.references.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigRequest {
    compatibility: Option<String>,
    compatibility_level: Option<String>,
}

fn format(params: &Params) -> SchemaFormat {
    SchemaFormat::from_query(params.get("format").map(String::as_str))
}

async fn schema_by_id(State(r): State<Registry>, Path(id): Path<String>, q: Params) -> Reply {
    let found = r.schema_by_id(parse_id(&id)?, format(&q))?;
    Ok(ok(&found))
}

async fn raw_schema_by_id(State(r): State<Registry>, Path(id): Path<String>, q: Params) -> Reply {
    let found = r.schema_by_id(parse_id(&id)?, format(&q))?;
    Ok(raw_text(found.schema))
}

async fn versions_of_id(State(r): State<Registry>, Path(id): Path<String>, q: Params) -> Reply {
    let found = r.versions_of_id(parse_id(&id)?, flag(&q, "deleted"))?;
    let list: Vec<Value> = found
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    Ok(ok(&list))
}

async fn subjects_of_id(State(r): State<Registry>, Path(id): Path<String>, q: Params) -> Reply {
    let mut subjects: Vec<String> = r
        .versions_of_id(parse_id(&id)?, flag(&q, "deleted"))?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    Ok(ok(&subjects))
}

async fn subjects(State(r): State<Registry>, q: Params) -> Reply {
    let prefix = q.get("subjectPrefix").map(String::as_str).unwrap_or("");
    Ok(ok(&r.subjects(flag(&q, "deleted"), prefix)))
}

async fn lookup(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let input = body::<SchemaRequest>(bytes)?.into_input()?;
    let found = r
        .lookup(&subject, &input, flag(&q, "normalize"), flag(&q, "deleted"))
        .await?;
    Ok(ok(&found))
}

async fn register(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let input = body::<SchemaRequest>(bytes)?.into_input()?;
    let id = r.register(&subject, &input, flag(&q, "normalize")).await?;
    Ok(ok(&json!({ "id": id })))
}

async fn delete_subject(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
) -> Reply {
    Ok(ok(&r
        .delete_subject(&subject, flag(&q, "permanent"))
        .await?))
}

async fn versions(State(r): State<Registry>, Path(subject): Path<String>, q: Params) -> Reply {
    Ok(ok(&r.versions(&subject, flag(&q, "deleted"))?))
}

async fn version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    Ok(ok(&r.version(
        &subject,
        spec,
        flag(&q, "deleted"),
        format(&q),
    )?))
}

async fn raw_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    Ok(r.version(&subject, spec, flag(&q, "deleted"), format(&q))?
        .schema
        .into_response())
}

async fn referenced_by(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    Ok(ok(&r.referenced_by(&subject, spec)?))
}

async fn delete_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    Ok(ok(&r
        .delete_version(&subject, spec, flag(&q, "permanent"))
        .await?))
}

async fn compatibility_all(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    compatibility(r, &subject, None, q, bytes).await
}

async fn compatibility_one(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    compatibility(r, &subject, Some(spec), q, bytes).await
}

async fn compatibility(
    r: Registry,
    subject: &str,
    version: Option<VersionSpec>,
    q: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let input = body::<SchemaRequest>(bytes)?.into_input()?;
    // `normalize` changes nothing here: compatibility never depends on the
    // form of the text.
    let (compatible, messages) = r.test_compatibility(subject, version, &input).await?;
    if flag(&q, "verbose") {
        Ok(ok(
            &json!({ "is_compatible": compatible, "messages": messages }),
        ))
    } else {
        Ok(ok(&json!({ "is_compatible": compatible })))
    }
}

fn level_of(request: ConfigRequest) -> Result<CompatibilityLevel, Error> {
    let name = request
        .compatibility
        .or(request.compatibility_level)
        .unwrap_or_default();
    CompatibilityLevel::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| Error::invalid_compatibility(&name))
}

async fn global_config(State(r): State<Registry>) -> Reply {
    Ok(ok(&json!({ "compatibilityLevel": r.global_level() })))
}

async fn set_global_config(
    State(r): State<Registry>,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let level = level_of(body(bytes)?)?;
    Ok(ok(
        &json!({ "compatibility": r.set_level(None, level).await? }),
    ))
}

async fn delete_global_config(State(r): State<Registry>) -> Reply {
    Ok(ok(
        &json!({ "compatibilityLevel": r.delete_level(None).await? }),
    ))
}

async fn subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    q: Params,
) -> Reply {
    let level = r.subject_level(&subject, flag(&q, "defaultToGlobal"))?;
    Ok(ok(&json!({ "compatibilityLevel": level })))
}

async fn set_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Reply {
    let level = level_of(body(bytes)?)?;
    Ok(ok(
        &json!({ "compatibility": r.set_level(Some(&subject), level).await? }),
    ))
}

async fn delete_subject_config(State(r): State<Registry>, Path(subject): Path<String>) -> Reply {
    Ok(ok(
        &json!({ "compatibilityLevel": r.delete_level(Some(&subject)).await? }),
    ))
}

async fn not_found(uri: Uri) -> Error {
    Error::not_found_path(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "error_code": 405, "message": format!("HTTP 405 Method Not Allowed: {method} {}", uri.path()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_with_a_code() {
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("boom");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn(answer_panics));
        let response = app
            .oneshot(
                axum::extract::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error_code"], 500, "{body}");
    }
}
