//! librdkafka's handles of the topics a producer writes to. A record sent
//! by handle skips what one sent by name costs: rdkafka's copy of the name
//! into a C string (an allocation and a free) and librdkafka's lookup of the
//! topic by name under its lock, about a tenth of a typed send's
//! instructions.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr::{self, NonNull};
use std::sync::RwLock;

use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;

/// One topic's handle, let go of when dropped.
struct Handle(NonNull<rd::rd_kafka_topic_t>);

// SAFETY: librdkafka's topic handles are thread-safe references.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: our reference, taken by `rd_kafka_topic_new`.
        unsafe { rd::rd_kafka_topic_destroy(self.0.as_ptr()) };
    }
}

/// A client's topic handles, by name, each made on its topic's first send
/// and kept while the client lives (a producer writes to its contracts'
/// topics and their dead-letter topics: a bounded set). Must be dropped
/// before the client is destroyed.
#[derive(Default)]
pub(crate) struct TopicHandles {
    by_name: RwLock<foldhash::HashMap<Box<str>, Handle>>,
}

impl TopicHandles {
    /// The handle of `topic` on `client`, valid while these handles live.
    ///
    /// # Safety
    /// `client` is the live librdkafka client these handles belong to.
    pub(crate) unsafe fn get(
        &self,
        client: *mut rd::rd_kafka_t,
        topic: &str,
    ) -> Result<*mut rd::rd_kafka_topic_t, KafkaError> {
        let by_name = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = by_name.get(topic) {
            return Ok(handle.0.as_ptr());
        }
        drop(by_name);
        let name = CString::new(topic)?;
        let mut by_name = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = by_name.get(topic) {
            return Ok(handle.0.as_ptr());
        }
        // SAFETY: a live client, by the caller's word, and a C string
        // librdkafka copies; no topic configuration: the client's default,
        // as for a record sent by name.
        let handle = unsafe { rd::rd_kafka_topic_new(client, name.as_ptr(), ptr::null_mut()) };
        let Some(handle) = NonNull::new(handle) else {
            // SAFETY: reads the calling thread's last librdkafka error.
            let code = unsafe { rd::rd_kafka_last_error() };
            return Err(KafkaError::MessageProduction(code.into()));
        };
        by_name.insert(topic.into(), Handle(handle));
        Ok(handle.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;
    use rdkafka::error::KafkaError;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, Producer as _};

    use super::*;

    #[test]
    fn each_topic_gets_one_handle_and_a_name_with_a_nul_is_refused() {
        let cluster = MockCluster::new(1).unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        let client = producer.client().native_ptr();
        let handles = TopicHandles::default();
        // SAFETY: the producer's live client, which outlives `handles`.
        let get = |topic| unsafe { handles.get(client, topic) };
        let orders = get("shop.orders").unwrap();
        assert_eq!(get("shop.orders").unwrap(), orders, "made once");
        let customers = get("shop.customers").unwrap();
        assert_ne!(customers, orders);
        // SAFETY: a live handle, whose name librdkafka keeps.
        let name = unsafe { std::ffi::CStr::from_ptr(rd::rd_kafka_topic_name(customers)) };
        assert_eq!(name.to_str(), Ok("shop.customers"));
        assert!(matches!(get("shop\0orders"), Err(KafkaError::Nul(_))));
        drop(handles);
    }
}
