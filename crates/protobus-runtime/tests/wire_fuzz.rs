//! The wire-format decoder meets arbitrary bytes (a property test, bounded
//! case count): it never panics, and what it accepts round-trips.

use proptest::prelude::*;
use protobus_runtime::wire;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(header) = wire::read_header(&bytes) {
            prop_assert!(header.payload_offset <= bytes.len());
            prop_assert!(!header.indexes.is_empty());
            prop_assert!(header.indexes.iter().all(|&i| i >= 0));
        }
    }

    #[test]
    fn headers_round_trip(
        schema_id in any::<u32>(),
        indexes in proptest::collection::vec(0..10_000i32, 1..6),
        payload in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut frame = Vec::new();
        wire::write_header(&mut frame, schema_id, &indexes);
        prop_assert_eq!(frame.len(), wire::header_len(&indexes));
        frame.extend_from_slice(&payload);
        let header = wire::read_header(&frame).unwrap();
        prop_assert_eq!(header.schema_id, schema_id);
        prop_assert_eq!(header.indexes.as_slice(), indexes.as_slice());
        prop_assert_eq!(&frame[header.payload_offset..], &payload[..]);
    }
}
