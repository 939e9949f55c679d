//! TLS on the ingest service, with and without client certificates: a client
//! that trusts the server's CA publishes; with `--tls-client-ca`, a client
//! without a certificate from that CA is refused in the handshake; a
//! plaintext client gets nothing. The `protobus ingest` flags are checked too.

use crate::common;

use std::time::Duration;

use crate::common::pki::Pki;
use protobus::contract::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::api::ingest_client::IngestClient;
use protobus_ingest::api::{self, result::Outcome};
use protobus_ingest::{IngestService, IngestSettings};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

async fn start(pki: &Pki, mutual: bool) -> std::net::SocketAddr {
    let kafka = common::kafka().await;
    let prefix = format!("{}.", common::unique_name("tls"));
    kafka.create_topic(&format!("{prefix}shop.orders"), 1).await;
    let schemas = kafka.schema_registry().await;
    let producer = kafka.event_producer(schemas, &prefix, &[]);
    let service = IngestService::new(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        producer,
        IngestSettings::default(),
    )
    .unwrap();
    let client_ca = pki.path("ca.pem");
    let tls = protobus_ingest::tls(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        mutual.then_some(client_ca.as_path()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(protobus_ingest::serve_tls(
        listener,
        service,
        Some(tls),
        std::future::pending(),
    ));
    address
}

/// Publishes one event; the error text when the call or the connection fails.
async fn publish(channel: Result<Channel, tonic::transport::Error>) -> Result<(), String> {
    let channel = channel.map_err(|e| format!("connect: {e:?}"))?;
    let response = IngestClient::new(channel)
        .publish(api::PublishRequest {
            events: vec![common::ingest_order("over-tls")],
            request_id: 1,
        })
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    match &response.results[0].outcome {
        Some(Outcome::Ack(_)) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

async fn connect(
    address: std::net::SocketAddr,
    pki: &Pki,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("127.0.0.1");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trusts_the_ca_publishes_over_tls() {
    let pki = Pki::new();
    let address = start(&pki, false).await;
    publish(connect(address, &pki, None).await)
        .await
        .expect("published over TLS");

    // Plain HTTP/2 to a TLS port gets no answer it can use.
    let plain = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    assert!(
        publish(plain).await.is_err(),
        "a plaintext client got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let pki = Pki::new();
    let address = start(&pki, true).await;
    publish(connect(address, &pki, Some(&pki.client)).await)
        .await
        .expect("a client certificate from the CA is accepted");
    assert!(
        publish(connect(address, &pki, None).await).await.is_err(),
        "no client certificate got in"
    );
    assert!(
        publish(connect(address, &pki, Some(&pki.stranger)).await)
            .await
            .is_err(),
        "a certificate from another CA got in"
    );
}

#[test]
fn the_binary_wants_a_key_with_a_certificate() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
        .args(["ingest", "--tls-cert", "server.pem"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-key"));
}
