//! Idempotency keys: a client that retries a publish with the same key
//! within the window gets the first result back instead of a second write.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::api::Ack;

/// What a publish with an idempotency key should do.
pub(crate) enum Claim {
    /// No earlier publish: go ahead, then settle the ticket.
    Fresh(Ticket),
    /// An earlier publish succeeded: this is its result.
    Duplicate(Ack),
    /// An earlier publish is still in flight: wait for its outcome.
    Wait(watch::Receiver<Option<Option<Ack>>>),
}

enum Slot {
    InFlight(watch::Sender<Option<Option<Ack>>>),
    Done(Ack),
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<String, Slot>,
    /// Completed keys by completion time, for expiry and the size bound.
    completed: VecDeque<(Instant, String)>,
}

pub(crate) struct Dedupe {
    window: Duration,
    capacity: usize,
    slots: Mutex<Slots>,
}

impl Dedupe {
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Dedupe {
            window,
            capacity: capacity.max(1),
            slots: Mutex::default(),
        }
    }

    pub(crate) fn claim(self: &Arc<Self>, key: &str) -> Claim {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        self.expire(&mut slots);
        match slots.by_key.get(key) {
            Some(Slot::Done(ack)) => Claim::Duplicate(ack.clone()),
            Some(Slot::InFlight(sender)) => Claim::Wait(sender.subscribe()),
            None => {
                let (sender, _) = watch::channel(None);
                slots.by_key.insert(key.to_owned(), Slot::InFlight(sender));
                Claim::Fresh(Ticket {
                    dedupe: self.clone(),
                    key: key.to_owned(),
                    settled: false,
                })
            }
        }
    }

    fn settle(&self, key: &str, ack: Option<Ack>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Slot::InFlight(sender)) = slots.by_key.remove(key) {
            let _ = sender.send(Some(ack.clone()));
        }
        // Only successes are remembered: a failed publish may be retried.
        if let Some(ack) = ack {
            slots.by_key.insert(key.to_owned(), Slot::Done(ack));
            slots.completed.push_back((Instant::now(), key.to_owned()));
        }
        self.expire(&mut slots);
    }

    fn expire(&self, slots: &mut Slots) {
        let now = Instant::now();
        while let Some((at, key)) = slots.completed.front() {
            let too_old = now.duration_since(*at) > self.window;
            if !too_old && slots.completed.len() <= self.capacity {
                break;
            }
            if matches!(slots.by_key.get(key), Some(Slot::Done(_))) {
                slots.by_key.remove(key);
            }
            slots.completed.pop_front();
        }
    }
}

/// The right (and duty) to publish under a key; settles as failed if dropped.
pub(crate) struct Ticket {
    dedupe: Arc<Dedupe>,
    key: String,
    settled: bool,
}

impl Ticket {
    pub(crate) fn settle(mut self, ack: Option<Ack>) {
        self.settled = true;
        self.dedupe.settle(&self.key, ack);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.dedupe.settle(&self.key, None);
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

    #[tokio::test]
    async fn a_key_is_published_once_and_waiters_get_its_result() {
        let dedupe = Arc::new(Dedupe::new(Duration::from_secs(60), 100));
        let Claim::Fresh(ticket) = dedupe.claim("k") else {
            panic!("fresh")
        };
        let Claim::Wait(mut waiting) = dedupe.claim("k") else {
            panic!("wait")
        };
        ticket.settle(Some(ack(7)));
        let outcome = waiting.wait_for(Option::is_some).await.unwrap().clone();
        assert_eq!(outcome, Some(Some(ack(7))));
        assert!(matches!(dedupe.claim("k"), Claim::Duplicate(a) if a.offset == 7));
    }

    #[test]
    fn failures_and_dropped_tickets_free_the_key() {
        let dedupe = Arc::new(Dedupe::new(Duration::from_secs(60), 100));
        let Claim::Fresh(ticket) = dedupe.claim("k") else {
            panic!()
        };
        ticket.settle(None);
        let Claim::Fresh(ticket) = dedupe.claim("k") else {
            panic!("retry allowed")
        };
        drop(ticket);
        assert!(matches!(dedupe.claim("k"), Claim::Fresh(_)));
    }

    #[test]
    fn old_keys_expire_and_the_size_is_bounded() {
        let dedupe = Arc::new(Dedupe::new(Duration::from_millis(0), 100));
        let Claim::Fresh(ticket) = dedupe.claim("old") else {
            panic!()
        };
        ticket.settle(Some(ack(1)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(dedupe.claim("old"), Claim::Fresh(_)), "expired");

        let dedupe = Arc::new(Dedupe::new(Duration::from_secs(60), 2));
        for key in ["a", "b", "c"] {
            let Claim::Fresh(ticket) = dedupe.claim(key) else {
                panic!()
            };
            ticket.settle(Some(ack(1)));
        }
        assert!(matches!(dedupe.claim("a"), Claim::Fresh(_)), "evicted");
        assert!(matches!(dedupe.claim("c"), Claim::Duplicate(_)));
    }
}
