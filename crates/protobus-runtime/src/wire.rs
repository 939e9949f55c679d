//! Confluent's wire format for Protobuf: magic byte 0, the schema id as 4
//! big-endian bytes, the message-index path as zig-zag varints (a lone `0`
//! for the first top-level message), then the Protobuf payload.
//!
//! ```
//! use protobus_runtime::wire;
//!
//! let mut frame = Vec::new();
//! wire::write_header(&mut frame, 7, &[1]);
//! frame.extend_from_slice(&[0x08, 0x65]);
//! assert_eq!(frame, [0, 0, 0, 0, 7, 0x02, 0x02, 0x08, 0x65]);
//!
//! let header = wire::read_header(&frame).unwrap();
//! assert_eq!((header.schema_id, header.indexes.as_slice()), (7, &[1][..]));
//! assert_eq!(&frame[header.payload_offset..], [0x08, 0x65]);
//! ```

use std::fmt;

/// The first byte of every framed record.
pub const MAGIC_BYTE: u8 = 0;

/// Longest message-index path accepted when reading (nesting depth).
const MAX_INDEXES: usize = 64;

/// Appends the frame header for `schema_id` and the message-index path.
#[inline]
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32, indexes: &[i32]) {
    let [a, b, c, d] = schema_id.to_be_bytes();
    if indexes == [0] {
        buf.extend_from_slice(&[MAGIC_BYTE, a, b, c, d, 0]);
        return;
    }
    buf.extend_from_slice(&[MAGIC_BYTE, a, b, c, d]);
    write_zigzag(buf, indexes.len() as i64);
    for &index in indexes {
        write_zigzag(buf, i64::from(index));
    }
}

/// Appends the frame of `message`: the header for `schema_id` and `indexes`,
/// then the message's encoding. The buffer grows as needed: reserve
/// [`frame_len`] first to allocate once, or reuse a buffer.
#[inline]
pub fn write_frame(
    buf: &mut Vec<u8>,
    schema_id: u32,
    indexes: &[i32],
    message: &impl prost::Message,
) {
    write_header(buf, schema_id, indexes);
    // A Vec grows, so the size pass `encode` makes to check room is not needed.
    message.encode_raw(buf);
}

/// Replaces `buf`'s contents with `message`'s frame, growing `buf` at most
/// once: how the producer frames each event into the buffer it reuses.
#[inline]
pub fn frame_into(
    buf: &mut Vec<u8>,
    schema_id: u32,
    indexes: &[i32],
    message: &impl prost::Message,
) {
    buf.clear();
    buf.reserve(frame_len(indexes, message));
    write_frame(buf, schema_id, indexes, message);
}

/// The size of `message`'s frame under `indexes`.
pub fn frame_len(indexes: &[i32], message: &impl prost::Message) -> usize {
    header_len(indexes) + message.encoded_len()
}

/// The size of the header [`write_header`] writes.
#[inline]
pub fn header_len(indexes: &[i32]) -> usize {
    if indexes == [0] {
        return 6;
    }
    5 + zigzag_len(indexes.len() as i64)
        + indexes
            .iter()
            .map(|&i| zigzag_len(i64::from(i)))
            .sum::<usize>()
}

/// A message-index path; paths up to four deep need no allocation.
pub type Indexes = smallvec::SmallVec<[i32; 4]>;

/// A decoded frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The registry id of the writer's schema.
    pub schema_id: u32,
    /// Position of the message in the writer's schema: top-level index, then nested.
    pub indexes: Indexes,
    /// Where the Protobuf payload starts in the frame.
    pub payload_offset: usize,
}

/// Why bytes are not a Confluent Protobuf frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer than the 6 bytes the smallest frame has.
    #[error("record of {0} bytes is too short for the Confluent wire format")]
    TooShort(usize),
    /// The first byte is not 0.
    #[error("unknown magic byte {0:#04x} (expected 0x00): not in the Confluent wire format")]
    MagicByte(u8),
    /// The message-index path is cut off or malformed.
    #[error("malformed message-index path: {0}")]
    Indexes(&'static str),
}

