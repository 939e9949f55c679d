//! What a producer needs for each event type it sends: the schema id it
//! frames with and its instruments, which name the topic it writes to.
//! Looked up on every send, so both are kept in one table keyed by the
//! address of the type's `EventInfo` (an element of its contract's
//! `static`): one read lock and an integer hash, rather than a lock and a
//! hash of the name for each.

use std::sync::{Arc, RwLock};

use crate::event::EventInfo;
use crate::instruments::Produced;

/// An event type as one producer sends it.
pub(crate) struct SendType {
    pub(crate) schema_id: u32,
    pub(crate) instruments: Produced,
}

/// A producer's types, made on each one's first send; shared by its clones.
/// A producer given another registry or topic prefix starts a new table.
#[derive(Clone, Default)]
pub(crate) struct SendTypes {
    by_info: Arc<RwLock<foldhash::HashMap<usize, Arc<SendType>>>>,
}

fn key(event: &'static EventInfo) -> usize {
    std::ptr::from_ref(event).addr()
}

impl SendTypes {
    pub(crate) fn get(&self, event: &'static EventInfo) -> Option<Arc<SendType>> {
        let by_info = self.by_info.read().unwrap_or_else(|e| e.into_inner());
        by_info.get(&key(event)).cloned()
    }

    /// Adds `event`, framed with `schema_id` and written to its topic behind
    /// `prefix`; a type another send added meanwhile is kept.
    pub(crate) fn add(
        &self,
        event: &'static EventInfo,
        schema_id: u32,
        prefix: &str,
    ) -> Arc<SendType> {
        let topic: Arc<str> = [prefix, event.topic].concat().into();
        let made = Arc::new(SendType {
            schema_id,
            instruments: Produced::new(topic, event.full_name),
        });
        let mut by_info = self.by_info.write().unwrap_or_else(|e| e.into_inner());
        by_info.entry(key(event)).or_insert(made).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SubjectNameStrategy;

    const fn info(full_name: &'static str) -> EventInfo {
        EventInfo {
            full_name,
            topic: "shop.orders",
            file: "shop/orders.proto",
            message_indexes: &[0],
            subject_strategy: SubjectNameStrategy::TopicRecordName,
            key_field: "order_id",
            compatibility: "BACKWARD",
        }
    }

    static PLACED: EventInfo = info("shop.orders.v1.OrderPlaced");
    static PAID: EventInfo = info("shop.orders.v1.OrderPaid");

    #[test]
    fn each_type_keeps_what_its_first_send_found() {
        let types = SendTypes::default();
        assert!(types.get(&PLACED).is_none());
        let placed = types.add(&PLACED, 7, "staging.");
        assert_eq!(&*placed.instruments.topic, "staging.shop.orders");
        assert_eq!(placed.instruments.event_type, "shop.orders.v1.OrderPlaced");
        assert!(types.get(&PAID).is_none(), "another type of the same topic");
        types.add(&PAID, 8, "staging.");
        // A send that raced the first one keeps the type as first added.
        assert_eq!(types.add(&PLACED, 9, "staging.").schema_id, 7);
        assert_eq!(types.get(&PLACED).unwrap().schema_id, 7);
        assert_eq!(types.get(&PAID).unwrap().schema_id, 8);
        // Clones share the table.
        assert_eq!(types.clone().get(&PAID).unwrap().schema_id, 8);
    }
}
