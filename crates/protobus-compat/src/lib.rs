//! Protobuf schema compatibility, with the verdicts of Confluent Schema Registry.
//!
//! A [`Schema`] is one `.proto` file compiled together with the files it
//! imports (registry references, or the well-known types). [`diff`] lists the
//! [`Difference`]s between two schemas the way Confluent's Protobuf provider
//! names them (`FIELD_KIND_CHANGED #/Order/2`), and [`check`] applies a
//! [`CompatibilityLevel`] to a new schema and the versions before it.
//!
//! ```
//! use protobus_compat::{check, CompatibilityLevel, Schema};
//!
//! let v1 = Schema::compile("syntax = \"proto3\"; message Order { string id = 1; }", &[])?;
//! let v2 = Schema::compile("syntax = \"proto3\"; message Order { int64 id = 1; }", &[])?;
//! let verdict = check(CompatibilityLevel::Backward, &v2, &[&v1]);
//! assert!(!verdict.is_compatible());
//! assert_eq!(verdict.incompatibilities()[0].to_string(), "FIELD_SCALAR_KIND_CHANGED #/Order/1");
//! # Ok::<(), protobus_compat::Error>(())
//! ```

#![warn(missing_docs)]
mod bounds;
mod contract;
mod diff;
mod error;
mod identity;
mod level;
mod rule_table;
mod rules;
mod schema;
mod wire;

pub use bounds::MAX_NESTING;
pub use contract::{ConfluentFinding, Contract, FileReport, Report, Subject, compare};
pub use diff::{Difference, DifferenceKind, diff};
pub use error::Error;
pub use level::{CompatibilityLevel, Verdict, check};
pub use rule_table::rules_markdown;
pub use rules::{Accepted, ContractFinding, ContractRule};
pub use schema::{Dependency, Schema};
pub use wire::{Category, Finding, Location, Rule, moved_type_findings, wire_findings};
