//! The registry's log: every change as a [`Record`], in order. The state is
//! a fold of the log ([`fold`] applies one record), so instances that read
//! one log hold one state, and a state can always be rebuilt from its log.
//!
//! Two logs implement [`Log`]: [`MemoryLog`] for the embedded default,
//! tests and demos, and [`KafkaLog`], a compacted topic in Confluent's
//! `_schemas` format, shared by every instance.

use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;

use crate::Error;
use crate::records::Record;
use crate::state::{State, Stored};
use crate::workers::catch_panic;

mod kafka;
mod memory;

pub(crate) use kafka::KafkaLog;
pub(crate) use memory::MemoryLog;

/// Why nothing of an append reached the log (most often another writer took
/// over): the writer takes over again and decides anew.
#[derive(Debug)]
pub(crate) struct NotAppended(pub(crate) String);

/// Where the registry's records go, and come back from into the state.
pub(crate) trait Log: Send + Sync + std::fmt::Debug {
    /// Makes this instance the log's writer and returns once the state holds
    /// every record appended before, so what is decided next sees them all.
    fn take_over(&self) -> BoxFuture<'_, Result<(), Error>>;

    /// Appends `records` as one unit, unless another writer appended since
    /// [`take_over`](Self::take_over); returns once the state holds them.
    /// `compiled` is the schema of a record that brings a new id, so it is
    /// not compiled twice.
    fn append(
        &self,
        records: Vec<Record>,
        compiled: Option<Arc<Stored>>,
    ) -> BoxFuture<'_, Result<Result<(), NotAppended>, Error>>;
}

/// Applies `record` to `state`. A schema the record brings is compiled
/// outside the state's lock, so reads never wait for a compile, unless
/// `compiled` holds it: a compile serves only the text and references it
/// was made from (an instance's write that did not commit may have picked
/// an id that another instance's record holds).
pub(crate) fn fold(
    state: &RwLock<State>,
    record: Record,
    compiled: Option<Arc<Stored>>,
) -> Result<(), Error> {
    let mut compiled = match &record {
        Record::Schema {
            value: Some(value), ..
        } => compiled.filter(|stored| {
            *stored.schema == *value.schema && stored.references == value.references
        }),
        _ => None,
    };
    if compiled.is_none() {
        let todo = state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .to_compile(&record, usize::MAX)?;
        if let Some((schema, resolved)) = todo {
            // What the log holds is kept, whatever this instance's limits:
            // every instance holds the same state.
            let stored = catch_panic("compiling a stored schema", || {
                Stored::compile(schema, resolved, usize::MAX)
            })?;
            compiled = Some(Arc::new(stored));
        }
    }
    state
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .apply(record, compiled)
}
