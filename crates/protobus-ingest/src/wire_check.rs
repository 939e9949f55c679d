//! Checks a binary payload against its message type by walking the wire
//! format once, reading the key on the way.
//!
//! The service writes binary payloads as sent, so it needs to know that they
//! decode as their type, not the decoded message: a `DynamicMessage` decode
//! allocated every field and was a tenth of the service's CPU. The walk keeps
//! prost-reflect's decoding rules (wire types, packed lists, UTF-8 strings,
//! groups, map entries, the recursion limit of 100) and is stricter in one
//! way: a field the type does not define is refused wherever it is in the
//! bytes, including in a oneof member or map value a later field replaced,
//! because those bytes would be written to Kafka too.

use std::borrow::Cow;
use std::collections::HashMap;

use prost::encoding::{WireType, decode_key, decode_varint};
use prost_reflect::{ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use protobus_contract::{KeyKind, KeyPath};

/// How deep messages and groups may nest, as in prost's decoder.
const RECURSION_LIMIT: u32 = 100;
/// Field numbers below this are found by index, larger ones by search.
const DENSE_NUMBERS: u32 = 128;

/// A message type prepared for checking payloads and reading their key.
#[derive(Debug, Clone)]
pub(crate) struct WireCheck {
    /// The event's type first, then every message type it can contain.
    messages: Vec<MessagePlan>,
    /// The key field's path: the field number at each level.
    key: Vec<u32>,
    /// What an absent key field means: no key (`None`: the field has
    /// presence, or is a string or bytes), or the type's default (a proto3
    /// number without presence reads as `0`, as the generated code reads it).
    key_default: Option<KeyValue<'static>>,
}

#[derive(Debug, Clone)]
struct MessagePlan {
    /// Map entries skip fields other than key and value, as decoders do.
    map_entry: bool,
    dense: Vec<Option<FieldPlan>>,
    sparse: Vec<(u32, FieldPlan)>,
    /// Field names by number, for messages only.
    names: HashMap<u32, String>,
}

#[derive(Debug, Clone, Copy)]
struct FieldPlan {
    shape: Shape,
    list: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar(Scalar),
    Text,
    Bytes,
    Message(usize),
    Group(usize),
    Map(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Bool,
    Enum,
    Fixed32,
    Sfixed32,
    Float,
    Fixed64,
    Sfixed64,
    Double,
}

impl Scalar {
    fn wire_type(self) -> WireType {
        match self {
            Scalar::Fixed32 | Scalar::Sfixed32 | Scalar::Float => WireType::ThirtyTwoBit,
            Scalar::Fixed64 | Scalar::Sfixed64 | Scalar::Double => WireType::SixtyFourBit,
            _ => WireType::Varint,
        }
    }
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A field number the type does not define, and the field names leading to it.
    Unknown { number: u32, path: Vec<String> },
    /// The bytes do not decode as the type.
    Malformed {
        what: Cow<'static, str>,
        path: Vec<String>,
    },
}

impl Problem {
    fn malformed(what: impl Into<Cow<'static, str>>) -> Self {
        Problem::Malformed {
            what: what.into(),
            path: Vec::new(),
        }
    }

    /// The problem as found inside field `name` (built outwards, on the way back).
    fn inside(mut self, name: &str) -> Self {
        match &mut self {
            Problem::Unknown { path, .. } | Problem::Malformed { path, .. } => {
                path.push(name.to_owned());
            }
        }
        self
    }

    /// Where the problem is: `customer.id`, or `(top level)`.
    pub(crate) fn location(&self) -> String {
        let (Problem::Unknown { path, .. } | Problem::Malformed { path, .. }) = self;
        if path.is_empty() {
            return "(top level)".to_owned();
        }
        let names: Vec<&str> = path.iter().rev().map(String::as_str).collect();
        names.join(".")
    }
}

/// The key's value as last seen in the bytes.
#[derive(Debug, Clone, Copy)]
enum KeyValue<'a> {
    Text(&'a [u8]),
    Signed(i64),
    Unsigned(u64),
    Bool(bool),
}

/// What the walk learned about the key: which levels of its path are set,
/// and the last value of its field.
#[derive(Debug, Default)]
struct KeyState<'a> {
    present: u64,
    value: Option<KeyValue<'a>>,
}

impl WireCheck {
    /// Prepares `descriptor`, whose key is at `key_field` (`customer.id`);
    /// `None` if that is not a key path ([`KeyPath`]).
    pub(crate) fn new(descriptor: &MessageDescriptor, key_field: &str) -> Option<Self> {
        let mut builder = Builder::default();
        builder.message(descriptor);
        let mut check = WireCheck {
            messages: builder.messages,
            key: Vec::new(),
            key_default: None,
        };
        let key = KeyPath::resolve(descriptor, key_field).ok()?;
        check.key = key.fields().iter().map(FieldDescriptor::number).collect();
        let last = key.fields().last()?;
        check.key_default = match key.kind() {
            _ if last.supports_presence() => None,
            KeyKind::Text | KeyKind::Bytes => None,
            KeyKind::Bool => Some(KeyValue::Bool(false)),
            KeyKind::Number => Some(KeyValue::Signed(0)),
        };
        Some(check)
    }

    /// Checks `bytes` and returns the key: `None` when unset or empty, the
    /// number in decimal for integer fields.
    pub(crate) fn check(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, Problem> {
        let mut key = KeyState::default();
        let mut buf = bytes;
        self.walk(0, &mut buf, None, RECURSION_LIMIT, Some(0), &mut key)?;
        Ok(self.key_of(&key))
    }

    fn key_of(&self, state: &KeyState<'_>) -> Option<Vec<u8>> {
        let parents = (1u64 << (self.key.len() - 1)) - 1;
        if state.present & parents != parents {
            return None;
        }
        match state.value.or(self.key_default)? {
            KeyValue::Text([]) => None,
            KeyValue::Text(bytes) => Some(bytes.to_vec()),
            KeyValue::Signed(v) => Some(v.to_string().into_bytes()),
            KeyValue::Unsigned(v) => Some(v.to_string().into_bytes()),
            KeyValue::Bool(v) => Some(v.to_string().into_bytes()),
        }
    }

    fn field(&self, message: usize, number: u32) -> Option<FieldPlan> {
        let plan = &self.messages[message];
        if number < DENSE_NUMBERS {
            return plan.dense.get(number as usize).copied().flatten();
        }
        plan.sparse
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|i| plan.sparse[i].1)
    }

    /// Walks the fields of one message: to the end of `buf`, or to the
    /// end-group tag of `group`. `level` is this message's place on the key
    /// path, if it is on it; `depth` how many more levels may nest.
    fn walk<'a>(
        &self,
        message: usize,
        buf: &mut &'a [u8],
        group: Option<u32>,
        depth: u32,
        level: Option<usize>,
        key: &mut KeyState<'a>,
    ) -> Result<(), Problem> {
        loop {
            if buf.is_empty() && group.is_none() {
                return Ok(());
            }
            let (number, wire_type) = field_key(buf)?;
            if wire_type == WireType::EndGroup && group.is_some() {
                return if group == Some(number) {
                    Ok(())
                } else {
                    Err(end_group_mismatch())
                };
            }
            let Some(field) = self.field(message, number) else {
                if self.messages[message].map_entry {
                    skip(wire_type, number, buf, depth)?;
                    continue;
                }
                return Err(Problem::Unknown {
                    number,
                    path: Vec::new(),
                });
            };
            let on_key = level.filter(|&l| self.key.get(l) == Some(&number));
            self.field_value(field, number, wire_type, buf, depth, on_key, key)
                .map_err(|problem| match self.messages[message].names.get(&number) {
                    Some(name) => problem.inside(name),
                    None => problem,
                })?;
            if let Some(l) = on_key {
                key.present |= 1 << l;
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // the walk's state, passed down
    fn field_value<'a>(
        &self,
        field: FieldPlan,
        number: u32,
        wire_type: WireType,
        buf: &mut &'a [u8],
        depth: u32,
        on_key: Option<usize>,
        key: &mut KeyState<'a>,
    ) -> Result<(), Problem> {
        let last = on_key.is_some_and(|l| l + 1 == self.key.len());
        match field.shape {
            Shape::Scalar(scalar) if field.list && wire_type == WireType::LengthDelimited => {
                let mut packed = length_delimited(buf)?;
                while !packed.is_empty() {
                    scalar_value(scalar, &mut packed)?;
                }
            }
            Shape::Scalar(scalar) => {
                expect(wire_type, scalar.wire_type())?;
                let value = scalar_value(scalar, buf)?;
                if last {
                    key.value = Some(value);
                }
            }
            Shape::Text | Shape::Bytes => {
                expect(wire_type, WireType::LengthDelimited)?;
                let bytes = length_delimited(buf)?;
                if field.shape == Shape::Text && !is_utf8(bytes) {
                    return Err(Problem::malformed("a string that is not UTF-8"));
                }
                if last {
                    key.value = Some(KeyValue::Text(bytes));
                }
            }
            Shape::Message(message) => {
                expect(wire_type, WireType::LengthDelimited)?;
                let depth = nested(depth)?;
                let mut inner = length_delimited(buf)?;
                let level = on_key.map(|l| l + 1);
                self.walk(message, &mut inner, None, depth, level, key)?;
            }
            Shape::Group(message) => {
                expect(wire_type, WireType::StartGroup)?;
                let depth = nested(depth)?;
                let level = on_key.map(|l| l + 1);
                self.walk(message, buf, Some(number), depth, level, key)?;
            }
            // Like prost and prost-reflect, a map entry is read as
            // length-delimited whatever its wire type says.
            Shape::Map(entry) => {
                let mut inner = length_delimited(buf)?;
                self.walk(entry, &mut inner, None, depth, None, key)?;
            }
        }
        Ok(())
    }
}

fn field_key(buf: &mut &[u8]) -> Result<(u32, WireType), Problem> {
    decode_key(buf).map_err(|e| Problem::malformed(e.to_string()))
}

fn end_group_mismatch() -> Problem {
    Problem::malformed("an end-group tag that does not match its group")
}

/// The depth left inside one more message or group, if any.
fn nested(depth: u32) -> Result<u32, Problem> {
    depth
        .checked_sub(1)
        .ok_or_else(|| Problem::malformed("messages nested deeper than 100 levels"))
}

fn expect(actual: WireType, expected: WireType) -> Result<(), Problem> {
    if actual == expected {
        return Ok(());
    }
    Err(Problem::malformed(format!(
        "wire type {actual:?} where the field's type needs {expected:?}"
    )))
}

fn varint(buf: &mut &[u8]) -> Result<u64, Problem> {
    decode_varint(buf).map_err(|_| Problem::malformed("an invalid varint"))
}

fn take<'a>(buf: &mut &'a [u8], len: u64) -> Result<&'a [u8], Problem> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= buf.len())
        .ok_or_else(|| Problem::malformed("a field longer than the bytes left"))?;
    let (taken, rest) = buf.split_at(len);
    *buf = rest;
    Ok(taken)
}

