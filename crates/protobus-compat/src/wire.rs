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

use crate::Schema;

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

/// A place in a `.proto` file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file, as imported.
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

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
    let (old_file, new_file) = (old.file(), new.file());
    let mut check = Check {
        old: Spans::of(old_file),
        new: Spans::of(new_file),
        found: Vec::new(),
    };
    if old_file.package() != new_file.package() {
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
    for (name, (old_path, old_message)) in &old_messages {
        if let Some((new_path, new_message)) = new_messages.get(name) {
            check.message(name, old_message, old_path, new_message, new_path);
        }
    }
    let old_enums = enums(old_file);
    let new_enums = enums(new_file);
    for (name, (old_path, old_enum)) in &old_enums {
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

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

/// Source positions of one file's elements, by descriptor path.
struct Spans<'a> {
    file: &'a str,
    by_path: HashMap<&'a [i32], (u32, u32)>,
}

impl<'a> Spans<'a> {
    fn of(file: &'a FileDescriptorProto) -> Self {
        let by_path = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter(|l| l.span.len() >= 3)
            .map(|l| {
                (
                    l.path.as_slice(),
                    (l.span[0] as u32 + 1, l.span[1] as u32 + 1),
                )
            })
            .collect();
        Spans {
            file: file.name(),
            by_path,
        }
    }

    fn at(&self, path: &[i32]) -> Option<Location> {
        self.by_path.get(path).map(|&(line, column)| Location {
            file: self.file.to_owned(),
            line,
            column,
        })
    }
}

struct Check<'a> {
    old: Spans<'a>,
    new: Spans<'a>,
    found: Vec<Finding>,
}

fn join(path: &[i32], more: &[i32]) -> Path {
    let mut joined = path.to_vec();
    joined.extend_from_slice(more);
    joined
}

