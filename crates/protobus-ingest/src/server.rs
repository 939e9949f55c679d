use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tracing::{info, warn};

use crate::api::ingest_server::IngestServer;
use crate::{Error, IngestService};

/// Serves `service` on `listener` with `grpc.health.v1` and server reflection
/// until `shutdown` resolves; then stops accepting, lets in-flight requests
/// finish and flushes the producer.
pub async fn serve(
    listener: TcpListener,
    service: IngestService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    serve_tls(listener, service, None, shutdown).await
}

/// [`serve`] over TLS when `tls` is given (see [`tls`]).
pub async fn serve_tls(
    listener: TcpListener,
    service: IngestService,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IngestServer<IngestService>>().await;
    // Both reflection versions: grpcurl and older clients still ask v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    if let Ok(address) = listener.local_addr() {
        info!(%address, "ingest service listening");
    }
    // Windows wide enough for a batch in flight per stream: with the HTTP/2
    // default (64 KiB) one PublishStream of 1 KiB events crawls.
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(service.clone().into_server())
        // Without TCP_NODELAY a small answer waits for the client's delayed
        // ACK: about 40 ms added to every unary call of a lone client.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    health
        .set_not_serving::<IngestServer<IngestService>>()
        .await;
    if let Err(err) = service.flush(Duration::from_secs(30)) {
        warn!(error = %err, "events still unacknowledged after 30 s at shutdown");
    }
    info!("ingest service stopped");
    Ok(())
}

/// TLS settings from PEM files: the server's certificate chain and key, and
/// optionally the CA that client certificates must be signed by (then a
/// client without one is refused during the handshake).
pub fn tls(
    certificate: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> Result<ServerTlsConfig, Error> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| Error::settings(format!("reading the {what} {}: {e}", path.display())))
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
        read("TLS certificate", certificate)?,
        read("TLS key", key)?,
    ));
    if let Some(ca) = client_ca {
        config = config.client_ca_root(Certificate::from_pem(read("client CA", ca)?));
    }
    Ok(config)
}
