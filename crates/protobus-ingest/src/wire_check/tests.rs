//! The wire check against the decode it replaces: prost-reflect's
//! `DynamicMessage::decode`, a search for unknown fields, and the key read
//! from the decoded message. Mutated payloads must get the same verdict and
//! the same key from both.

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};

use super::{Problem, WireCheck};

fn pool() -> DescriptorPool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/wire_check");
    let files = protox::compile(["wire.proto", "legacy.proto"], [dir]).expect("test protos");
    DescriptorPool::from_file_descriptor_set(files).expect("descriptor pool")
}

fn message(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).expect(name)
}

fn from_json(descriptor: &MessageDescriptor, json: &str) -> Vec<u8> {
    let mut de = serde_json::Deserializer::from_str(json);
    DynamicMessage::deserialize(descriptor.clone(), &mut de)
        .expect(json)
        .encode_to_vec()
}

/// What the service did before the wire check: decode, refuse unknown
/// fields anywhere in the decoded message, read the key from it.
fn reference(
    descriptor: &MessageDescriptor,
    key: &str,
    bytes: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    let message = DynamicMessage::decode(descriptor.clone(), bytes).map_err(|e| e.to_string())?;
    if has_unknown(&message) {
        return Err("unknown field".into());
    }
    let mut path = Vec::new();
    let mut current = descriptor.clone();
    for segment in key.split('.') {
        let field = current.get_field_by_name(segment).expect(segment);
        if let Kind::Message(next) = field.kind() {
            current = next;
        }
        path.push(field);
    }
    Ok(key_at(&message, &path))
}

fn has_unknown(message: &DynamicMessage) -> bool {
    message.unknown_fields().next().is_some()
        || message.fields().any(|(_, value)| match value {
            Value::Message(m) => has_unknown(m),
            Value::List(items) => items.iter().filter_map(Value::as_message).any(has_unknown),
            Value::Map(map) => map.values().filter_map(Value::as_message).any(has_unknown),
            _ => false,
        })
}

fn key_at(message: &DynamicMessage, path: &[FieldDescriptor]) -> Option<Vec<u8>> {
    let (field, rest) = path.split_first()?;
    if field.supports_presence() && !message.has_field(field) {
        return None;
    }
    let value = message.get_field(field);
    if !rest.is_empty() {
        return match value.as_ref() {
            Value::Message(next) => key_at(next, rest),
            _ => None,
        };
    }
    match value.as_ref() {
        Value::String(s) if !s.is_empty() => Some(s.as_bytes().to_vec()),
        Value::Bytes(b) if !b.is_empty() => Some(b.to_vec()),
        Value::I32(v) | Value::EnumNumber(v) => Some(v.to_string().into_bytes()),
        Value::I64(v) => Some(v.to_string().into_bytes()),
        Value::U32(v) => Some(v.to_string().into_bytes()),
        Value::U64(v) => Some(v.to_string().into_bytes()),
        Value::Bool(v) => Some(v.to_string().into_bytes()),
        _ => None,
    }
}

const EVERYTHING_KEYS: &[&str] = &[
    "id",
    "customer.id",
    "customer.parent.id",
    "i32",
    "i64",
    "u32",
    "u64",
    "s32",
    "s64",
    "f32",
    "f64",
    "sf32",
    "sf64",
    "flag",
    "color",
    "blob",
    "maybe",
    "big_number",
];
const LEGACY_KEYS: &[&str] = &["id", "count", "extra.a", "extra.b"];

const EVERYTHING_SEEDS: &[&str] = &[
    r#"{"id":"e-1","customer":{"id":"c-1","name":"Acme","parent":{"id":"p-1"}},"i32":-5,
        "i64":"-7","u32":9,"u64":"18446744073709551615","s32":-3,"s64":"-99","f32":7,"f64":"8",
        "sf32":-1,"sf64":"-2","fl":1.5,"db":2.5,"flag":true,"color":"RED","blob":"AAEC",
        "packed":[1,-2,300],"packedS":["-1","2"],"packedF":[1,2],"unpacked":[4,5],
        "lines":[{"sku":"a","qty":2,"tags":["x","y"]}],"bySku":{"a":{"sku":"a","qty":1}},
        "names":{"1":"one"},"payer":{"id":"pay-1"},"maybe":"0","bigNumber":12}"#,
    r#"{"id":"","customer":{"name":"no id"},"i32":2147483647,"u32":4294967295,"s64":"1",
        "note":"a note","lines":[{"sku":"b"},{"qty":3}],"names":{"-4":"minus"},"bigNumber":-1}"#,
    r#"{}"#,
];
const LEGACY_SEEDS: &[&str] = &[
    r#"{"id":"l-1","extra":{"a":4,"b":"bee"},"item":[{"sku":"s1"},{"sku":"s2"}],"count":0,
        "[wire.v2.tag]":"t"}"#,
    r#"{"extra":{}}"#,
];