/// UTF-8, as the decoder will check it. simdutf8 hands a string shorter
/// than its 64-byte block to `core::str::from_utf8`, which goes byte by
/// byte; short strings (ids, names) are mostly ASCII, which a word-wide test
/// settles first.
fn is_utf8(bytes: &[u8]) -> bool {
    (bytes.len() < 64 && bytes.is_ascii()) || simdutf8::basic::from_utf8(bytes).is_ok()
}

fn length_delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], Problem> {
    let len = varint(buf)?;
    take(buf, len)
}

fn fixed<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], Problem> {
    let bytes = take(buf, N as u64)?;
    Ok(bytes.try_into().expect("N bytes taken"))
}

/// One scalar, read as prost reads it (varints truncated to 32 bits where
/// the type is 32-bit; booleans true when not zero).
fn scalar_value<'a>(scalar: Scalar, buf: &mut &'a [u8]) -> Result<KeyValue<'a>, Problem> {
    Ok(match scalar {
        Scalar::Int32 | Scalar::Enum => KeyValue::Signed(i64::from(varint(buf)? as i32)),
        Scalar::Int64 => KeyValue::Signed(varint(buf)? as i64),
        Scalar::Uint32 => KeyValue::Unsigned(u64::from(varint(buf)? as u32)),
        Scalar::Uint64 => KeyValue::Unsigned(varint(buf)?),
        Scalar::Sint32 => {
            let v = varint(buf)? as u32;
            KeyValue::Signed(i64::from((v >> 1) as i32 ^ -((v & 1) as i32)))
        }
        Scalar::Sint64 => {
            let v = varint(buf)?;
            KeyValue::Signed((v >> 1) as i64 ^ -((v & 1) as i64))
        }
        Scalar::Bool => KeyValue::Bool(varint(buf)? != 0),
        Scalar::Fixed32 => KeyValue::Unsigned(u64::from(u32::from_le_bytes(fixed(buf)?))),
        Scalar::Sfixed32 => KeyValue::Signed(i64::from(i32::from_le_bytes(fixed(buf)?))),
        Scalar::Fixed64 => KeyValue::Unsigned(u64::from_le_bytes(fixed(buf)?)),
        Scalar::Sfixed64 => KeyValue::Signed(i64::from_le_bytes(fixed(buf)?)),
        // Never a key (the build refuses floating-point keys).
        Scalar::Float => KeyValue::Unsigned(u64::from(u32::from_le_bytes(fixed(buf)?))),
        Scalar::Double => KeyValue::Unsigned(u64::from_le_bytes(fixed(buf)?)),
    })
}

