//! Wire-level rules, in the spirit of `buf breaking`'s WIRE and WIRE_JSON
//! categories: what breaks readers of the binary encoding, and what breaks
//! readers of the proto3 JSON mapping. Each finding says where (file, line,
//! column in the new schema, and in the old one where useful), which element,
//! which rule, and what to do instead.

use std::collections::HashMap;
use std::fmt;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
};
use serde::Serialize;

use protobus_contract::qualify;

use crate::Schema;
use check::Check;

mod check;

/// Which readers a rule protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// Readers of the binary encoding (Kafka records).
    Wire,
    /// Readers of the proto3 JSON mapping (the ingest API, tooling).
    WireJson,
}

/// A wire-level rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Rule {
    FieldNoDeleteUnlessNumberReserved,
    FieldNoDeleteUnlessNameReserved,
    FieldWireCompatibleType,
    FieldWireJsonCompatibleType,
    FieldWireCompatibleCardinality,
    FieldWireJsonCompatibleCardinality,
    FieldSameOneof,
    FieldSameJsonName,
    FieldSameRequiredness,
    FileSamePackage,
    ReservedMessageNoDelete,
    ReservedEnumNoDelete,
    EnumValueNoDeleteUnlessNumberReserved,
    EnumValueNoDeleteUnlessNameReserved,
    EnumValueSameName,
}

impl Rule {
    /// Every rule, for documentation and tests.
    pub const ALL: [Rule; 15] = [
        Rule::FieldNoDeleteUnlessNumberReserved,
        Rule::FieldNoDeleteUnlessNameReserved,
        Rule::FieldWireCompatibleType,
        Rule::FieldWireJsonCompatibleType,
        Rule::FieldWireCompatibleCardinality,
        Rule::FieldWireJsonCompatibleCardinality,
        Rule::FieldSameOneof,
        Rule::FieldSameJsonName,
        Rule::FieldSameRequiredness,
        Rule::FileSamePackage,
        Rule::ReservedMessageNoDelete,
        Rule::ReservedEnumNoDelete,
        Rule::EnumValueNoDeleteUnlessNumberReserved,
        Rule::EnumValueNoDeleteUnlessNameReserved,
        Rule::EnumValueSameName,
    ];

