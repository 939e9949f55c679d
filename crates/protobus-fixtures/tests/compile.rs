//! Compile tests of generated handler traits: a complete handler compiles,
//! one that misses an event type's method fails with an error naming it.

#[test]
fn handlers_must_implement_every_event_type_of_their_topic() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/compile/complete_handler.rs");
    cases.compile_fail("tests/compile/missing_handler_method.rs");
}
