//! Bounds on what one request can make the registry do and hold.

use std::time::Duration;

/// Limits on schemas, references, stored bytes and the time work may take.
/// Each refusal is an error with Confluent's codes that names the limit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest schema text accepted, in bytes. Compiling takes about 400
    /// times the text's size for a moment (once per worker at most), and
    /// a compiled schema keeps about 25 times its text.
    pub max_schema_bytes: usize,
    /// Most files one schema may import through references, its imports'
    /// imports included.
    pub max_references: usize,
    /// Largest compiled schema kept (its text, descriptors and identity,
    /// imports included), in bytes.
    pub max_compiled_bytes: usize,
    /// Most bytes all registered schemas may take, compiled. Registrations
    /// beyond it are refused; reads and deletes go on.
    pub max_total_bytes: usize,
    /// Longest a request may wait for a compile or a compatibility check,
    /// queueing included; then it is answered with 50002.
    pub work_timeout: Duration,
    /// Compiles and compatibility checks that run at once, each on a thread
    /// of its own (never on the async workers that answer requests).
    pub workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_schema_bytes: 256 * 1024,
            max_references: 256,
            max_compiled_bytes: 16 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
            work_timeout: Duration::from_secs(10),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}
