//! The facts of a Protobus contract that every layer shares, written once:
//! how a subject is named, which field paths may be a key, which files make a contract and which Protobus
//! provides itself, where in a file something is, the closure of a file's
//! imports, the Rust names of handlers and their methods, and how topics are
//! provisioned.
//!
//! It sits below the builder (`protobus-build`), the checks
//! (`protobus-compat`), the runtime and the services, as `prost-types` sits
//! below prost's generator and runtime.

#![warn(missing_docs)]
mod closure;
#[cfg(feature = "compile")]
pub mod compile;
mod events;
mod files;
mod key;
mod location;
mod registered;
pub mod rust_names;
mod subject;
mod topics;

pub use closure::{Closure, TooManyImports};
pub use events::{
    ContractError, EVENT_OPTION, EventDeclaration, EventOption, EventTopic, declared_events,
    event_options, event_topics, is_topic_name,
};
pub use files::{OPTIONS_PROTO, OPTIONS_PROTO_NAME, PROTOBUS_DIR, WalkError, builtin, proto_files};
pub use key::{KeyKind, KeyPath, KeyPathError};
pub use location::Location;
pub use registered::{RegisteredContract, RegisteredError, declares_events};
pub use subject::{SubjectClash, SubjectNameStrategy, check_subjects};
pub use topics::{
    DEAD_LETTER_SUFFIX, DEFAULT_DEAD_LETTER_PARTITIONS, DEFAULT_PARTITIONS, ResolvedSettings,
    TOPIC_OPTION, TopicDeclaration, TopicError, TopicSettings, dead_letter_topic, declarations,
};

/// The field number of `(protobus.event)` on `MessageOptions`, as
/// `protobus/options.proto` declares it.
pub const EVENT_FIELD_NUMBER: i32 = 51234;

/// The full name of `name` declared in `scope` (a package or an enclosing
/// message): `shop.orders.v1` and `OrderPlaced` give `shop.orders.v1.OrderPlaced`.
pub fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}
