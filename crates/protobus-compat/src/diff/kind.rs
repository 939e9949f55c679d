//! The kinds of difference Confluent's checker names, what each means, and
//! what to do instead.

use std::fmt;

/// What changed, in Confluent's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum DifferenceKind {
    PackageChanged,
    MessageAdded,
    MessageRemoved,
    MessageMoved,
    EnumAdded,
    EnumRemoved,
    EnumConstAdded,
    EnumConstChanged,
    EnumConstRemoved,
    FieldAdded,
    FieldRemoved,
    FieldNameChanged,
    FieldKindChanged,
    FieldScalarKindChanged,
    FieldNamedTypeChanged,
    FieldNumericLabelChanged,
    FieldStringOrBytesLabelChanged,
    RequiredFieldAdded,
    RequiredFieldRemoved,
    OneofAdded,
    OneofRemoved,
    OneofFieldAdded,
    OneofFieldRemoved,
    MultipleFieldsMovedToOneof,
    FieldMovedToExistingOneof,
}

impl DifferenceKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [DifferenceKind; 25] = {
        use DifferenceKind::*;
        [
            PackageChanged,
            MessageAdded,
            MessageRemoved,
            MessageMoved,
            EnumAdded,
            EnumRemoved,
            EnumConstAdded,
            EnumConstChanged,
            EnumConstRemoved,
            FieldAdded,
            FieldRemoved,
            FieldNameChanged,
            FieldKindChanged,
            FieldScalarKindChanged,
            FieldNamedTypeChanged,
            FieldNumericLabelChanged,
            FieldStringOrBytesLabelChanged,
            RequiredFieldAdded,
            RequiredFieldRemoved,
            OneofAdded,
            OneofRemoved,
            OneofFieldAdded,
            OneofFieldRemoved,
            MultipleFieldsMovedToOneof,
            FieldMovedToExistingOneof,
        ]
    };

    /// Confluent's name for it, e.g. `FIELD_KIND_CHANGED`.
    pub fn name(self) -> &'static str {
        use DifferenceKind::*;
        match self {
            PackageChanged => "PACKAGE_CHANGED",
            MessageAdded => "MESSAGE_ADDED",
            MessageRemoved => "MESSAGE_REMOVED",
            MessageMoved => "MESSAGE_MOVED",
            EnumAdded => "ENUM_ADDED",
            EnumRemoved => "ENUM_REMOVED",
            EnumConstAdded => "ENUM_CONST_ADDED",
            EnumConstChanged => "ENUM_CONST_CHANGED",
            EnumConstRemoved => "ENUM_CONST_REMOVED",
            FieldAdded => "FIELD_ADDED",
            FieldRemoved => "FIELD_REMOVED",
            FieldNameChanged => "FIELD_NAME_CHANGED",
            FieldKindChanged => "FIELD_KIND_CHANGED",
            FieldScalarKindChanged => "FIELD_SCALAR_KIND_CHANGED",
            FieldNamedTypeChanged => "FIELD_NAMED_TYPE_CHANGED",
            FieldNumericLabelChanged => "FIELD_NUMERIC_LABEL_CHANGED",
            FieldStringOrBytesLabelChanged => "FIELD_STRING_OR_BYTES_LABEL_CHANGED",
            RequiredFieldAdded => "REQUIRED_FIELD_ADDED",
            RequiredFieldRemoved => "REQUIRED_FIELD_REMOVED",
            OneofAdded => "ONEOF_ADDED",
            OneofRemoved => "ONEOF_REMOVED",
            OneofFieldAdded => "ONEOF_FIELD_ADDED",
            OneofFieldRemoved => "ONEOF_FIELD_REMOVED",
            MultipleFieldsMovedToOneof => "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
            FieldMovedToExistingOneof => "FIELD_MOVED_TO_EXISTING_ONEOF",
        }
    }

    /// Whether a reader of the old schema can still read data of the new one
    /// with this change alone (Confluent's set of compatible changes).
    pub fn is_compatible(self) -> bool {
        use DifferenceKind::*;
        matches!(
            self,
            PackageChanged
                | MessageAdded
                | MessageMoved
                | EnumAdded
                | EnumRemoved
                | EnumConstAdded
                | EnumConstChanged
                | EnumConstRemoved
                | FieldAdded
                | FieldRemoved
                | FieldNameChanged
                | FieldStringOrBytesLabelChanged
                | OneofAdded
                | OneofRemoved
                | OneofFieldAdded
        )
    }

    /// One sentence saying what the change is, for error messages.
    pub fn description(self) -> &'static str {
        use DifferenceKind::*;
        match self {
            PackageChanged => "the package changed",
            MessageAdded => "a message was added",
            MessageRemoved => "a message was removed",
            MessageMoved => "a message moved to another position",
            EnumAdded => "an enum was added",
            EnumRemoved => "an enum was removed",
            EnumConstAdded => "an enum value was added",
            EnumConstChanged => "an enum value was renamed",
            EnumConstRemoved => "an enum value was removed",
            FieldAdded => "a field was added",
            FieldRemoved => "a field was removed",
            FieldNameChanged => "a field was renamed",
            FieldKindChanged => {
                "the kind of a field (scalar, message or map) differs from the old schema"
            }
            FieldScalarKindChanged => {
                "the scalar type of a field is not wire-compatible with its old type"
            }
            FieldNamedTypeChanged => {
                "the message type of a field differs from, or is incompatible with, its old type"
            }
            FieldNumericLabelChanged => "a numeric field changed between singular and repeated",
            FieldStringOrBytesLabelChanged => {
                "a string or bytes field changed between singular and repeated"
            }
            RequiredFieldAdded => "a required field was added",
            RequiredFieldRemoved => "a required field was removed",
            OneofAdded => "a oneof was added",
            OneofRemoved => "a oneof was removed",
            OneofFieldAdded => "a field was added to a oneof",
            OneofFieldRemoved => "a field was removed from a oneof",
            MultipleFieldsMovedToOneof => "more than one existing field moved into one oneof",
            FieldMovedToExistingOneof => {
                "an existing field moved into a oneof that already existed"
            }
        }
    }
}

impl DifferenceKind {
    /// What to do instead, for the kinds that break readers.
    pub fn hint(self) -> &'static str {
        use DifferenceKind::*;
        match self {
            MessageRemoved => {
                "keep the message (it may stop being used); move it to an import only if the import keeps its full name"
            }
            FieldKindChanged | FieldScalarKindChanged | FieldNamedTypeChanged => {
                "keep the field's type; add a new field with a new number for the new type and reserve the old one"
            }
            FieldNumericLabelChanged => {
                "keep the field singular or repeated as it was; add a new field for the other"
            }
            RequiredFieldAdded | RequiredFieldRemoved => {
                "never add or remove `required`; use optional fields"
            }
            OneofFieldRemoved => {
                "keep the field in the oneof; reserve it only after no writer sets it"
            }
            MultipleFieldsMovedToOneof | FieldMovedToExistingOneof => {
                "leave existing fields where they are; add new fields to the oneof instead"
            }
            _ => "this change is compatible on its own",
        }
    }
}

/// One change between two schemas: what changed, and where (`#/Message/3`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Difference {
    /// What changed.
    pub kind: DifferenceKind,
    /// Confluent's path: `#/` then message names, oneof names and numbers.
    pub path: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.path)
    }
}
