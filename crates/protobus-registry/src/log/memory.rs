//! A log kept in this process: the embedded default, tests and demos.

use std::sync::{Arc, Mutex, RwLock};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

use super::{Log, NotAppended, fold};
use crate::Error;
use crate::records::Record;
use crate::state::{State, Stored};

/// Records kept in a `Vec`, applied to the state as they are appended.
/// The registry lets one write in at a time, so nobody else can append
/// between a take-over and an append.
#[derive(Debug)]
pub(crate) struct MemoryLog {
    state: Arc<RwLock<State>>,
    records: Mutex<Vec<Record>>,
}

impl MemoryLog {
    pub(crate) fn new(state: Arc<RwLock<State>>) -> Self {
        MemoryLog {
            state,
            records: Mutex::default(),
        }
    }

    /// Every record appended so far, in order.
    #[cfg(test)]
    pub(crate) fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

impl Log for MemoryLog {
    fn take_over(&self) -> BoxFuture<'_, Result<(), Error>> {
        std::future::ready(Ok(())).boxed()
    }

    fn append(
        &self,
        records: Vec<Record>,
        compiled: Option<Arc<Stored>>,
    ) -> BoxFuture<'_, Result<Result<(), NotAppended>, Error>> {
        let mut log = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let applied = records.into_iter().try_for_each(|record| {
            fold(&self.state, record.clone(), compiled.clone())?;
            log.push(record);
            Ok(())
        });
        std::future::ready(applied.map(Ok)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use protobus_compat::CompatibilityLevel;

    use super::*;
    use crate::registry::{Registry, SchemaInput, VersionSpec};
    use crate::{Limits, Reference};

    /// What a state holds, in a form two states can be compared by.
    fn contents(state: &State) -> impl PartialEq + std::fmt::Debug + use<> {
        let subjects: BTreeMap<_, _> = state
            .subjects
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    (format!("{:?}", s.versions), s.config, s.mode),
                )
            })
            .collect();
        let schemas: BTreeMap<_, _> = state
            .schemas
            .iter()
            .map(|(id, s)| (*id, (s.schema.to_string(), s.references.clone())))
            .collect();
        (
            subjects,
            schemas,
            state.global,
            state.max_id,
            state.total_bytes,
        )
    }

    fn proto(body: &str) -> SchemaInput {
        SchemaInput {
            schema: format!("syntax = \"proto3\";\n{body}"),
            schema_type: Some("PROTOBUF".to_owned()),
            ..SchemaInput::default()
        }
    }

    #[tokio::test]
    async fn the_state_is_the_fold_of_the_log() {
        let state = Arc::<RwLock<State>>::default();
        let log = Arc::new(MemoryLog::new(Arc::clone(&state)));
        let registry = Registry::with_log(state.clone(), log.clone(), Limits::default());

        let money = proto("package shop; message Money { int64 minor_units = 1; }");
        registry.register("money", &money, false).await.unwrap();
        let mut order =
            proto("package shop; import \"money.proto\"; message Order { shop.Money total = 1; }");
        order.references.push(Reference {
            name: "money.proto".to_owned(),
            subject: "money".to_owned(),
            version: -1,
        });
        registry
            .register("orders-value", &order, false)
            .await
            .unwrap();
        let v2 =
            proto("package shop; message Money { int64 minor_units = 1; string currency = 2; }");
        registry.register("money", &v2, false).await.unwrap();
        registry.register("copy", &v2, false).await.unwrap();
        registry
            .set_level(Some("money"), CompatibilityLevel::Full)
            .await
            .unwrap();
        registry
            .set_level(None, CompatibilityLevel::None)
            .await
            .unwrap();
        registry
            .delete_version("money", VersionSpec::Number(2), false)
            .await
            .unwrap();
        registry
            .set_mode(Some("money"), crate::registry::Mode::Readonly, false)
            .await
            .unwrap();
        registry.delete_subject("copy", false).await.unwrap();
        registry.delete_subject("copy", true).await.unwrap();

        let replayed = RwLock::new(State::default());
        for record in log.records() {
            fold(&replayed, record, None).unwrap();
        }
        let live = contents(&state.read().unwrap());
        assert_eq!(live, contents(&replayed.read().unwrap()));
        assert_eq!(
            registry.versions("money", true).unwrap(),
            vec![1, 2],
            "the fold kept the soft-deleted version"
        );
    }
}