/// Skips a field of a map entry that is neither key nor value, checking it
/// as prost's `skip_field` does.
fn skip(wire_type: WireType, number: u32, buf: &mut &[u8], depth: u32) -> Result<(), Problem> {
    let inner_depth = nested(depth)?;
    match wire_type {
        WireType::Varint => {
            varint(buf)?;
        }
        WireType::ThirtyTwoBit => {
            take(buf, 4)?;
        }
        WireType::SixtyFourBit => {
            take(buf, 8)?;
        }
        WireType::LengthDelimited => {
            length_delimited(buf)?;
        }
        WireType::StartGroup => loop {
            let (inner, inner_type) = field_key(buf)?;
            if inner_type == WireType::EndGroup {
                if inner != number {
                    return Err(end_group_mismatch());
                }
                break;
            }
            skip(inner_type, inner, buf, inner_depth)?;
        },
        WireType::EndGroup => {
            return Err(Problem::malformed("an end-group tag outside a group"));
        }
    }
    Ok(())
}

/// Builds the plans of a message type and of every type it contains, each once.
#[derive(Default)]
struct Builder {
    messages: Vec<MessagePlan>,
    index: HashMap<String, usize>,
}

impl Builder {
    fn message(&mut self, descriptor: &MessageDescriptor) -> usize {
        if let Some(&index) = self.index.get(descriptor.full_name()) {
            return index;
        }
        let index = self.messages.len();
        self.index.insert(descriptor.full_name().to_owned(), index);
        self.messages.push(MessagePlan {
            map_entry: descriptor.is_map_entry(),
            dense: Vec::new(),
            sparse: Vec::new(),
            names: HashMap::new(),
        });
        let mut fields: Vec<(u32, FieldPlan, String)> = Vec::new();
        for field in descriptor.fields() {
            fields.push((field.number(), self.field(&field), field.name().to_owned()));
        }
        for extension in descriptor.extensions() {
            fields.push((
                extension.number(),
                self.extension(&extension),
                format!("[{}]", extension.full_name()),
            ));
        }
        let plan = &mut self.messages[index];
        for (number, field, name) in fields {
            if number < DENSE_NUMBERS {
                let slot = number as usize;
                if plan.dense.len() <= slot {
                    plan.dense.resize(slot + 1, None);
                }
                plan.dense[slot] = Some(field);
            } else {
                plan.sparse.push((number, field));
            }
            plan.names.insert(number, name);
        }
        plan.sparse.sort_unstable_by_key(|(n, _)| *n);
        index
    }

