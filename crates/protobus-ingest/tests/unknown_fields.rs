//! A binary payload with a field its type does not define is refused, and
//! the reason says which field number and where, so the sender can tell a
//! payload of another type or a newer schema from a typo.

mod common;

use prost::Message as _;
use protobus_fixtures::golden::acme::billing::InvoiceIssued;
use protobus_fixtures::golden::{CONTRACT, FILE_DESCRIPTOR_SET};
use protobus_ingest::types::EventTypes;
use protobus_runtime::Event;

/// Field 99 as a varint with value 1.
const UNKNOWN_99: [u8; 3] = [0x98, 0x06, 0x01];

fn rejection(payload: &[u8]) -> Option<String> {
    let types = EventTypes::new(&CONTRACT, FILE_DESCRIPTOR_SET).unwrap();
    let event_type = types.get(InvoiceIssued::FULL_NAME).unwrap();
    event_type.check_binary(payload).err().map(|r| r.reason)
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let issued = common::invoice_issued();
    assert_eq!(rejection(&issued.encode_to_vec()), None);

    let mut top = issued.encode_to_vec();
    top.extend_from_slice(&UNKNOWN_99);
    assert_eq!(
        rejection(&top).as_deref(),
        Some(
            "payload has field number 99 at `(top level)`, which acme.billing.InvoiceIssued does not define"
        )
    );

    // The same field inside `customer` (field 2, length-delimited).
    let mut party = issued.customer.as_ref().unwrap().encode_to_vec();
    party.extend_from_slice(&UNKNOWN_99);
    let mut nested = InvoiceIssued {
        customer: None,
        ..issued.clone()
    }
    .encode_to_vec();
    nested.push(2 << 3 | 2);
    nested.push(u8::try_from(party.len()).unwrap());
    nested.extend_from_slice(&party);
    assert_eq!(
        rejection(&nested).as_deref(),
        Some(
            "payload has field number 99 at `customer`, which acme.billing.InvoiceIssued does not define"
        )
    );
}
