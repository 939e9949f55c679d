//! Generated dispatchers meet arbitrary payloads (a property test, bounded
//! case count): they never panic; bytes that do not decode are reported as
//! undecodable (poison), never handed to a handler half-read.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use protobus_fixtures::golden::acme::billing::{InvoiceIssued, InvoicePaid};
use protobus_fixtures::golden::{AcmeInvoicesDispatcher, AcmeInvoicesHandler};
use protobus_runtime::{Dispatch, Dispatched, EventContext, HandlerError, RawEvent};

#[derive(Default)]
struct Counting(AtomicUsize);

impl AcmeInvoicesHandler for Counting {
    async fn invoice_issued(
        &self,
        _: InvoiceIssued,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn invoice_paid(&self, _: InvoicePaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn context() -> EventContext<'static> {
    EventContext::new("acme.invoices", 0, 0, 1, "acme.billing.InvoiceIssued")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn random_payloads_never_panic_a_dispatcher(
        payload in proptest::collection::vec(any::<u8>(), 0..128),
        name in prop_oneof![
            Just("acme.billing.InvoiceIssued"),
            Just("acme.billing.InvoicePaid"),
            Just("acme.billing.Unknown"),
        ],
    ) {
        let dispatcher = AcmeInvoicesDispatcher(Counting::default());
        let context = context();
        let event = RawEvent { topic: "acme.invoices", full_name: name, payload: &payload, context: &context };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        match runtime.block_on(dispatcher.dispatch(event)) {
            Ok(Dispatched::Handled) => prop_assert_eq!(dispatcher.0.0.load(Ordering::Relaxed), 1),
            Ok(Dispatched::Unknown) => prop_assert_eq!(name, "acme.billing.Unknown"),
            Err(err) => {
                prop_assert!(err.is_undecodable(), "{}", err);
                prop_assert_eq!(dispatcher.0.0.load(Ordering::Relaxed), 0);
            }
        }
    }
}