    fn field(&mut self, field: &FieldDescriptor) -> FieldPlan {
        FieldPlan {
            shape: shape_of(&field.kind(), field.is_group(), field.is_map(), self),
            list: field.is_list(),
        }
    }

    fn extension(&mut self, extension: &ExtensionDescriptor) -> FieldPlan {
        FieldPlan {
            shape: shape_of(
                &extension.kind(),
                extension.is_group(),
                extension.is_map(),
                self,
            ),
            list: extension.is_list(),
        }
    }
}

fn shape_of(kind: &Kind, group: bool, map: bool, builder: &mut Builder) -> Shape {
    match kind {
        Kind::Message(message) if map => Shape::Map(builder.message(message)),
        Kind::Message(message) if group => Shape::Group(builder.message(message)),
        Kind::Message(message) => Shape::Message(builder.message(message)),
        Kind::String => Shape::Text,
        Kind::Bytes => Shape::Bytes,
        Kind::Double => Shape::Scalar(Scalar::Double),
        Kind::Float => Shape::Scalar(Scalar::Float),
        Kind::Int32 => Shape::Scalar(Scalar::Int32),
        Kind::Int64 => Shape::Scalar(Scalar::Int64),
        Kind::Uint32 => Shape::Scalar(Scalar::Uint32),
        Kind::Uint64 => Shape::Scalar(Scalar::Uint64),
        Kind::Sint32 => Shape::Scalar(Scalar::Sint32),
        Kind::Sint64 => Shape::Scalar(Scalar::Sint64),
        Kind::Fixed32 => Shape::Scalar(Scalar::Fixed32),
        Kind::Fixed64 => Shape::Scalar(Scalar::Fixed64),
        Kind::Sfixed32 => Shape::Scalar(Scalar::Sfixed32),
        Kind::Sfixed64 => Shape::Scalar(Scalar::Sfixed64),
        Kind::Bool => Shape::Scalar(Scalar::Bool),
        Kind::Enum(_) => Shape::Scalar(Scalar::Enum),
    }
}

#[cfg(test)]
mod tests;