/// A small deterministic generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A valid-looking field with a random number and wire type, numbers the
/// types define more often than not.
fn random_field(rng: &mut Rng, numbers: &[u32]) -> Vec<u8> {
    let number = if rng.below(4) == 0 {
        [99, 4000, 1 << 20][rng.below(3)]
    } else {
        numbers[rng.below(numbers.len())]
    };
    let wire_type = rng.below(6) as u64;
    let mut out = Vec::new();
    prost::encoding::encode_varint((u64::from(number) << 3) | wire_type, &mut out);
    match wire_type {
        0 => prost::encoding::encode_varint(rng.next() >> rng.below(64), &mut out),
        1 => out.extend_from_slice(&rng.next().to_le_bytes()),
        2 => {
            let len = rng.below(6);
            prost::encoding::encode_varint(len as u64, &mut out);
            out.extend((0..len).map(|_| b"ab\x08\x01\x12\xff"[rng.below(6)]));
        }
        3 => {
            // A group: sometimes closed with its own number.
            if rng.below(2) == 0 {
                prost::encoding::encode_varint((u64::from(number) << 3) | 4, &mut out);
            }
        }
        4 => {}
        _ => out.extend_from_slice(&(rng.next() as u32).to_le_bytes()),
    }
    out
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], numbers: &[u32]) -> Vec<u8> {
    let mut bytes = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let at = at.min(bytes.len() - 1);
                bytes[at] = rng.next() as u8;
            }
            1 => bytes.insert(at, rng.next() as u8),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            4 => {
                let field = random_field(rng, numbers);
                bytes.extend(field);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                bytes.extend_from_slice(other);
            }
            _ => {
                let from = rng.below(bytes.len() + 1);
                let to = (from + rng.below(8)).min(bytes.len());
                let slice = bytes[from..to].to_vec();
                let at = at.min(bytes.len());
                bytes.splice(at..at, slice);
            }
        }
    }
    bytes
}

