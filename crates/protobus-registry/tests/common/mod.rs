//! A registry served over real HTTP on 127.0.0.1, and a client for it.
#![allow(dead_code, unreachable_pub)]

use protobus_registry::{Registry, router};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub async fn start() -> Api {
        Self::serve(Registry::in_memory()).await
    }

    pub async fn serve(registry: Registry) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, router(registry)).await.unwrap();
        });
        Api {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, String) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/vnd.schemaregistry.v1+json");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if status.is_success() {
            assert_eq!(
                response.headers()["content-type"],
                "application/vnd.schemaregistry.v1+json",
                "{path}"
            );
        }
        (status, response.text().await.unwrap())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, text) = self
            .raw(method, path, body.map(|b| serde_json::to_vec(&b).unwrap()))
            .await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn register(&self, subject: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/subjects/{subject}/versions"),
            Some(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }
}

pub fn proto(schema: &str) -> Value {
    json!({ "schemaType": "PROTOBUF", "schema": schema })
}

pub fn error_code(value: &Value) -> i64 {
    value["error_code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error_code in {value}"))
}
