//! Differences between two Protobuf schemas, named and judged as Confluent
//! Schema Registry's Protobuf provider names and judges them.
//!
//! Messages and enums are matched by name, fields by number, oneofs by name;
//! map fields are compared as `map<K, V>` (their synthetic entry messages are
//! not types of their own), and proto3 `optional` is a label, not a oneof.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto};

use protobus_contract::qualify;

use crate::Schema;

mod kind;

pub use kind::{Difference, DifferenceKind};

/// Every difference from `original` to `update`, each once, in a stable order.
pub fn diff(original: &Schema, update: &Schema) -> Vec<Difference> {
    let sides = [Side::new(original), Side::new(update)];
    let mut ctx = Context {
        sides: &sides,
        path: Vec::new(),
        in_progress: HashSet::new(),
        found: BTreeSet::new(),
    };
    let (o, u) = (original.file(), update.file());
    if o.package() != u.package() {
        ctx.add(DifferenceKind::PackageChanged);
    }
    ctx.compare_type_elements(
        [o.package(), u.package()],
        [&o.message_type, &u.message_type],
        [&o.enum_type, &u.enum_type],
    );
    ctx.found.into_iter().collect()
}

/// Where each named type of one schema (and its imports) is defined.
struct Side<'a> {
    schema: &'a Schema,
    types: HashMap<String, TypeInfo<'a>>,
}

#[derive(Clone, Copy)]
struct TypeInfo<'a> {
    package: &'a str,
    file: &'a str,
    def: TypeDef<'a>,
}

#[derive(Clone, Copy)]
enum TypeDef<'a> {
    Message(&'a DescriptorProto),
    Enum,
}

impl<'a> Side<'a> {
    fn new(schema: &'a Schema) -> Self {
        let mut types = HashMap::new();
        for file in schema.files() {
            let info = |def| TypeInfo {
                package: file.package(),
                file: file.name(),
                def,
            };
            let mut pending: Vec<(String, &DescriptorProto)> = Vec::new();
            for message in &file.message_type {
                pending.push((qualify(file.package(), message.name()), message));
            }
            for enumeration in &file.enum_type {
                types.insert(
                    qualify(file.package(), enumeration.name()),
                    info(TypeDef::Enum),
                );
            }
            while let Some((name, message)) = pending.pop() {
                for nested in &message.nested_type {
                    pending.push((qualify(&name, nested.name()), nested));
                }
                for enumeration in &message.enum_type {
                    types.insert(qualify(&name, enumeration.name()), info(TypeDef::Enum));
                }
                types.insert(name, info(TypeDef::Message(message)));
            }
        }
        Side { schema, types }
    }

    fn get(&self, type_name: &str) -> Option<TypeInfo<'a>> {
        self.types
            .get(type_name.strip_prefix('.').unwrap_or(type_name))
            .copied()
    }

    /// Registry identity of the file a type comes from: the schema itself,
    /// a (subject, version) reference, or unknown (e.g. a well-known type).
    fn origin(&self, info: &TypeInfo<'_>) -> Option<(String, i32)> {
        if info.file == self.schema.file().name() {
            Some((String::new(), -1))
        } else {
            self.schema.reference(info.file).cloned()
        }
    }

    fn field_type(&self, field: &FieldDescriptorProto) -> FieldType {
        match field.r#type() {
            Type::Message | Type::Group | Type::Enum => match self.get(field.type_name()) {
                Some(TypeInfo {
                    def: TypeDef::Enum, ..
                }) => FieldType::Enum,
                Some(TypeInfo {
                    def: TypeDef::Message(entry),
                    ..
                }) if is_map_entry(entry) => {
                    let key = entry.field.iter().find(|f| f.number() == 1);
                    let value = entry.field.iter().find(|f| f.number() == 2);
                    match (key, value) {
                        (Some(key), Some(value)) => FieldType::Map(
                            Box::new(self.field_type(key)),
                            Box::new(self.field_type(value)),
                        ),
                        _ => FieldType::Message(field.type_name().to_owned()),
                    }
                }
                _ => FieldType::Message(field.type_name().to_owned()),
            },
            scalar => FieldType::Scalar(scalar),
        }
    }
}

#[derive(Debug, Clone)]
enum FieldType {
    Scalar(Type),
    Enum,
    Message(String),
    Map(Box<FieldType>, Box<FieldType>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Map,
    Message,
}

impl FieldType {
    fn kind(&self) -> Kind {
        match self {
            FieldType::Scalar(_) | FieldType::Enum => Kind::Scalar,
            FieldType::Map(..) => Kind::Map,
            FieldType::Message(_) => Kind::Message,
        }
    }