    /// The rule's id, e.g. `FIELD_WIRE_COMPATIBLE_TYPE`.
    pub fn id(self) -> &'static str {
        use Rule::*;
        match self {
            FieldNoDeleteUnlessNumberReserved => "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
            FieldNoDeleteUnlessNameReserved => "FIELD_NO_DELETE_UNLESS_NAME_RESERVED",
            FieldWireCompatibleType => "FIELD_WIRE_COMPATIBLE_TYPE",
            FieldWireJsonCompatibleType => "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
            FieldWireCompatibleCardinality => "FIELD_WIRE_COMPATIBLE_CARDINALITY",
            FieldWireJsonCompatibleCardinality => "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
            FieldSameOneof => "FIELD_SAME_ONEOF",
            FieldSameJsonName => "FIELD_SAME_JSON_NAME",
            FieldSameRequiredness => "FIELD_SAME_REQUIREDNESS",
            FileSamePackage => "FILE_SAME_PACKAGE",
            ReservedMessageNoDelete => "RESERVED_MESSAGE_NO_DELETE",
            ReservedEnumNoDelete => "RESERVED_ENUM_NO_DELETE",
            EnumValueNoDeleteUnlessNumberReserved => "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
            EnumValueNoDeleteUnlessNameReserved => "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",
            EnumValueSameName => "ENUM_VALUE_SAME_NAME",
        }
    }

    /// The change it refuses, in a few words.
    pub fn change(self) -> &'static str {
        use Rule::*;
        match self {
            FieldNoDeleteUnlessNumberReserved => "a field deleted without reserving its number",
            FieldNoDeleteUnlessNameReserved => "a field deleted without reserving its name",
            FieldWireCompatibleType => "a field's type outside its wire-compatible group",
            FieldWireJsonCompatibleType => "a field's type that JSON writes differently",
            FieldWireCompatibleCardinality => {
                "a field between singular and repeated, where the wire differs"
            }
            FieldWireJsonCompatibleCardinality => "a field between singular and repeated",
            FieldSameOneof => "a field moved into or out of a oneof",
            FieldSameJsonName => "a field's JSON name changed (a rename)",
            FieldSameRequiredness => "`required` added or removed",
            FileSamePackage => "the package changed (every type renamed)",
            ReservedMessageNoDelete => "a reserved number or name of a message removed",
            ReservedEnumNoDelete => "a reserved number or name of an enum removed",
            EnumValueNoDeleteUnlessNumberReserved => {
                "an enum value deleted without reserving its number"
            }
            EnumValueNoDeleteUnlessNameReserved => {
                "an enum value deleted without reserving its name"
            }
            EnumValueSameName => "an enum value renamed",
        }
    }

    /// Which readers it protects.
    pub fn category(self) -> Category {
        use Rule::*;
        match self {
            FieldNoDeleteUnlessNameReserved
            | FieldWireJsonCompatibleType
            | FieldWireJsonCompatibleCardinality
            | FieldSameJsonName
            | EnumValueNoDeleteUnlessNameReserved
            | EnumValueSameName => Category::WireJson,
            _ => Category::Wire,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

pub use protobus_contract::Location;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Finding {
    /// Where, in the new schema (for a deletion: the enclosing element).
    pub location: Option<Location>,
    /// The rule broken.
    pub rule: Rule,
    /// The element's full name, e.g. `shop.v1.Order.total`.
    pub element: String,
    /// What changed.
    pub message: String,
    /// Where the element was, in the old schema.
    pub previous: Option<Location>,
    /// What to do instead.
    pub hint: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{} {}: {}", self.rule, self.element, self.message)?;
        if let Some(previous) = &self.previous {
            write!(f, "\n  was: {previous}")?;
        }
        write!(f, "\n  fix: {}", self.hint)
    }
}

/// Every wire-level rule the change from `old` to `new` breaks, in order of position.
pub fn wire_findings(old: &Schema, new: &Schema) -> Vec<Finding> {
    compare_types(old, new, |_| true, true)
}

/// The wire findings for the type `full_name` (and the types nested in it)
/// between two files: for a type that moved from `old`'s file to `new`'s,
/// compared with its old definition by full name.
pub fn moved_type_findings(old: &Schema, new: &Schema, full_name: &str) -> Vec<Finding> {
    let nested = format!("{full_name}.");
    compare_types(
        old,
        new,
        |name| name == full_name || name.starts_with(&nested),
        false,
    )
}

/// The wire findings for the messages and enums of both files that
/// `include` names (by full name), and the package's when `package` is set.
fn compare_types(
    old: &Schema,
    new: &Schema,
    include: impl Fn(&str) -> bool,
    package: bool,
) -> Vec<Finding> {
    let (old_file, new_file) = (old.file(), new.file());
    let mut check = Check {
        old: Spans::of(old_file),
        new: Spans::of(new_file),
        found: Vec::new(),
    };
    if package && old_file.package() != new_file.package() {
        check.add(
            Rule::FileSamePackage,
            new_file.package().to_owned(),
            format!("the package changed from `{}` to `{}`, which renames every type in the file", old_file.package(), new_file.package()),
            &[2],
            &[2],
            "keep the package; publish the changed contract under a new package (e.g. `.v2`) next to the old one".into(),
        );
    }
    let old_messages = messages(old_file);
    let new_messages = messages(new_file);
    for (name, (old_path, old_message)) in old_messages.iter().filter(|(n, _)| include(n)) {
        if let Some((new_path, new_message)) = new_messages.get(name) {
            check.message(name, old_message, old_path, new_message, new_path);
        }
    }
    let old_enums = enums(old_file);
    let new_enums = enums(new_file);
    for (name, (old_path, old_enum)) in old_enums.iter().filter(|(n, _)| include(n)) {
        if let Some((new_path, new_enum)) = new_enums.get(name) {
            check.enumeration(name, old_enum, old_path, new_enum, new_path);
        }
    }
    check.found.sort();
    check.found
}

type Path = Vec<i32>;

/// Where a Confluent difference path (`#/Order/2`, `#/Order/contact/3`,
/// `#/State/1`) points in `file`: the deepest element it names.
pub(crate) fn locate(file: &FileDescriptorProto, path: &str) -> Option<Location> {
    let spans = Spans::of(file);
    let mut at: Path = Vec::new();
    let mut message: Option<&DescriptorProto> = None;
    let mut enumeration: Option<&EnumDescriptorProto> = None;
    for segment in path
        .trim_start_matches("#/")
        .split('/')
        .filter(|s| !s.is_empty())
    {
        let number: Option<i32> = segment.parse().ok();
        if let Some(e) = enumeration {
            let (i, _) = e
                .value
                .iter()
                .enumerate()
                .find(|(_, v)| Some(v.number()) == number)?;
            at.extend([2, i as i32]);
            break;
        }
        let (nested, enums): (&[DescriptorProto], &[EnumDescriptorProto]) = match message {
            Some(m) => (&m.nested_type, &m.enum_type),
            None => (&file.message_type, &file.enum_type),
        };
        let (message_tag, enum_tag) = if message.is_some() { (3, 4) } else { (4, 5) };
        if let Some((i, m)) = nested.iter().enumerate().find(|(_, m)| m.name() == segment) {
            at.extend([message_tag, i as i32]);
            message = Some(m);
        } else if let Some((i, e)) = enums.iter().enumerate().find(|(_, e)| e.name() == segment) {
            at.extend([enum_tag, i as i32]);
            enumeration = Some(e);
        } else if let Some(m) = message {
            if let Some((i, _)) = m
                .field
                .iter()
                .enumerate()
                .find(|(_, f)| Some(f.number()) == number)
            {
                at.extend([2, i as i32]);
                break;
            }
            if let Some((i, _)) = m
                .oneof_decl
                .iter()
                .enumerate()
                .find(|(_, o)| o.name() == segment)
            {
                at.extend([8, i as i32]);
                continue;
            }
            break;
        } else {
            break;
        }
    }
    spans.at(&at).or_else(|| spans.at(&[2]))
}

fn messages(file: &FileDescriptorProto) -> HashMap<String, (Path, &DescriptorProto)> {
    let mut found = HashMap::new();
    let mut pending: Vec<(String, Path, &DescriptorProto)> = file
        .message_type
        .iter()
        .enumerate()
        .map(|(i, m)| (qualify(file.package(), m.name()), vec![4, i as i32], m))
        .collect();
    while let Some((name, path, message)) = pending.pop() {
        for (i, nested) in message.nested_type.iter().enumerate() {
            let mut nested_path = path.clone();
            nested_path.extend([3, i as i32]);
            pending.push((qualify(&name, nested.name()), nested_path, nested));
        }
        found.insert(name, (path, message));
    }
    found
}

fn enums(file: &FileDescriptorProto) -> HashMap<String, (Path, &EnumDescriptorProto)> {
    let mut found = HashMap::new();
    for (i, e) in file.enum_type.iter().enumerate() {
        found.insert(qualify(file.package(), e.name()), (vec![5, i as i32], e));
    }
    for (name, (path, message)) in messages(file) {
        for (i, e) in message.enum_type.iter().enumerate() {
            let mut enum_path = path.clone();
            enum_path.extend([4, i as i32]);
            found.insert(qualify(&name, e.name()), (enum_path, e));
        }
    }
    found
}

/// Source spans of one file's elements, by descriptor path.
struct Spans<'a> {
    file: &'a str,
    by_path: HashMap<&'a [i32], &'a [i32]>,
}

impl<'a> Spans<'a> {
    fn of(file: &'a FileDescriptorProto) -> Self {
        let by_path = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter(|l| l.span.len() >= 3)
            .map(|l| (l.path.as_slice(), l.span.as_slice()))
            .collect();
        Spans {
            file: file.name(),
            by_path,
        }
    }

    fn at(&self, path: &[i32]) -> Option<Location> {
        self.by_path
            .get(path)
            .and_then(|span| Location::of_span(self.file, span))
    }
}
