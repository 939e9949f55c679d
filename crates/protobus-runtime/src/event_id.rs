//! The event id a producer gives each event: a UUID v7 made on the sending
//! thread, written out as text only when needed, or the one the caller gave.

use std::time::Duration;

use uuid::timestamp::context::ContextV7;
use uuid::{Builder, ClockSequence as _, Uuid};

thread_local! {
    /// Keeps the event ids made on this thread in order within a
    /// millisecond, without the lock `Uuid::now_v7` takes on every call.
    static CONTEXT: ContextV7 = const { ContextV7::new() };
}

/// An event's id: made here (so none is allocated while the event is in
/// flight) or given.
#[derive(Debug)]
pub(crate) enum EventId {
    New(Uuid),
    Given(String),
}

impl EventId {
    /// A new id made at `now` (since the Unix epoch).
    pub(crate) fn new(now: Duration) -> Self {
        EventId::New(new_v7(now))
    }

    pub(crate) fn as_str<'a>(&'a self, buf: &'a mut [u8; uuid::fmt::Urn::LENGTH]) -> &'a str {
        match self {
            EventId::New(id) => id.hyphenated().encode_lower(buf),
            EventId::Given(id) => id,
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            EventId::New(_) => self.as_str(&mut Uuid::encode_buffer()).to_owned(),
            EventId::Given(id) => id,
        }
    }
}

/// A UUID v7 at `now`, laid out as `Uuid::new_v7` lays one out with a
/// `ContextV7`: the context's counter (random at each new millisecond,
/// counting up within one) keeps ids in order, and 32 random bits follow.
/// Those come from a fast per-thread generator rather than the
/// `rand::random::<u128>()` of `new_v7`, which made the id a twentieth of a
/// typed send's instructions; the counter's seed still comes from `rand`.
fn new_v7(now: Duration) -> Uuid {
    let (counter, secs, nanos) = CONTEXT
        .with(|context| context.generate_timestamp_sequence(now.as_secs(), now.subsec_nanos()));
    laid_out(
        secs * 1000 + u64::from(nanos) / 1_000_000,
        counter,
        fastrand::u32(..),
    )
}

/// The 48-bit millisecond, the 42-bit counter (12 bits before the variant,
/// 30 after), then `random`.
fn laid_out(millis: u64, counter: u64, random: u32) -> Uuid {
    let counter = u128::from(counter);
    let high = (counter >> 30) << 112;
    let low = (counter & ((1 << 30) - 1)) << 80;
    let bytes = (high | low | u128::from(random) << 48).to_be_bytes();
    Builder::from_unix_timestamp_millis(millis, bytes[..10].try_into().expect("10 bytes"))
        .into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Unix millisecond `id` carries, as `uuid` reads it back.
    fn millis_of(id: &Uuid) -> u64 {
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        secs * 1000 + u64::from(nanos) / 1_000_000
    }

    #[test]
    fn event_ids_carry_the_records_millisecond_and_stay_in_order_within_it() {
        let now = Duration::from_millis(1_796_324_878_600) + Duration::from_micros(250);
        let ids: Vec<Uuid> = (0..1000).map(|_| new_v7(now)).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(millis_of(id), now.as_millis() as u64);
        }
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn a_new_ids_text_is_its_uuid_v7_hyphenated() {
        let now = Duration::from_millis(1_796_324_878_600);
        let text = EventId::new(now).into_string();
        let id = Uuid::parse_str(&text).unwrap();
        assert_eq!(text, id.hyphenated().to_string());
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(millis_of(&id), 1_796_324_878_600);
    }

    #[test]
    fn the_counter_lands_where_new_v7_puts_it_and_the_random_bits_after() {
        // The layout takes the context's counter to be 42 bits wide.
        assert_eq!(ContextV7::new().usable_bits(), 42);
        let (secs, nanos) = (1_796_324_878, 601_000_000);
        for counter in [
            0,
            1,
            (1 << 30) - 1,
            1 << 30,
            (1 << 42) - 1,
            0x2A5A_55A5_A5A5,
        ] {
            let at = uuid::Timestamp::from_unix_time(secs, nanos, u128::from(counter), 42);
            let theirs = Uuid::new_v7(at);
            let ours = laid_out(secs * 1000 + 601, counter, 0xDEAD_BEEF);
            // Theirs ends in random bits of its own.
            assert_eq!(
                ours.as_bytes()[..12],
                theirs.as_bytes()[..12],
                "{counter:#x}"
            );
            assert_eq!(ours.as_bytes()[12..], 0xDEAD_BEEF_u32.to_be_bytes());
        }
    }
}
