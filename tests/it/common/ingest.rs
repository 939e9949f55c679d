//! The ingest service for tests: served on a free port, and an event for it.

/// An `OrderPlaced` with `order_id` as the ingest API takes it (binary payload).
pub fn ingest_order(order_id: &str) -> protobus_ingest::api::Event {
    use prost::Message as _;
    use protobus_runtime::Event as _;
    let order = protobus::contract::shop::orders::v1::OrderPlaced {
        order_id: order_id.into(),
        ..Default::default()
    };
    protobus_ingest::api::Event {
        r#type: protobus::contract::shop::orders::v1::OrderPlaced::FULL_NAME.into(),
        payload: Some(protobus_ingest::api::event::Payload::Binary(
            order.encode_to_vec().into(),
        )),
        ..Default::default()
    }
}

/// Serves `service` on a free 127.0.0.1 port until the test ends; returns its address.
pub async fn serve_ingest(service: protobus_ingest::IngestService) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(protobus_ingest::serve(
        listener,
        service,
        std::future::pending(),
    ));
    address
}
