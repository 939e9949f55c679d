//! Serving the REST API, over TLS when a certificate is given, with a
//! graceful stop: requests in flight finish, new connections are refused.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// How long requests in flight get to finish once the stop begins.
const DRAIN: Duration = Duration::from_secs(10);

/// TLS for [`serve`]: the registry's certificate chain and key, and
/// optionally the CA whose client certificates alone are let in.
#[derive(Debug, Clone)]
pub struct TlsConfig(RustlsConfig);

impl TlsConfig {
    /// Reads PEM files. With `client_ca`, a client without a certificate
    /// signed by it is refused during the handshake (mutual TLS).
    pub fn from_pem_files(
        certificate: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> io::Result<Self> {
        let chain = certificates("TLS certificate", certificate)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            invalid(format!(
                "reading the TLS key {}: {e} (a PEM private key is expected)",
                key.display()
            ))
        })?;
        // The process's provider when one was installed, else rustls' default.
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS versions: {e}")))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in certificates("client CA", path)? {
                    roots
                        .add(certificate)
                        .map_err(|e| invalid(format!("the client CA {}: {e}", path.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| invalid(format!("the client CA {}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            invalid(format!(
                "the TLS certificate {} with its key: {e}",
                certificate.display()
            ))
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig(RustlsConfig::from_config(Arc::new(config))))
    }
}

fn certificates(what: &str, path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let read = |e: rustls::pki_types::pem::Error| {
        invalid(format!("reading the {what} {}: {e}", path.display()))
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certificates.is_empty() {
        return Err(invalid(format!(
            "the {what} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`
/// resolves; then stops accepting and gives requests in flight ten seconds.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.graceful_shutdown(Some(DRAIN));
    });
    let service = app.into_make_service();
    match tls {
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(service)
                .await
        }
        Some(TlsConfig(config)) => {
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(service)
                .await
        }
    }
}
