//! The ingest service reads keys from the payload's wire bytes; the generated
//! `Event::key` reads them from Rust types. Both must give the same bytes,
//! or events sent through gRPC and through the typed producer would land on
//! different partitions.

mod common;

use protobus_fixtures::golden::acme::billing::{InvoiceIssued, InvoicePaid, invoice_paid};
use protobus_fixtures::golden::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::key_of;
use protobus_runtime::Event;

fn both<E: Event>(event: &E) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let dynamic = key_of(
        &CONTRACT,
        FILE_DESCRIPTOR_SET,
        E::FULL_NAME,
        &event.encode_to_vec(),
    )
    .unwrap();
    (event.key().map(|k| k.into_owned()), dynamic)
}

#[test]
fn dynamic_and_generated_keys_agree() {
    let issued = common::invoice_issued();
    let (generated, dynamic) = both(&issued);
    assert_eq!(generated.as_deref(), Some(&b"cust-9"[..]));
    assert_eq!(generated, dynamic);

    let no_customer = InvoiceIssued {
        customer: None,
        ..issued
    };
    assert_eq!(
        both(&no_customer),
        (None, None),
        "an unset message on the path: no key"
    );

    let paid = InvoicePaid {
        invoice_number: 18_446_744_073_709_551_615,
    };
    let (generated, dynamic) = both(&paid);
    assert_eq!(generated.as_deref(), Some(&b"18446744073709551615"[..]));
    assert_eq!(generated, dynamic);

    let refunded = invoice_paid::Refunded {
        refund_id: vec![0, 159, 146, 150],
        amount: Some(3),
    };
    let (generated, dynamic) = both(&refunded);
    assert_eq!(generated.as_deref(), Some(&[0, 159, 146, 150][..]));
    assert_eq!(generated, dynamic);
    let empty = invoice_paid::Refunded {
        refund_id: vec![],
        amount: None,
    };
    assert_eq!(both(&empty), (None, None), "empty bytes: no key");
}
