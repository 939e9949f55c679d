//! The comparisons behind the wire rules: messages, their fields, oneofs
//! and reserved ranges, and enums, old against new.

use super::*;

pub(super) struct Check<'a> {
    pub(super) old: Spans<'a>,
    pub(super) new: Spans<'a>,
    pub(super) found: Vec<Finding>,
}

fn join(path: &[i32], more: &[i32]) -> Path {
    let mut joined = path.to_vec();
    joined.extend_from_slice(more);
    joined
}

impl Check<'_> {
    pub(super) fn add(
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

    pub(super) fn message(
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

    pub(super) fn enumeration(
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
