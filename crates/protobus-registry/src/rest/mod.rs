//! The Confluent Schema Registry REST API over a [`Registry`]: routes,
//! Confluent's bodies and error responses, request metrics, and serving.
//! The registry itself knows nothing of HTTP.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::Error;
use crate::registry::{PROTOBUF, Registry};

pub mod basic_auth;
mod handlers;
mod messages;
mod serve;

use handlers::*;
pub use serve::{TlsConfig, serve};

/// The content type Confluent's API answers with.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Largest request body accepted (Confluent's clients send schemas, not data).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(super) type Reply = Result<Response, Error>;

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
        .route("/catalog", get(catalog))
        .route("/catalog.html", get(catalog_html))
        .route("/mode", get(global_mode).put(set_global_mode))
        .route(
            "/mode/{subject}",
            get(subject_mode)
                .put(set_subject_mode)
                .delete(delete_subject_mode),
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

/// Confluent's error body, `{"error_code": …, "message": …}`, with the
/// HTTP status its code implies.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error_code": self.code(), "message": self.to_string() });
        json_response(status, &body)
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    json_response_as(status, CONTENT_TYPE, body)
}

/// `body` as JSON under `content_type`.
pub(crate) fn json_response_as(
    status: StatusCode,
    content_type: &'static str,
    body: &impl serde::Serialize,
) -> Response {
    let bytes = serde_json::to_vec(body).expect("responses serialize");
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn ok(body: &impl serde::Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

/// A schema's text as the body, under the API's content type (as Confluent does).
pub(super) fn raw_text(text: String) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
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
    use serde_json::Value;
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
