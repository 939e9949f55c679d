//! Events shared by the ingest crate's tests.

use protobus_fixtures::golden::acme::billing::{InvoiceIssued, Party};

/// An invoice whose key (`customer.id`) is `cust-9`.
pub(crate) fn invoice_issued() -> InvoiceIssued {
    InvoiceIssued {
        invoice_id: "inv-1".into(),
        customer: Some(Party {
            id: "cust-9".into(),
            name: "Acme".into(),
        }),
        issued_at: None,
    }
}
