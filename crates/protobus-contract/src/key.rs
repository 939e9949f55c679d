//! Event keys: which field paths may be a key, and how a key's value becomes
//! the Kafka key's bytes. The builder generates `Event::key` from these rules
//! and the ingest service reads keys from payloads by them: one rule set, so
//! both put an event on the same partition.

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};

/// What the field at the end of a key path holds, which says how its value
/// becomes bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A string: its UTF-8 bytes; empty is no key.
    Text,
    /// Bytes as they are; empty is no key.
    Bytes,
    /// An integer or enum number, in decimal ASCII (`42`, `-7`).
    Number,
    /// `true` or `false`.
    Bool,
}

/// A key field path (`customer.id`) resolved in an event type: singular
/// fields, each but the last a message, the last a string, bytes, integer,
/// enum or bool, none in a oneof (which could leave the key unset).
#[derive(Debug, Clone)]
pub struct KeyPath {
    fields: Vec<FieldDescriptor>,
    kind: KeyKind,
}

/// Why a field path cannot be a key, said for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key field `{path}`{reason}")]
pub struct KeyPathError {
    path: String,
    reason: String,
}

impl KeyPath {
    /// Most fields a path may go through (a limit for paths read from the network).
    pub const MAX_DEPTH: usize = 64;

    /// Resolves `path` in `message`.
    pub fn resolve(message: &MessageDescriptor, path: &str) -> Result<Self, KeyPathError> {
        // About one segment (`key field `a.b`: `a` is …`) or the whole path
        // (`key field `a.b` is …`).
        let fail = |reason: String| KeyPathError {
            path: path.to_owned(),
            reason: format!(": {reason}"),
        };
        let whole = |reason: &str| KeyPathError {
            path: path.to_owned(),
            reason: format!(" {reason}"),
        };
        let segments: Vec<&str> = path.split('.').collect();
        if segments.len() > Self::MAX_DEPTH {
            return Err(whole(&format!(
                "is more than {} fields deep",
                Self::MAX_DEPTH
            )));
        }
        let mut current = message.clone();
        let mut fields = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let field = current.get_field_by_name(segment).ok_or_else(|| {
                let known: Vec<String> = current.fields().map(|f| f.name().to_owned()).collect();
                let known = known.join(", ");
                fail(format!(
                    "{} has no field `{segment}` (it has: {known})",
                    current.full_name()
                ))
            })?;
            if field.cardinality() == Cardinality::Repeated {
                return Err(fail(format!(
                    "`{segment}` is repeated; a key needs a single value"
                )));
            }
            if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
                return Err(fail(format!(
                    "`{segment}` is in a oneof, which may leave the key unset"
                )));
            }
            match field.kind() {
                Kind::Message(next) if !last => current = next,
                Kind::Message(_) => {
                    return Err(whole("is a message; name a scalar field inside it"));
                }
                _ if !last => return Err(fail(format!("`{segment}` is not a message"))),
                Kind::Double | Kind::Float => {
                    return Err(whole("is a floating-point number; use a string or integer"));
                }
                _ => {}
            }
            fields.push(field);
        }
        let kind = match fields.last().map(FieldDescriptor::kind) {
            Some(Kind::String) => KeyKind::Text,
            Some(Kind::Bytes) => KeyKind::Bytes,
            Some(Kind::Bool) => KeyKind::Bool,
            _ => KeyKind::Number,
        };
        Ok(KeyPath { fields, kind })
    }

    /// The fields from the event down to the key's.
    pub fn fields(&self) -> &[FieldDescriptor] {
        &self.fields
    }

    /// What the key's field holds.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
        OneofDescriptorProto,
    };

    use super::*;

    fn field(name: &str, number: i32, kind: Type, label: Label) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(kind as i32),
            label: Some(label as i32),
            json_name: Some(name.into()),
            ..Default::default()
        }
    }

    fn event() -> MessageDescriptor {
        let mut customer = DescriptorProto {
            name: Some("Customer".into()),
            field: vec![
                field("id", 1, Type::String, Label::Optional),
                field("score", 2, Type::Double, Label::Optional),
                field("vip", 3, Type::Bool, Label::Optional),
            ],
            ..Default::default()
        };
        customer.field[2].oneof_index = Some(0);
        customer.oneof_decl = vec![OneofDescriptorProto {
            name: Some("tier".into()),
            ..Default::default()
        }];
        let mut nested = field("customer", 2, Type::Message, Label::Optional);
        nested.type_name = Some(".t.Customer".into());
        let placed = DescriptorProto {
            name: Some("Placed".into()),
            field: vec![
                field("order_id", 1, Type::String, Label::Optional),
                nested,
                field("tags", 3, Type::String, Label::Repeated),
                field("number", 4, Type::Int64, Label::Optional),
            ],
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            message_type: vec![placed, customer],
            ..Default::default()
        };
        let pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
            .unwrap();
        pool.get_message_by_name("t.Placed").unwrap()
    }

    #[test]
    fn scalar_paths_through_singular_messages_are_keys() {
        let event = event();
        let id = KeyPath::resolve(&event, "customer.id").unwrap();
        assert_eq!(id.kind(), KeyKind::Text);
        let names: Vec<&str> = id.fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, ["customer", "id"]);
        assert_eq!(
            KeyPath::resolve(&event, "number").unwrap().kind(),
            KeyKind::Number
        );
    }

    #[test]
    fn other_paths_say_why_not() {
        let event = event();
        let why = |path: &str| KeyPath::resolve(&event, path).unwrap_err().to_string();
        assert_eq!(
            why("missing"),
            "key field `missing`: t.Placed has no field `missing` (it has: order_id, customer, tags, number)"
        );
        assert!(why("tags").contains("repeated"), "{}", why("tags"));
        assert!(why("customer").contains("is a message"));
        assert!(why("order_id.x").contains("`order_id` is not a message"));
        assert!(why("customer.score").contains("floating-point"));
        assert!(why("customer.vip").contains("oneof"));
        let deep = vec!["customer"; KeyPath::MAX_DEPTH + 1].join(".");
        assert!(why(&deep).ends_with("` is more than 64 fields deep"));
        assert_eq!(
            why("customer"),
            "key field `customer` is a message; name a scalar field inside it"
        );
    }
}