impl Check<'_> {
    fn add(
        &mut self,
        rule: Rule,
        element: String,
        message: String,
        new_path: &[i32],
        old_path: &[i32],
        hint: String,
    ) {
        self.found.push(Finding {
            location: self.new.at(new_path),
            rule,
            element,
            message,
            previous: self.old.at(old_path),
            hint,
        });
    }

    fn message(
        &mut self,
        name: &str,
        old: &DescriptorProto,
        old_path: &[i32],
        new: &DescriptorProto,
        new_path: &[i32],
    ) {
        let reserved_number = |n: i32| {
            new.reserved_range
                .iter()
                .any(|r| r.start() <= n && n < r.end())
        };
        let reserved_name = |s: &str| new.reserved_name.iter().any(|r| r == s);
        for (i, field) in old.field.iter().enumerate() {
            let old_field_path = join(old_path, &[2, i as i32]);
            let element = format!("{name}.{}", field.name());
            let Some((j, current)) = new
                .field
                .iter()
                .enumerate()
                .find(|(_, f)| f.number() == field.number())
            else {
                if !reserved_number(field.number()) {
                    self.add(
                        Rule::FieldNoDeleteUnlessNumberReserved,
                        element.clone(),
                        format!("field {} `{}` was deleted without reserving its number, so a new field could reuse it and misread old data", field.number(), field.name()),
                        new_path,
                        &old_field_path,
                        format!("add `reserved {};` to message {}", field.number(), short(name)),
                    );
                }
                if !reserved_name(field.name()) {
                    self.add(
                        Rule::FieldNoDeleteUnlessNameReserved,
                        element,
                        format!("field `{}` was deleted without reserving its name, so a new field could reuse it in JSON", field.name()),
                        new_path,
                        &old_field_path,
                        format!("add `reserved \"{}\";` to message {}", field.name(), short(name)),
                    );
                }
                continue;
            };
            let path = join(new_path, &[2, j as i32]);
            self.field(&element, field, current, old, new, &path, &old_field_path);
        }
        for (r, range) in old.reserved_range.iter().enumerate() {
            let (start, end) = (range.start(), range.end());
            if !(start..end).all(reserved_number) {
                self.add(
                    Rule::ReservedMessageNoDelete,
                    name.to_owned(),
                    format!("reserved {} un-reserved", numbers_text(start, end)),
                    new_path,
                    &join(old_path, &[9, r as i32]),
                    format!("keep `reserved {};`", range_text(start, end)),
                );
            }
        }
        for (r, reserved) in old.reserved_name.iter().enumerate() {
            if !reserved_name(reserved) {
                self.add(
                    Rule::ReservedMessageNoDelete,
                    name.to_owned(),
                    format!("reserved name `{reserved}` was un-reserved"),
                    new_path,
                    &join(old_path, &[10, r as i32]),
                    format!("keep `reserved \"{reserved}\";`"),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field(
        &mut self,
        element: &str,
        old: &FieldDescriptorProto,
        new: &FieldDescriptorProto,
        old_message: &DescriptorProto,
        new_message: &DescriptorProto,
        path: &[i32],
        old_path: &[i32],
    ) {
        let (old_type, new_type) = (type_text(old), type_text(new));
        let keep = format!(
            "keep `{old_type} {} = {};`; to change it, add a new field with a new number and reserve this one",
            old.name(),
            old.number()
        );
        if wire_group(old) != wire_group(new)
            || (is_message(old) && old.type_name() != new.type_name())
        {
            self.add(
                Rule::FieldWireCompatibleType,
                element.to_owned(),
                format!("the type changed from {old_type} to {new_type}, which old readers decode wrongly or not at all"),
                path,
                old_path,
                keep,
            );
        } else if json_group(old) != json_group(new) {
            self.add(
                Rule::FieldWireJsonCompatibleType,
                element.to_owned(),
                format!("the type changed from {old_type} to {new_type}: the same bytes, but another JSON form"),
                path,
                old_path,
                keep,
            );
        }
        let repeated = |f: &FieldDescriptorProto| f.label() == Label::Repeated;
        if repeated(old) != repeated(new) {
            let (rule, why) = if is_length_delimited(old) {
                (
                    Rule::FieldWireJsonCompatibleCardinality,
                    "JSON readers expect an array or a single value, not either",
                )
            } else {
                (
                    Rule::FieldWireCompatibleCardinality,
                    "old readers misread the packed encoding",
                )
            };
            self.add(
                rule,
                element.to_owned(),
                format!("the field changed between singular and repeated: {why}"),
                path,
                old_path,
                format!(
                    "keep it {}; add a new field for the other cardinality",
                    if repeated(old) {
                        "repeated"
                    } else {
                        "singular"
                    }
                ),
            );
        }
        if (old.label() == Label::Required) != (new.label() == Label::Required) {
            self.add(
                Rule::FieldSameRequiredness,
                element.to_owned(),
                "the field changed to or from `required`: readers of one version reject messages of the other".into(),
                path,
                old_path,
                "never add or remove `required`; use optional fields".into(),
            );
        }
        let (old_oneof, new_oneof) = (oneof_of(old, old_message), oneof_of(new, new_message));
        if old_oneof != new_oneof {
            let describe =
                |o: Option<&str>| o.map_or("no oneof".to_owned(), |o| format!("oneof `{o}`"));
            self.add(
                Rule::FieldSameOneof,
                element.to_owned(),
                format!("the field moved from {} to {}: setting it can now clear (or no longer clears) other fields", describe(old_oneof), describe(new_oneof)),
                path,
                old_path,
                "leave the field where it was; add a new field in the new place".into(),
            );
        }
        if old.json_name() != new.json_name() {
            self.add(
                Rule::FieldSameJsonName,
                element.to_owned(),
                format!(
                    "the JSON name changed from `{}` to `{}` (renamed to `{}`)",
                    old.json_name(),
                    new.json_name(),
                    new.name()
                ),
                path,
                old_path,
                format!(
                    "keep the name `{}`, or set `json_name = \"{}\"`",
                    old.name(),
                    old.json_name()
                ),
            );
        }
    }

    fn enumeration(
        &mut self,
        name: &str,
        old: &EnumDescriptorProto,
        old_path: &[i32],
        new: &EnumDescriptorProto,
        new_path: &[i32],
    ) {
        let reserved_number = |n: i32| {
            new.reserved_range
                .iter()
                .any(|r| r.start() <= n && n <= r.end())
        };
        let reserved_name = |s: &str| new.reserved_name.iter().any(|r| r == s);
        for (i, value) in old.value.iter().enumerate() {
            let old_value_path = join(old_path, &[2, i as i32]);
            let element = qualify(name, value.name());
            match new
                .value
                .iter()
                .enumerate()
                .find(|(_, v)| v.number() == value.number())
            {
                None => {
                    if !reserved_number(value.number()) {
                        self.add(
                            Rule::EnumValueNoDeleteUnlessNumberReserved,
                            element.clone(),
                            format!(
                                "value {} `{}` was deleted without reserving its number",
                                value.number(),
                                value.name()
                            ),
                            new_path,
                            &old_value_path,
                            format!("add `reserved {};` to enum {}", value.number(), short(name)),
                        );
                    }
                    if !reserved_name(value.name()) {
                        self.add(
                            Rule::EnumValueNoDeleteUnlessNameReserved,
                            element,
                            format!("value `{}` was deleted without reserving its name, which JSON uses", value.name()),
                            new_path,
                            &old_value_path,
                            format!("add `reserved \"{}\";` to enum {}", value.name(), short(name)),
                        );
                    }
                }
                Some((j, current)) if current.name() != value.name() => self.add(
                    Rule::EnumValueSameName,
                    element,
                    format!(
                        "value {} was renamed from `{}` to `{}`, which JSON readers do not know",
                        value.number(),
                        value.name(),
                        current.name()
                    ),
                    &join(new_path, &[2, j as i32]),
                    &old_value_path,
                    format!("keep the name `{}`", value.name()),
                ),
                Some(_) => {}
            }
        }
        for (r, range) in old.reserved_range.iter().enumerate() {
            let (start, end) = (range.start(), range.end());
            if !(start..=end).all(reserved_number) {
                self.add(
                    Rule::ReservedEnumNoDelete,
                    name.to_owned(),
                    format!("reserved {} un-reserved", numbers_text(start, end + 1)),
                    new_path,
                    &join(old_path, &[4, r as i32]),
                    format!("keep `reserved {};`", range_text(start, end + 1)),
                );
            }
        }
        for (r, reserved) in old.reserved_name.iter().enumerate() {
            if !reserved_name(reserved) {
                self.add(
                    Rule::ReservedEnumNoDelete,
                    name.to_owned(),
                    format!("reserved name `{reserved}` was un-reserved"),
                    new_path,
                    &join(old_path, &[5, r as i32]),
                    format!("keep `reserved \"{reserved}\";`"),
                );
            }
        }
    }
}

fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// `start..end` (end exclusive) as .proto writes it.
fn range_text(start: i32, end: i32) -> String {
    if end - start == 1 {
        start.to_string()
    } else {
        format!("{start} to {}", end - 1)
    }
}

/// "number 2 was" / "numbers 2 to 5 were", for messages.
fn numbers_text(start: i32, end: i32) -> String {
    if end - start == 1 {
        format!("number {start} was")
    } else {
        format!("numbers {} were", range_text(start, end))
    }
}

fn is_message(f: &FieldDescriptorProto) -> bool {
    matches!(f.r#type(), Type::Message | Type::Group)
}

fn is_length_delimited(f: &FieldDescriptorProto) -> bool {
    matches!(
        f.r#type(),
        Type::String | Type::Bytes | Type::Message | Type::Group
    )
}

fn oneof_of<'a>(field: &FieldDescriptorProto, message: &'a DescriptorProto) -> Option<&'a str> {
    field
        .oneof_index
        .filter(|_| !field.proto3_optional())
        .and_then(|i| message.oneof_decl.get(i as usize))
        .map(|o| o.name())
}

fn type_text(f: &FieldDescriptorProto) -> String {
    match f.r#type() {
        Type::Message | Type::Group | Type::Enum => {
            f.type_name().trim_start_matches('.').to_owned()
        }
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Types that read each other's binary encoding.
fn wire_group(f: &FieldDescriptorProto) -> u8 {
    match f.r#type() {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool | Type::Enum => 0,
        Type::Sint32 | Type::Sint64 => 1,
        Type::Fixed32 | Type::Sfixed32 => 2,
        Type::Fixed64 | Type::Sfixed64 => 3,
        Type::String | Type::Bytes => 4,
        Type::Float => 5,
        Type::Double => 6,
        Type::Message | Type::Group => 7,
    }
}

/// Types with the same proto3 JSON form.
fn json_group(f: &FieldDescriptorProto) -> u8 {
    match f.r#type() {
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => 0,
        Type::Uint32 | Type::Fixed32 => 1,
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => 2,
        Type::Uint64 | Type::Fixed64 => 3,
        Type::Bool => 4,
        Type::Enum => 5,
        Type::String => 6,
        Type::Bytes => 7,
        Type::Float | Type::Double => 8,
        Type::Message | Type::Group => 9,
    }
}
