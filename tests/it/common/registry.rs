//! Schema registries for tests: ours, served on a free port, its state in
//! a topic of the test broker.

use super::kafka::{Kafka, unique_name};

/// Serves `registry` on a free 127.0.0.1 port; returns its base URL.
pub async fn serve_registry(registry: protobus_registry::Registry) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move {
        axum::serve(listener, protobus_registry::router(registry))
            .await
            .expect("serve the registry");
    });
    url
}

impl Kafka {
    /// A schema registry with its state in a fresh topic of this broker,
    /// served on a free port, and a runtime client of it.
    pub async fn schema_registry(&self) -> std::sync::Arc<protobus_runtime::SchemaRegistry> {
        let registry =
            protobus_registry::Registry::kafka(self.bootstrap(), &unique_name("_schemas"))
                .await
                .expect("registry on Kafka");
        let url = serve_registry(registry).await;
        std::sync::Arc::new(protobus_runtime::SchemaRegistry::new(&url).expect("registry client"))
    }

    /// A typed producer writing behind `prefix`, with extra librdkafka `settings`.
    pub fn event_producer(
        &self,
        schemas: std::sync::Arc<protobus_runtime::SchemaRegistry>,
        prefix: &str,
        settings: &[(&str, &str)],
    ) -> protobus_runtime::EventProducer {
        let mut config = self.config();
        for (key, value) in settings {
            config.set(*key, *value);
        }
        protobus_runtime::EventProducer::new(&config, schemas)
            .expect("producer")
            .with_topic_prefix(prefix)
    }
}