/// Reads the header of a framed record.
#[inline]
pub fn read_header(frame: &[u8]) -> Result<Header, WireError> {
    if frame.len() < 6 {
        return Err(WireError::TooShort(frame.len()));
    }
    if frame[0] != MAGIC_BYTE {
        return Err(WireError::MagicByte(frame[0]));
    }
    let schema_id = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
    if frame[5] == 0 {
        // The first top-level message, by far the most common frame.
        return Ok(Header {
            schema_id,
            indexes: smallvec::smallvec![0],
            payload_offset: 6,
        });
    }
    let mut at = 5;
    let count = read_zigzag(frame, &mut at)?;
    let indexes = if count == 0 {
        smallvec::smallvec![0]
    } else {
        if count < 0 || count as usize > MAX_INDEXES {
            return Err(WireError::Indexes("implausible path length"));
        }
        let mut indexes = Indexes::with_capacity(count as usize);
        for _ in 0..count {
            let index = read_zigzag(frame, &mut at)?;
            let index =
                i32::try_from(index).map_err(|_| WireError::Indexes("index out of range"))?;
            if index < 0 {
                return Err(WireError::Indexes("negative index"));
            }
            indexes.push(index);
        }
        indexes
    };
    Ok(Header {
        schema_id,
        indexes,
        payload_offset: at,
    })
}

fn write_zigzag(buf: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn zigzag_len(value: i64) -> usize {
    let v = ((value << 1) ^ (value >> 63)) as u64;
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn read_zigzag(frame: &[u8], at: &mut usize) -> Result<i64, WireError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *frame
            .get(*at)
            .ok_or(WireError::Indexes("cut off inside a varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(WireError::Indexes("varint longer than 10 bytes"))
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schema id {} message {:?}", self.schema_id, self.indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(indexes: &[i32]) -> Vec<u8> {
        let mut buf = Vec::new();
        write_header(&mut buf, 7, indexes);
        assert_eq!(buf.len(), header_len(indexes), "{indexes:?}");
        buf[5..].to_vec()
    }

    /// The vectors Confluent's serializer produces.
    #[test]
    fn message_indexes_match_confluents_bytes() {
        assert_eq!(header(&[0]), [0x00]);
        assert_eq!(header(&[1]), [0x02, 0x02]);
        assert_eq!(header(&[2]), [0x02, 0x04]);
        assert_eq!(header(&[0, 0]), [0x04, 0x00, 0x00]);
        assert_eq!(header(&[2, 0]), [0x04, 0x04, 0x00]);
        assert_eq!(header(&[64]), [0x02, 0x80, 0x01]);
    }

    #[test]
    fn whole_frame_matches_confluents_bytes() {
        let mut frame = Vec::new();
        write_header(&mut frame, 7, &[0]);
        frame.extend_from_slice(&[0x08, 0x65]);
        assert_eq!(frame, [0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x65]);
    }

    #[test]
    fn headers_round_trip() {
        for indexes in [
            vec![0],
            vec![1],
            vec![0, 0],
            vec![2, 0],
            vec![64],
            vec![3, 1, 200],
        ] {
            let mut frame = Vec::new();
            write_header(&mut frame, 0x01020304, &indexes);
            frame.push(0xff);
            let header = read_header(&frame).unwrap();
            assert_eq!(header.schema_id, 0x01020304);
            assert_eq!(header.indexes.as_slice(), indexes.as_slice());
            assert_eq!(&frame[header.payload_offset..], [0xff]);
        }
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(read_header(&[0, 0, 0]), Err(WireError::TooShort(3)));
        assert_eq!(
            read_header(b"{\"json\":1}"),
            Err(WireError::MagicByte(b'{'))
        );
        assert!(
            read_header(&[0, 0, 0, 0, 1, 0x02]).is_err(),
            "index cut off"
        );
        assert!(
            read_header(&[0, 0, 0, 0, 1, 0x01, 0]).is_err(),
            "negative count"
        );
        assert!(
            read_header(&[
                0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .is_err()
        );
        assert!(
            read_header(&[0, 0, 0, 0, 1, 0x02, 0x01]).is_err(),
            "negative index"
        );
    }
}