fn compare(name: &str, keys: &[&str], seeds: &[&str], numbers: &[u32], cases: usize) {
    let descriptor = message(name);
    let checks: Vec<WireCheck> = keys
        .iter()
        .map(|key| WireCheck::new(&descriptor, key).expect(key))
        .collect();
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| from_json(&descriptor, s)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases {
        let bytes = if case < seeds.len() {
            seeds[case].clone()
        } else {
            mutate(&mut rng, &seeds, numbers)
        };
        for (key, check) in keys.iter().zip(&checks) {
            let ours = check.check(&bytes);
            let theirs = reference(&descriptor, key, &bytes);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "key `{key}` of {bytes:02x?}"),
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "{name}, key `{key}`: wire check {ours:?}, decode {theirs:?} for {bytes:02x?}"
                ),
            }
        }
        if checks[0].check(&bytes).is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // The cases must exercise both verdicts, or the comparison proves little.
    assert!(
        accepted > cases / 20 && refused > cases / 20,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn mutated_payloads_get_the_decoders_verdict_and_key() {
    let numbers: Vec<u32> = (1..=27).chain([300]).collect();
    compare(
        "wire.v1.Everything",
        EVERYTHING_KEYS,
        EVERYTHING_SEEDS,
        &numbers,
        20_000,
    );
}

#[test]
fn groups_and_extensions_get_the_decoders_verdict_and_key() {
    compare(
        "wire.v2.Legacy",
        LEGACY_KEYS,
        LEGACY_SEEDS,
        &[1, 2, 3, 4, 5, 6, 7, 100],
        20_000,
    );
}

#[test]
fn keys_read_as_the_generated_code_reads_them() {
    let descriptor = message("wire.v1.Everything");
    let key = |path: &str, json: &str| {
        WireCheck::new(&descriptor, path)
            .unwrap()
            .check(&from_json(&descriptor, json))
            .unwrap()
            .map(|k| String::from_utf8(k).unwrap())
    };
    assert_eq!(key("id", r#"{"id":"e-1"}"#).as_deref(), Some("e-1"));
    assert_eq!(key("id", r#"{}"#), None, "an empty string is no key");
    assert_eq!(key("i32", r#"{}"#).as_deref(), Some("0"), "proto3 default");
    assert_eq!(key("flag", r#"{}"#).as_deref(), Some("false"));
    assert_eq!(key("maybe", r#"{}"#), None, "optional and unset");
    assert_eq!(key("maybe", r#"{"maybe":"0"}"#).as_deref(), Some("0"));
    assert_eq!(key("customer.id", r#"{}"#), None, "no customer");
    assert_eq!(key("customer.id", r#"{"customer":{}}"#), None);
    assert_eq!(key("s32", r#"{"s32":-3}"#).as_deref(), Some("-3"));
    assert_eq!(key("sf64", r#"{"sf64":"-2"}"#).as_deref(), Some("-2"));
    assert_eq!(key("color", r#"{"color":"RED"}"#).as_deref(), Some("1"));
    assert_eq!(
        key("u64", r#"{"u64":"18446744073709551615"}"#).as_deref(),
        Some("18446744073709551615")
    );

    // A message field sent twice is merged; the last id wins.
    let check = WireCheck::new(&descriptor, "customer.id").unwrap();
    let mut bytes = from_json(&descriptor, r#"{"customer":{"id":"first"}}"#);
    bytes.extend(from_json(&descriptor, r#"{"customer":{"name":"n"}}"#));
    assert_eq!(check.check(&bytes).unwrap().as_deref(), Some(&b"first"[..]));
    bytes.extend(from_json(&descriptor, r#"{"customer":{"id":"last"}}"#));
    assert_eq!(check.check(&bytes).unwrap().as_deref(), Some(&b"last"[..]));
}

#[test]
fn problems_say_what_and_where() {
    let descriptor = message("wire.v1.Everything");
    let check = WireCheck::new(&descriptor, "id").unwrap();
    // customer { name: 5 bytes announced, 1 sent }
    let problem = check.check(&[0x12, 0x03, 0x12, 0x05, b'a']).unwrap_err();
    assert_eq!(problem.location(), "customer.name");
    assert!(matches!(problem, Problem::Malformed { .. }), "{problem:?}");
    // customer { parent { field 99: varint 1 } }
    let unknown = [0x12, 0x05, 0x1a, 0x03, 0x98, 0x06, 0x01];
    let problem = check.check(&unknown).unwrap_err();
    assert_eq!(
        (problem.clone(), problem.location()),
        (
            Problem::Unknown {
                number: 99,
                path: vec!["parent".into(), "customer".into()]
            },
            "customer.parent".to_owned()
        )
    );
    // id as a varint.
    let problem = check.check(&[0x08, 0x01]).unwrap_err();
    assert_eq!(problem.location(), "id");
    let Problem::Malformed { what, .. } = problem else {
        panic!("{problem:?}")
    };
    assert_eq!(
        what,
        "wire type Varint where the field's type needs LengthDelimited"
    );
}

#[test]
fn map_entries_are_read_as_length_delimited_whatever_their_wire_type() {
    let descriptor = message("wire.v1.Everything");
    let check = WireCheck::new(&descriptor, "id").unwrap();
    // `names` (24) as a varint, a group start and a fixed32, each followed by
    // the length and the entry {1: 1}: prost and prost-reflect read all three.
    for wire_type in [0u8, 3, 5] {
        let bytes = [0xc0 | wire_type, 0x01, 0x02, 0x08, 0x01];
        assert!(reference(&descriptor, "id", &bytes).is_ok(), "{wire_type}");
        assert_eq!(check.check(&bytes), Ok(None), "{wire_type}");
    }
}

#[test]
fn nesting_stops_where_the_decoder_stops() {
    let descriptor = message("wire.v1.Party");
    let check = WireCheck::new(&descriptor, "id").unwrap();
    // Party { parent { parent { … } } }, `levels` messages inside the top one.
    let nested = |levels: usize| {
        let mut bytes = Vec::new();
        for _ in 0..levels {
            let mut outer = vec![0x1a];
            prost::encoding::encode_varint(bytes.len() as u64, &mut outer);
            outer.extend(bytes);
            bytes = outer;
        }
        bytes
    };
    for levels in [99, 100, 101] {
        let bytes = nested(levels);
        assert_eq!(
            check.check(&bytes).is_ok(),
            DynamicMessage::decode(descriptor.clone(), &bytes[..]).is_ok(),
            "{levels} levels"
        );
    }
    assert!(check.check(&nested(100)).is_ok());
    assert!(check.check(&nested(101)).is_err());
}

#[test]
fn unknown_fields_in_replaced_data_are_refused_too() {
    // payer { 99: 1 }, then note: the decode drops payer (same oneof) and
    // with it the unknown field, but the bytes would reach Kafka as sent.
    let descriptor = message("wire.v1.Everything");
    let bytes = [0xca, 0x01, 0x03, 0x98, 0x06, 0x01, 0xd2, 0x01, 0x01, b'n'];
    assert_eq!(reference(&descriptor, "id", &bytes), Ok(None));
    let check = WireCheck::new(&descriptor, "id").unwrap();
    assert_eq!(
        check.check(&bytes),
        Err(Problem::Unknown {
            number: 99,
            path: vec!["payer".into()]
        })
    );
}

#[test]
fn json_nested_deeper_than_decoders_read_is_caught_once_encoded() {
    // serde_json allows 128 levels; prost decoders stop at 100.
    let descriptor = message("wire.v1.Party");
    let json = format!(
        "{}{}",
        r#"{"parent":"#.repeat(101),
        "{}".to_owned() + &"}".repeat(101)
    );
    let bytes = from_json(&descriptor, &json);
    assert!(DynamicMessage::decode(descriptor.clone(), &bytes[..]).is_err());
    let check = WireCheck::new(&descriptor, "id").unwrap();
    assert!(matches!(
        check.check(&bytes),
        Err(Problem::Malformed { .. })
    ));
}

#[test]
fn key_paths_must_lead_to_one_scalar() {
    let descriptor = message("wire.v1.Everything");
    for bad in [
        "lines",
        "customer",
        "fl",
        "db",
        "packed",
        "customer.nope",
        "id.more",
        "",
    ] {
        assert!(WireCheck::new(&descriptor, bad).is_none(), "{bad}");
    }
}

#[test]
fn strings_of_any_length_are_checked_as_utf8_as_the_decoder_checks_them() {
    let descriptor = message("wire.v1.Everything");
    let check = WireCheck::new(&descriptor, "id").unwrap();
    // `id` (field 1) holding `text`; lengths around the SIMD check's 64-byte
    // blocks (below them, ASCII is settled first), each invalid sequence at
    // the start, the middle and the end.
    let id = |text: &[u8]| {
        let mut bytes = vec![0x0a];
        prost::encoding::encode_varint(text.len() as u64, &mut bytes);
        bytes.extend_from_slice(text);
        bytes
    };
    let invalid: [&[u8]; 4] = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"];
    for len in [0, 1, 31, 63, 64, 65, 127, 1000] {
        for valid in ["é".repeat(len / 2) + &"a".repeat(len % 2), "a".repeat(len)] {
            let bytes = id(valid.as_bytes());
            assert_eq!(
                check.check(&bytes).map_err(|_| ()),
                Ok(Some(valid.into_bytes()).filter(|k| !k.is_empty()))
            );
        }
        for bad in invalid {
            for at in [0, len / 2, len] {
                let mut text = "a".repeat(len).into_bytes();
                text.splice(at..at, bad.iter().copied());
                let bytes = id(&text);
                let problem = check.check(&bytes).expect_err("not UTF-8");
                assert!(matches!(problem, Problem::Malformed { .. }), "{problem:?}");
                assert!(reference(&descriptor, "id", &bytes).is_err(), "{text:02x?}");
            }
        }
    }
}
