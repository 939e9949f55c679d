//! The ingest API's codec: prost, with a look at a request's wire bytes
//! before they are decoded. An `Event` is two bytes on the wire and hundreds
//! in memory, so the number of events is checked first.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf as _;
use prost::encoding::{WireType, decode_key, decode_varint};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstCodec;

use crate::api::{PublishRequest, PublishResponse};

/// Most events one `PublishRequest` may hold (an API limit, as in
/// `ingest.proto`, and the same as Google Pub/Sub's): larger batches are
/// refused before they are decoded. It bounds what one message can take
/// once decoded, which the in-flight budget charges before the message is
/// read (`budget.rs`): a larger limit makes every message's charge larger.
pub const MAX_EVENTS_PER_REQUEST: usize = 1_000;

/// Prost's codec, with [`Prescan`] before each decode.
#[derive(Debug)]
pub struct IngestCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for IngestCodec<T, U> {
    fn default() -> Self {
        IngestCodec(PhantomData)
    }
}

impl<T, U> Codec for IngestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Prescan + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = IngestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        IngestDecoder(PhantomData)
    }
}

/// Decodes a message after [`Prescan`] passed its bytes.
#[derive(Debug)]
pub struct IngestDecoder<U>(PhantomData<U>);

impl<U: Message + Prescan> Decoder for IngestDecoder<U> {
    type Item = U;
    type Error = Status;

    /// Decodes from the message's bytes taken out of tonic's buffer (not a
    /// copy: its payloads stay slices of them), which advance more cheaply
    /// than the buffer itself.
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let whole = buf.copy_to_bytes(buf.remaining());
        let mut message = U::prescan(&whole)?;
        message
            .merge(whole)
            .map(|()| Some(message))
            .map_err(|e| Status::invalid_argument(format!("the message does not decode: {e}")))
    }
}

/// A check of a message's wire bytes before they are decoded.
pub trait Prescan: Default {
    /// Refuses `_bytes` before they are decoded, or gives the empty message
    /// to decode them into; by default, accepts them.
    fn prescan(_bytes: &[u8]) -> Result<Self, Status> {
        Ok(Self::default())
    }
}

impl Prescan for PublishResponse {}

impl Prescan for PublishRequest {
    /// Counts the top-level `events` (field 1), and gives a request with
    /// room for them (decoding then moves no event to grow the list);
    /// malformed bytes are left to the decoder to refuse.
    fn prescan(mut bytes: &[u8]) -> Result<Self, Status> {
        let mut events = 0usize;
        while bytes.has_remaining() {
            let Ok((tag, wire_type)) = decode_key(&mut bytes) else {
                break;
            };
            let skipped = match wire_type {
                WireType::Varint => decode_varint(&mut bytes).is_ok(),
                WireType::SixtyFourBit => {
                    bytes.len() >= 8 && {
                        bytes.advance(8);
                        true
                    }
                }
                WireType::ThirtyTwoBit => {
                    bytes.len() >= 4 && {
                        bytes.advance(4);
                        true
                    }
                }
                WireType::LengthDelimited => match decode_varint(&mut bytes) {
                    Ok(len) if len <= bytes.len() as u64 => {
                        bytes.advance(len as usize);
                        true
                    }
                    _ => false,
                },
                WireType::StartGroup | WireType::EndGroup => false,
            };
            if !skipped {
                break;
            }
            if tag == 1 {
                events += 1;
                if events > MAX_EVENTS_PER_REQUEST {
                    return Err(Status::invalid_argument(format!(
                        "a request may hold at most {MAX_EVENTS_PER_REQUEST} events; this one holds more: send them in several requests"
                    )));
                }
            }
        }
        Ok(PublishRequest {
            events: Vec::with_capacity(events),
            request_id: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    #[test]
    fn requests_with_too_many_events_are_refused_unread() {
        let request = |n| PublishRequest {
            events: vec![Event::default(); n],
            request_id: 7,
        };
        let room = PublishRequest::prescan(&request(MAX_EVENTS_PER_REQUEST).encode_to_vec())
            .expect("at the limit");
        assert!(room.events.capacity() >= MAX_EVENTS_PER_REQUEST);
        let status = PublishRequest::prescan(&request(MAX_EVENTS_PER_REQUEST + 1).encode_to_vec())
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("at most 1000 events"),
            "{status:?}"
        );
        // Malformed bytes are the decoder's to refuse.
        assert!(PublishRequest::prescan(&[0x0a, 0xff]).is_ok());
    }
}
