//! The state's fold: ids, versions, references and what frees a schema.

use super::*;

/// `schema`, compiled without references.
pub(crate) fn stored(schema: &str) -> Arc<Stored> {
    let resolved = Resolved {
        references: Vec::new(),
        dependencies: Vec::new(),
    };
    Arc::new(Stored::compile(schema.into(), resolved, usize::MAX).unwrap())
}

/// Version 1 of `subject`: `schema`, with id `id`.
pub(crate) fn record(subject: &str, id: i32, schema: &str) -> Record {
    Record::version(subject, 1, id, schema, Vec::new(), false)
}

fn write(state: &mut State, subject: &str, id: i32, schema: &str) {
    state
        .apply(record(subject, id, schema), Some(stored(schema)))
        .unwrap();
}

/// Writes `record`, compiling its schema against the state as the
/// registry does.
fn apply(state: &mut State, record: Record) {
    let compiled = state
        .to_compile(&record, 10)
        .unwrap()
        .map(|(schema, resolved)| Arc::new(Stored::compile(schema, resolved, usize::MAX).unwrap()));
    state.apply(record, compiled).unwrap();
}

fn delete(state: &mut State, subject: &str) {
    delete_version(state, subject, 1);
}

fn delete_version(state: &mut State, subject: &str, version: i32) {
    let record = Record::Schema {
        subject: subject.into(),
        version,
        value: None,
    };
    state.apply(record, None).unwrap();
}

const ORDER: &str = "syntax = \"proto3\"; package p; message Order { string id = 1; }";
const ORDER_SPACED: &str =
    "syntax = \"proto3\";\npackage p;\n\nmessage Order {\n  string id = 1;\n}\n";
const PAYMENT: &str = "syntax = \"proto3\"; package p; message Payment { string id = 1; }";

#[test]
fn an_equal_schema_is_found_by_its_identity_whichever_subject_holds_it() {
    let mut state = State::default();
    write(&mut state, "orders", 1, ORDER);
    write(&mut state, "payments", 2, PAYMENT);
    write(&mut state, "orders-copy", 1, ORDER);
    for normalize in [false, true] {
        assert_eq!(state.same_schema(&stored(ORDER), normalize), Some(1));
        assert_eq!(state.same_schema(&stored(PAYMENT), normalize), Some(2));
    }
    assert_eq!(
        state.same_schema(&stored(ORDER_SPACED), true),
        Some(1),
        "normalized, the layout does not count"
    );
    let other = "syntax = \"proto3\"; package p; message Order { string id = 2; }";
    assert_eq!(state.same_schema(&stored(other), true), None);
}

#[test]
fn a_schema_is_freed_with_the_last_version_that_names_it() {
    let mut state = State::default();
    write(&mut state, "orders", 1, ORDER);
    write(&mut state, "orders-copy", 1, ORDER);
    let cost = state.total_bytes;
    delete(&mut state, "orders");
    assert!(state.schemas.contains_key(&1), "another version names it");
    assert_eq!(state.same_schema(&stored(ORDER), false), Some(1));
    assert_eq!(state.total_bytes, cost);
    delete(&mut state, "orders-copy");
    assert!(!state.schemas.contains_key(&1));
    assert_eq!(state.same_schema(&stored(ORDER), false), None);
    assert_eq!(state.total_bytes, 0);
    delete(&mut state, "orders-copy");
    assert_eq!(
        state.total_bytes, 0,
        "a delete of what is gone changes nothing"
    );
}

const MONEY: &str = "syntax = \"proto3\"; package m; message Money { int64 units = 1; }";
const LINE: &str =
    "syntax = \"proto3\"; package l; import \"money.proto\"; message Line { m.Money price = 1; }";

fn money_reference() -> Vec<Reference> {
    vec![Reference {
        name: "money.proto".into(),
        subject: "money".into(),
        version: 1,
    }]
}

#[test]
fn the_versions_of_an_id_are_listed_by_subject_then_version_as_they_change() {
    let mut state = State::default();
    apply(&mut state, Record::version("b", 2, 1, ORDER, vec![], false));
    apply(
        &mut state,
        Record::version("a", 1, 2, PAYMENT, vec![], false),
    );
    apply(&mut state, Record::version("b", 1, 1, ORDER, vec![], false));
    apply(&mut state, Record::version("a", 2, 1, ORDER, vec![], false));
    let listed = |state: &State, deleted| state.versions_of_id(1, deleted);
    let pairs = |p: &[(&str, i32)]| {
        p.iter()
            .map(|&(s, v)| (s.to_owned(), v))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(&state, false),
        pairs(&[("a", 2), ("b", 1), ("b", 2)])
    );

    apply(&mut state, Record::version("b", 1, 1, ORDER, vec![], true));
    assert_eq!(
        listed(&state, false),
        pairs(&[("a", 2), ("b", 2)]),
        "soft-deleted"
    );
    assert_eq!(listed(&state, true), pairs(&[("a", 2), ("b", 1), ("b", 2)]));

    delete_version(&mut state, "b", 1);
    assert_eq!(
        listed(&state, true),
        pairs(&[("a", 2), ("b", 2)]),
        "deleted for good"
    );
    assert_eq!(state.versions_of_id(2, true), pairs(&[("a", 1)]));
    assert!(state.versions_of_id(3, true).is_empty());
}

#[test]
fn a_version_is_referenced_while_a_live_version_names_a_schema_importing_it() {
    let mut state = State::default();
    apply(
        &mut state,
        Record::version("money", 1, 1, MONEY, vec![], false),
    );
    apply(
        &mut state,
        Record::version("line", 1, 2, LINE, money_reference(), false),
    );
    apply(
        &mut state,
        Record::version("line-copy", 1, 2, LINE, money_reference(), false),
    );
    assert_eq!(state.referenced_by("money", 1), vec![2]);
    assert!(state.referenced_by("money", 2).is_empty());
    assert!(state.referenced_by("line", 1).is_empty());

    apply(
        &mut state,
        Record::version("line", 1, 2, LINE, money_reference(), true),
    );
    assert_eq!(
        state.referenced_by("money", 1),
        vec![2],
        "line-copy still lives"
    );
    apply(
        &mut state,
        Record::version("line-copy", 1, 2, LINE, money_reference(), true),
    );
    assert!(
        state.referenced_by("money", 1).is_empty(),
        "only soft-deleted versions name it"
    );

    delete(&mut state, "line");
    delete(&mut state, "line-copy");
    assert!(!state.schemas.contains_key(&2));
    apply(
        &mut state,
        Record::version("line", 2, 3, LINE, money_reference(), false),
    );
    assert_eq!(
        state.referenced_by("money", 1),
        vec![3],
        "the freed schema is gone"
    );
}
