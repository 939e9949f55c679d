//! Idempotency keys: a client that retries a publish with the same key
//! within the window gets the first result back instead of a second write.
//!
//! Keys are scoped by caller (the token's name), so one caller's keys never
//! answer another's, and bound to a digest of the event: the same key with
//! another event is a conflict, never a silent duplicate. What is remembered
//! is bounded in keys and in bytes; the oldest results go first.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::api::Ack;

/// Where a publish under a key stands, as those waiting on it see it.
#[derive(Debug, Clone)]
pub(crate) enum KeyState {
    /// Being written.
    InFlight,
    /// Written: its acknowledgement.
    Acked(Ack),
    /// Not written (it may be retried under the same key).
    Failed,
}

/// What a publish with an idempotency key should do.
pub(crate) enum Claim {
    /// No earlier publish: go ahead, then settle the ticket.
    Fresh(Ticket),
    /// An earlier publish of the same event succeeded: this is its result.
    Duplicate(Ack),
    /// An earlier publish of the same event is in flight: wait for its outcome.
    Wait(watch::Receiver<KeyState>),
    /// The key was used for another event.
    Conflict,
}

enum Slot {
    InFlight {
        digest: u64,
        sender: watch::Sender<KeyState>,
    },
    Done {
        digest: u64,
        ack: Ack,
    },
}

/// A key within its caller's scope.
type ScopedKey = (Arc<str>, String);

#[derive(Default)]
struct Slots {
    by_key: HashMap<ScopedKey, Slot>,
    /// Completed keys by completion time, for expiry and the size bounds.
    completed: VecDeque<(Instant, ScopedKey, usize)>,
    /// What the completed results take.
    bytes: usize,
}

/// What a remembered result takes besides its strings: map and queue
/// entries, the ack's fields.
const RESULT_OVERHEAD_BYTES: usize = 160;

pub(crate) struct Dedupe {
    window: Duration,
    capacity: usize,
    max_bytes: usize,
    hasher: RandomState,
    slots: Mutex<Slots>,
}

impl Dedupe {
    pub(crate) fn new(window: Duration, capacity: usize, max_bytes: usize) -> Self {
        Dedupe {
            window,
            capacity: capacity.max(1),
            max_bytes,
            hasher: RandomState::new(),
            slots: Mutex::default(),
        }
    }

    /// The digest an event is bound to its key by: its type, payload and key.
    pub(crate) fn digest(&self, event_type: &str, payload: &[u8], key: Option<&[u8]>) -> u64 {
        self.hasher.hash_one((event_type, payload, key))
    }

    pub(crate) fn claim(self: &Arc<Self>, scope: &Arc<str>, key: &str, digest: u64) -> Claim {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        self.expire(&mut slots);
        let scoped = (scope.clone(), key.to_owned());
        match slots.by_key.get(&scoped) {
            Some(Slot::Done { digest: d, .. } | Slot::InFlight { digest: d, .. })
                if *d != digest =>
            {
                Claim::Conflict
            }
            Some(Slot::Done { ack, .. }) => Claim::Duplicate(ack.clone()),
            Some(Slot::InFlight { sender, .. }) => Claim::Wait(sender.subscribe()),
            None => {
                let (sender, _) = watch::channel(KeyState::InFlight);
                slots
                    .by_key
                    .insert(scoped.clone(), Slot::InFlight { digest, sender });
                Claim::Fresh(Ticket {
                    dedupe: self.clone(),
                    key: scoped,
                    digest,
                    settled: false,
                })
            }
        }
    }

    fn settle(&self, key: &ScopedKey, digest: u64, ack: Option<Ack>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Slot::InFlight { sender, .. }) = slots.by_key.remove(key) {
            let _ = sender.send(ack.clone().map_or(KeyState::Failed, KeyState::Acked));
        }
        // Only successes are remembered: a failed publish may be retried.
        if let Some(ack) = ack {
            let bytes = key.0.len()
                + key.1.len()
                + ack.topic.len()
                + ack.event_id.len()
                + RESULT_OVERHEAD_BYTES;
            slots.bytes += bytes;
            slots.by_key.insert(key.clone(), Slot::Done { digest, ack });
            slots
                .completed
                .push_back((Instant::now(), key.clone(), bytes));
        }
        self.expire(&mut slots);
    }

    fn expire(&self, slots: &mut Slots) {
        let now = Instant::now();
        while let Some((at, key, bytes)) = slots.completed.front() {
            let too_old = now.duration_since(*at) > self.window;
            let too_many = slots.completed.len() > self.capacity || slots.bytes > self.max_bytes;
            if !too_old && !too_many {
                break;
            }
            if matches!(slots.by_key.get(key), Some(Slot::Done { .. })) {
                slots.by_key.remove(key);
            }
            slots.bytes -= *bytes;
            slots.completed.pop_front();
        }
    }
}

/// The right (and duty) to publish under a key; settles as failed if dropped.
pub(crate) struct Ticket {
    dedupe: Arc<Dedupe>,
    key: ScopedKey,
    digest: u64,
    settled: bool,
}

