//! Top-level rewriting of an encoded `FileDescriptorProto` that keeps every
//! other byte (custom options included): for a schema's identity (no name,
//! no source info, imports sorted when normalizing), to rename a file, and
//! to drop its source info.

use prost::bytes::{Buf, BufMut};
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

const NAME: u32 = 1;
const DEPENDENCY: u32 = 3;
const SOURCE_CODE_INFO: u32 = 9;
const PUBLIC_DEPENDENCY: u32 = 10;
const WEAK_DEPENDENCY: u32 = 11;

/// What a schema defines, as bytes: no name, no comments or positions.
pub(crate) fn identity(encoded: &[u8], normalize: bool) -> Vec<u8> {
    rewrite(encoded, None, false, normalize)
}

/// The same file under another name, with or without its source info.
pub(crate) fn renamed(encoded: &[u8], name: &str, source_info: bool) -> Vec<u8> {
    rewrite(encoded, Some(name), source_info, false)
}

/// The same file without its source info, every other field in place; an
/// encoding that does not parse is kept whole.
pub(crate) fn without_source_info(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut buf = encoded;
    while buf.has_remaining() {
        let field = buf;
        let Ok((tag, wire_type)) = decode_key(&mut buf) else {
            return encoded.to_vec();
        };
        if field_value(&mut buf, wire_type).is_none() {
            return encoded.to_vec();
        }
        if tag != SOURCE_CODE_INFO {
            out.put_slice(&field[..field.len() - buf.len()]);
        }
    }
    out
}

fn rewrite(encoded: &[u8], name: Option<&str>, source_info: bool, normalize: bool) -> Vec<u8> {
    let mut buf = encoded;
    let mut kept: Vec<(u32, WireType, &[u8])> = Vec::new();
    let mut dependencies: Vec<&[u8]> = Vec::new();
    let mut public: Vec<u64> = Vec::new();
    let mut weak: Vec<u64> = Vec::new();
    while buf.has_remaining() {
        let Ok((tag, wire_type)) = decode_key(&mut buf) else {
            // Not a descriptor we encoded ourselves: compare it whole.
            return encoded.to_vec();
        };
        let start = buf;
        let Some(value) = field_value(&mut buf, wire_type) else {
            return encoded.to_vec();
        };
        let raw = &start[..start.len() - buf.len()];
        match tag {
            NAME => {}
            SOURCE_CODE_INFO if !source_info => {}
            DEPENDENCY => dependencies.push(value),
            PUBLIC_DEPENDENCY | WEAK_DEPENDENCY => {
                let list = if tag == PUBLIC_DEPENDENCY {
                    &mut public
                } else {
                    &mut weak
                };
                let mut packed = value;
                if wire_type == WireType::LengthDelimited {
                    while packed.has_remaining() {
                        match decode_varint(&mut packed) {
                            Ok(v) => list.push(v),
                            Err(_) => return encoded.to_vec(),
                        }
                    }
                } else {
                    let mut raw = raw;
                    list.extend(decode_varint(&mut raw).ok());
                }
            }
            _ => kept.push((tag, wire_type, raw)),
        }
    }

    let mut order: Vec<usize> = (0..dependencies.len()).collect();
    if normalize {
        order.sort_by_key(|&i| dependencies[i]);
    }
    let position = |old: u64| order.iter().position(|&i| i as u64 == old).unwrap_or(0) as u64;
    let remap = |list: &mut Vec<u64>| {
        for v in list.iter_mut() {
            *v = position(*v);
        }
        if normalize {
            list.sort_unstable();
        }
    };
    remap(&mut public);
    remap(&mut weak);

    let mut out = Vec::with_capacity(encoded.len());
    if let Some(name) = name {
        encode_key(NAME, WireType::LengthDelimited, &mut out);
        encode_varint(name.len() as u64, &mut out);
        out.put_slice(name.as_bytes());
    }
    for &i in &order {
        encode_key(DEPENDENCY, WireType::LengthDelimited, &mut out);
        encode_varint(dependencies[i].len() as u64, &mut out);
        out.put_slice(dependencies[i]);
    }
    for (tag, list) in [(PUBLIC_DEPENDENCY, &public), (WEAK_DEPENDENCY, &weak)] {
        for &v in list {
            encode_key(tag, WireType::Varint, &mut out);
            encode_varint(v, &mut out);
        }
    }
    for (tag, wire_type, raw) in kept {
        encode_key(tag, wire_type, &mut out);
        out.put_slice(raw);
    }
    out
}

/// Advances past one field value; for length-delimited fields returns its bytes.
fn field_value<'a>(buf: &mut &'a [u8], wire_type: WireType) -> Option<&'a [u8]> {
    match wire_type {
        WireType::Varint => decode_varint(buf).ok().map(|_| &[][..]),
        WireType::SixtyFourBit => take(buf, 8),
        WireType::ThirtyTwoBit => take(buf, 4),
        WireType::LengthDelimited => {
            let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
            take(buf, len)
        }
        WireType::StartGroup | WireType::EndGroup => None,
    }
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if buf.len() < len {
        return None;
    }
    let (value, rest) = buf.split_at(len);
    *buf = rest;
    Some(value)
}
