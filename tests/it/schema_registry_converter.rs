//! The Rust client Protobus builds on, `schema_registry_converter`, against the
//! project's registry: it registers a schema and its reference, frames a
//! payload in Confluent's wire format and decodes it back.

use crate::common;

use protobus_registry::Registry;
use schema_registry_converter::async_impl::proto_raw::{ProtoRawDecoder, ProtoRawEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedReference, SuppliedSchema,
};

const MONEY: &str = "syntax = \"proto3\";\npackage shop.common;\nmessage Money { string currency = 1; int64 units = 2; }\n";
const ORDERS: &str = "syntax = \"proto3\";\npackage shop;\nimport \"shop/common/money.proto\";\n\
message OrderPlaced { string id = 1; shop.common.Money total = 2; }\n\
message OrderShipped { string id = 1; }\n";

#[tokio::test]
async fn converter_registers_references_and_round_trips_the_wire_format() {
    let url = common::serve_registry(Registry::in_memory()).await;
    let settings = SrSettings::new(url.clone());
    let schema = SuppliedSchema::new(
        Some("shop.OrderShipped".into()),
        SchemaType::Protobuf,
        ORDERS.into(),
    )
    .with_references(vec![SuppliedReference::new(
        "shop/common/money.proto".into(),
        "shop.common.Money".into(),
        MONEY.into(),
    )]);
    let encoder = ProtoRawEncoder::new(settings.clone());
    // OrderShipped { id: "o-1" }: field 1, length 3.
    let payload = [0x0a, 0x03, b'o', b'-', b'1'];
    let framed = encoder
        .encode(
            &payload,
            "shop.OrderShipped",
            SubjectNameStrategy::TopicNameStrategyWithSchema("shop.orders".into(), false, schema),
        )
        .await
        .expect("encode");

    // Both files are registered, the reference first.
    let subjects: Vec<String> = reqwest::get(format!("{url}/subjects"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subjects, ["shop.common.Money", "shop.orders-value"]);

    // Magic byte, schema id 2 (the reference took 1), message index [1] → 02 02, payload.
    let mut expected = vec![0, 0, 0, 0, 2, 0x02, 0x02];
    expected.extend_from_slice(&payload);
    assert_eq!(framed, expected);

    let decoded = ProtoRawDecoder::new(SrSettings::new(url))
        .decode(Some(&framed))
        .await
        .expect("decode")
        .expect("a value");
    assert_eq!(decoded.bytes, payload);
    assert_eq!(decoded.full_name.as_str(), "shop.OrderShipped");
    assert_eq!(decoded.schema.id, 2);
    assert_eq!(decoded.schema.references.len(), 1);
}
