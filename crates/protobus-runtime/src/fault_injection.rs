//! Faults for tests of what follows them (feature `fault-injection`): a
//! producer put into the fatal state an idempotence failure leaves it in, on
//! whatever cluster it talks to.
//!
//! A real broker cannot be made to answer with a sequence gap on demand
//! (librdkafka: "there is no practical way to trigger real fatal errors in
//! the idempotent producer"), so this uses librdkafka's own hook for such
//! tests, `rd_kafka_test_fatal_error`: from then on that producer refuses
//! every record with `_FATAL`, as after a real one.

use std::ffi::CString;

use rdkafka::bindings::{rd_kafka_resp_err_t, rd_kafka_test_fatal_error};
use rdkafka::producer::Producer as _;

use crate::kafka_producer::KafkaProducer;

/// Injects faults into one producer of a running client (an
/// [`EventProducer`](crate::EventProducer) or a consumer's dead-letter writer).
#[derive(Clone)]
pub struct FaultInjector {
    producer: KafkaProducer,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("replacements", &self.replacements())
            .finish()
    }
}

impl FaultInjector {
    pub(crate) fn new(producer: &KafkaProducer) -> Self {
        FaultInjector {
            producer: producer.clone(),
        }
    }

    /// Puts the current librdkafka producer into a fatal state, as an
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` answer would. Returns false when it was
    /// in one already.
    pub fn fail_fatally(&self, reason: &str) -> bool {
        let reason = CString::new(reason).unwrap_or_default();
        let client = self.producer.current_client();
        #[allow(unsafe_code)]
        // SAFETY: the handle is alive for the call (`client` holds the
        // producer), and `reason` is a valid C string librdkafka copies.
        let err = unsafe {
            rd_kafka_test_fatal_error(
                client.client().native_ptr(),
                rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            )
        };
        err == rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// How many times the producer has been replaced after a fatal error.
    pub fn replacements(&self) -> u64 {
        self.producer.generation()
    }
}