    /// The groups within which a scalar may change type and stay readable.
    fn scalar_group(&self) -> u8 {
        match self {
            FieldType::Enum => 0,
            FieldType::Scalar(t) => match t {
                Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool => 0,
                Type::Sint32 | Type::Sint64 => 1,
                Type::String | Type::Bytes => 2,
                Type::Fixed32 | Type::Sfixed32 => 3,
                Type::Fixed64 | Type::Sfixed64 => 4,
                Type::Float => 5,
                Type::Double => 6,
                Type::Group | Type::Message | Type::Enum => 7,
            },
            _ => 7,
        }
    }
}

struct Context<'s, 'a> {
    sides: &'s [Side<'a>; 2],
    path: Vec<String>,
    /// Messages being compared up the stack, so that recursive types end.
    in_progress: HashSet<String>,
    found: BTreeSet<Difference>,
}

impl Context<'_, '_> {
    fn add(&mut self, kind: DifferenceKind) {
        self.found.insert(Difference {
            kind,
            path: format!("#/{}", self.path.join("/")),
        });
    }

    fn scoped(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self)) {
        self.path.push(segment.into());
        f(self);
        self.path.pop();
    }

    fn compare_type_elements(
        &mut self,
        scopes: [&str; 2],
        messages: [&[DescriptorProto]; 2],
        enums: [&[EnumDescriptorProto]; 2],
    ) {
        // Only messages count for positions (as in the message indexes of the wire format).
        let by_name = |list: &[DescriptorProto]| -> BTreeMap<String, (usize, usize)> {
            list.iter()
                .enumerate()
                .filter(|(_, m)| !is_map_entry(m))
                .enumerate()
                .map(|(position, (at, m))| (m.name().to_owned(), (position, at)))
                .collect()
        };
        let (o, u) = (by_name(messages[0]), by_name(messages[1]));
        let names: BTreeSet<&String> = o.keys().chain(u.keys()).collect();
        for name in names {
            self.scoped(name.clone(), |ctx| match (o.get(name), u.get(name)) {
                (Some(_), None) => ctx.add(DifferenceKind::MessageRemoved),
                (None, Some(_)) => ctx.add(DifferenceKind::MessageAdded),
                (Some(&(op, oi)), Some(&(up, ui))) => {
                    ctx.compare_messages(
                        [&qualify(scopes[0], name), &qualify(scopes[1], name)],
                        [&messages[0][oi], &messages[1][ui]],
                    );
                    if op != up {
                        ctx.add(DifferenceKind::MessageMoved);
                    }
                }
                (None, None) => {}
            });
        }

        let by_name = |list: &[EnumDescriptorProto]| -> BTreeMap<String, usize> {
            list.iter()
                .enumerate()
                .map(|(i, e)| (e.name().to_owned(), i))
                .collect()
        };
        let (o, u) = (by_name(enums[0]), by_name(enums[1]));
        let names: BTreeSet<&String> = o.keys().chain(u.keys()).collect();
        for name in names {
            self.scoped(name.clone(), |ctx| match (o.get(name), u.get(name)) {
                (Some(_), None) => ctx.add(DifferenceKind::EnumRemoved),
                (None, Some(_)) => ctx.add(DifferenceKind::EnumAdded),
                (Some(&oi), Some(&ui)) => ctx.compare_enums(&enums[0][oi], &enums[1][ui]),
                (None, None) => {}
            });
        }
    }

    fn compare_enums(&mut self, original: &EnumDescriptorProto, update: &EnumDescriptorProto) {
        let by_number = |e: &EnumDescriptorProto| -> BTreeMap<i32, String> {
            e.value
                .iter()
                .map(|v| (v.number(), v.name().to_owned()))
                .collect()
        };
        let (o, u) = (by_number(original), by_number(update));
        let numbers: BTreeSet<i32> = o.keys().chain(u.keys()).copied().collect();
        for number in numbers {
            self.scoped(number.to_string(), |ctx| {
                match (o.get(&number), u.get(&number)) {
                    (Some(_), None) => ctx.add(DifferenceKind::EnumConstRemoved),
                    (None, Some(_)) => ctx.add(DifferenceKind::EnumConstAdded),
                    (Some(a), Some(b)) if a != b => ctx.add(DifferenceKind::EnumConstChanged),
                    _ => {}
                }
            });
        }
    }

    fn compare_messages(&mut self, full_names: [&str; 2], messages: [&DescriptorProto; 2]) {
        let [original, update] = messages;
        if self.in_progress.insert(full_names[0].to_owned()) {
            self.compare_fields_of(original, update);
            self.in_progress.remove(full_names[0]);
        }
        self.compare_type_elements(
            full_names,
            [&original.nested_type, &update.nested_type],
            [&original.enum_type, &update.enum_type],
        );
    }

    fn compare_fields_of(&mut self, original: &DescriptorProto, update: &DescriptorProto) {
        let o = Members::of(original);
        let u = Members::of(update);
        let mut o_top = o.top_level.clone();

        // Fields that moved into a oneof: several into one oneof, or one into a
        // oneof that already had fields, change what a reader sees.
        for (oneof, fields) in &u.oneofs {
            let mut moved = 0;
            let mut existing = 0;
            for field in fields {
                if o_top.remove(&field.number()).is_some() {
                    moved += 1;
                } else if o.oneof_of.contains_key(&field.number()) {
                    existing += 1;
                }
            }
            self.scoped(oneof.clone(), |ctx| {
                if moved > 1 {
                    ctx.add(DifferenceKind::MultipleFieldsMovedToOneof);
                } else if moved == 1 && existing > 0 {
                    ctx.add(DifferenceKind::FieldMovedToExistingOneof);
                }
            });
        }

        let names: BTreeSet<&String> = o.oneofs.keys().chain(u.oneofs.keys()).collect();
        for name in names {
            self.scoped(name.clone(), |ctx| {
                match (o.oneofs.get(name), u.oneofs.get(name)) {
                    (Some(_), None) => ctx.add(DifferenceKind::OneofRemoved),
                    (None, Some(_)) => ctx.add(DifferenceKind::OneofAdded),
                    (Some(of), Some(uf)) => ctx.compare_oneofs(of, uf, &u.all),
                    (None, None) => {}
                }
            });
        }

        let numbers: BTreeSet<i32> = o_top.keys().chain(u.top_level.keys()).copied().collect();
        for number in numbers {
            self.scoped(number.to_string(), |ctx| {
                match (o_top.get(&number), u.top_level.get(&number)) {
                    (Some(of), None) if of.label() == Label::Required => {
                        ctx.add(DifferenceKind::RequiredFieldRemoved)
                    }
                    (Some(_), None) => ctx.add(DifferenceKind::FieldRemoved),
                    (None, Some(uf)) if uf.label() == Label::Required => {
                        ctx.add(DifferenceKind::RequiredFieldAdded)
                    }
                    (None, Some(_)) => ctx.add(DifferenceKind::FieldAdded),
                    (Some(of), Some(uf)) => ctx.compare_fields(of, uf),
                    (None, None) => {}
                }
            });
        }

        // Fields whose oneof membership changed are compared by number too.
        for (number, of) in &o.all {
            let Some(uf) = u.all.get(number) else {
                continue;
            };
            let (om, um) = (o.oneof_of.get(number), u.oneof_of.get(number));
            let same_place = match (om, um) {
                (None, None) => true,
                (Some(a), Some(b)) => a == b,
                _ => false,
            };
            if !same_place {
                self.scoped(number.to_string(), |ctx| ctx.compare_fields(of, uf));
            }
        }
    }

    fn compare_oneofs(
        &mut self,
        original: &[&FieldDescriptorProto],
        update: &[&FieldDescriptorProto],
        update_all: &BTreeMap<i32, &FieldDescriptorProto>,
    ) {
        let by_number = |fields: &[&FieldDescriptorProto]| -> BTreeMap<i32, FieldDescriptorProto> {
            fields.iter().map(|f| (f.number(), (*f).clone())).collect()
        };
        let (o, u) = (by_number(original), by_number(update));
        let numbers: BTreeSet<i32> = o.keys().chain(u.keys()).copied().collect();
        for number in numbers {
            self.scoped(number.to_string(), |ctx| {
                match (o.get(&number), u.get(&number)) {
                    // A field that left the oneof but still exists moved; it was not removed.
                    (Some(_), None) if !update_all.contains_key(&number) => {
                        ctx.add(DifferenceKind::OneofFieldRemoved)
                    }
                    (None, Some(_)) => ctx.add(DifferenceKind::OneofFieldAdded),
                    (Some(of), Some(uf)) => ctx.compare_fields(of, uf),
                    _ => {}
                }
            });
        }
    }

    fn compare_fields(&mut self, original: &FieldDescriptorProto, update: &FieldDescriptorProto) {
        if original.name() != update.name() {
            self.add(DifferenceKind::FieldNameChanged);
        }
        let o = self.sides[0].field_type(original);
        let u = self.sides[1].field_type(update);
        let kinds_match = o.kind() == u.kind();
        self.compare_types(&o, &u);

        let repeated = |f: &FieldDescriptorProto| f.label() == Label::Repeated;
        if kinds_match && o.kind() == Kind::Scalar && repeated(original) != repeated(update) {
            // Length-delimited values read as one or many; varints and fixed do not.
            if matches!(o, FieldType::Scalar(Type::String | Type::Bytes)) {
                self.add(DifferenceKind::FieldStringOrBytesLabelChanged);
            } else {
                self.add(DifferenceKind::FieldNumericLabelChanged);
            }
        }
    }

    fn compare_types(&mut self, original: &FieldType, update: &FieldType) {
        if original.kind() != update.kind() {
            self.add(DifferenceKind::FieldKindChanged);
            return;
        }
        match (original, update) {
            (FieldType::Map(ok, ov), FieldType::Map(uk, uv)) => {
                self.compare_types(ok, uk);
                self.compare_types(ov, uv);
            }
            (FieldType::Message(o), FieldType::Message(u)) => self.compare_message_types(o, u),
            _ => {
                if original.scalar_group() != update.scalar_group() {
                    self.add(DifferenceKind::FieldScalarKindChanged);
                }
            }
        }
    }

    fn compare_message_types(&mut self, original: &str, update: &str) {
        let (o_side, u_side) = (&self.sides[0], &self.sides[1]);
        let (Some(o), Some(u)) = (o_side.get(original), u_side.get(update)) else {
            if original != update {
                self.add(DifferenceKind::FieldNamedTypeChanged);
            }
            return;
        };
        let local = |name: &str, package: &str| -> String {
            let name = name.strip_prefix('.').unwrap_or(name);
            match name.strip_prefix(package).and_then(|n| n.strip_prefix('.')) {
                Some(local) if !package.is_empty() => local.to_owned(),
                _ => name.to_owned(),
            }
        };
        let (o_local, u_local) = (local(original, o.package), local(update, u.package));
        if o_local != u_local {
            self.add(DifferenceKind::FieldNamedTypeChanged);
            return;
        }
        // Types from the same place (this schema, or one subject version) are
        // compared where they are defined; others are compared here.
        let (o_origin, u_origin) = (o_side.origin(&o), u_side.origin(&u));
        if o_origin.is_some() && o_origin == u_origin {
            return;
        }
        let (TypeDef::Message(om), TypeDef::Message(um)) = (o.def, u.def) else {
            return;
        };
        let mut sub = Context {
            sides: self.sides,
            path: o_local.split('.').map(str::to_owned).collect(),
            in_progress: std::mem::take(&mut self.in_progress),
            found: BTreeSet::new(),
        };
        sub.compare_messages([original.trim_start_matches('.'), update], [om, um]);
        self.in_progress = sub.in_progress;
        let incompatible = sub.found.iter().any(|d| !d.kind.is_compatible());
        self.found.extend(sub.found);
        if incompatible {
            self.add(DifferenceKind::FieldNamedTypeChanged);
        }
    }
}