impl Ticket {
    pub(crate) fn settle(mut self, ack: Option<Ack>) {
        self.settled = true;
        self.dedupe.settle(&self.key, self.digest, ack);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.dedupe.settle(&self.key, self.digest, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(offset: i64) -> Ack {
        Ack {
            topic: "t".into(),
            partition: 0,
            offset,
            event_id: "e".into(),
            duplicate: false,
        }
    }

    fn dedupe(window: Duration, capacity: usize, max_bytes: usize) -> Arc<Dedupe> {
        Arc::new(Dedupe::new(window, capacity, max_bytes))
    }

    fn scope(name: &str) -> Arc<str> {
        name.into()
    }

    #[tokio::test]
    async fn a_key_is_published_once_and_waiters_get_its_result() {
        let dedupe = dedupe(Duration::from_secs(60), 100, 1 << 20);
        let me = scope("a");
        let Claim::Fresh(ticket) = dedupe.claim(&me, "k", 1) else {
            panic!("fresh")
        };
        let Claim::Wait(mut waiting) = dedupe.claim(&me, "k", 1) else {
            panic!("wait")
        };
        ticket.settle(Some(ack(7)));
        let settled = waiting
            .wait_for(|state| !matches!(state, KeyState::InFlight))
            .await
            .unwrap()
            .clone();
        assert!(matches!(settled, KeyState::Acked(a) if a == ack(7)));
        assert!(matches!(dedupe.claim(&me, "k", 1), Claim::Duplicate(a) if a.offset == 7));
    }

    #[test]
    fn keys_are_scoped_by_caller_and_bound_to_their_event() {
        let dedupe = dedupe(Duration::from_secs(60), 100, 1 << 20);
        let Claim::Fresh(ticket) = dedupe.claim(&scope("customers"), "k", 1) else {
            panic!()
        };
        assert!(
            matches!(dedupe.claim(&scope("customers"), "k", 2), Claim::Conflict),
            "in flight"
        );
        ticket.settle(Some(ack(3)));
        assert!(matches!(
            dedupe.claim(&scope("orders"), "k", 1),
            Claim::Fresh(_)
        ));
        assert!(matches!(
            dedupe.claim(&scope("customers"), "k", 2),
            Claim::Conflict
        ));
        assert!(matches!(
            dedupe.claim(&scope("customers"), "k", 1),
            Claim::Duplicate(_)
        ));
        assert_ne!(
            dedupe.digest("a.B", b"x", None),
            dedupe.digest("a.B", b"y", None)
        );
        assert_ne!(
            dedupe.digest("a.B", b"x", None),
            dedupe.digest("a.B", b"x", Some(b"k"))
        );
    }

    #[test]
    fn failures_and_dropped_tickets_free_the_key() {
        let dedupe = dedupe(Duration::from_secs(60), 100, 1 << 20);
        let me = scope("");
        let Claim::Fresh(ticket) = dedupe.claim(&me, "k", 1) else {
            panic!()
        };
        ticket.settle(None);
        let Claim::Fresh(ticket) = dedupe.claim(&me, "k", 1) else {
            panic!("retry allowed")
        };
        drop(ticket);
        assert!(matches!(dedupe.claim(&me, "k", 1), Claim::Fresh(_)));
    }

    #[test]
    fn old_keys_expire_and_keys_and_bytes_are_bounded() {
        let me = scope("");
        let dedupe = self::dedupe(Duration::from_millis(0), 100, 1 << 20);
        let Claim::Fresh(ticket) = dedupe.claim(&me, "old", 1) else {
            panic!()
        };
        ticket.settle(Some(ack(1)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            matches!(dedupe.claim(&me, "old", 1), Claim::Fresh(_)),
            "expired"
        );

        let settle_all = |dedupe: &Arc<Dedupe>, keys: &[String]| {
            for key in keys {
                let Claim::Fresh(ticket) = dedupe.claim(&me, key, 1) else {
                    panic!()
                };
                ticket.settle(Some(ack(1)));
            }
        };
        let keys: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let by_count = self::dedupe(Duration::from_secs(60), 2, 1 << 20);
        settle_all(&by_count, &keys);
        assert!(
            matches!(by_count.claim(&me, "a", 1), Claim::Fresh(_)),
            "evicted"
        );
        assert!(matches!(by_count.claim(&me, "c", 1), Claim::Duplicate(_)));

        let long: Vec<String> = (0..10)
            .map(|i| format!("{i}{}", "x".repeat(1000)))
            .collect();
        let by_bytes = self::dedupe(Duration::from_secs(60), 100, 4000);
        settle_all(&by_bytes, &long);
        assert!(by_bytes.slots.lock().unwrap().bytes <= 4000);
        assert!(
            matches!(by_bytes.claim(&me, &long[0], 1), Claim::Fresh(_)),
            "evicted"
        );
        assert!(matches!(
            by_bytes.claim(&me, &long[9], 1),
            Claim::Duplicate(_)
        ));
    }
}