/// The fields of one message: outside oneofs, by oneof, and all, by number.
struct Members<'a> {
    top_level: BTreeMap<i32, &'a FieldDescriptorProto>,
    oneofs: BTreeMap<String, Vec<&'a FieldDescriptorProto>>,
    oneof_of: BTreeMap<i32, String>,
    all: BTreeMap<i32, &'a FieldDescriptorProto>,
}

impl<'a> Members<'a> {
    fn of(message: &'a DescriptorProto) -> Self {
        let mut members = Members {
            top_level: BTreeMap::new(),
            oneofs: BTreeMap::new(),
            oneof_of: BTreeMap::new(),
            all: BTreeMap::new(),
        };
        for field in &message.field {
            members.all.insert(field.number(), field);
            // proto3 `optional` is a synthetic oneof: a label, not a oneof.
            let oneof = field
                .oneof_index
                .filter(|_| !field.proto3_optional())
                .and_then(|i| message.oneof_decl.get(i as usize));
            match oneof {
                Some(oneof) => {
                    members
                        .oneofs
                        .entry(oneof.name().to_owned())
                        .or_default()
                        .push(field);
                    members
                        .oneof_of
                        .insert(field.number(), oneof.name().to_owned());
                }
                None => {
                    members.top_level.insert(field.number(), field);
                }
            }
        }
        members
    }
}

fn is_map_entry(message: &DescriptorProto) -> bool {
    message.options.as_ref().is_some_and(|o| o.map_entry())
}
