//! Log lines of a test, captured as JSON for assertions.
//!
//! Every test of this binary shares its process, so a capture is scoped: the
//! test runs on a runtime of its own whose threads (workers and blocking
//! ones) log into the capture, and no other test's lines get in.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;

thread_local! {
    /// The capture this runtime thread logs into, for the thread's life.
    static SCOPED: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// JSON log lines at a filter, for the test run by [`CapturedLogs::run`].
#[derive(Clone)]
pub struct CapturedLogs {
    lines: Lines,
    dispatch: Dispatch,
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// A capture of the lines `filter` (an `EnvFilter` directive) lets through.
    pub fn new(filter: &str) -> Self {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish();
        CapturedLogs {
            lines,
            dispatch: Dispatch::new(subscriber),
        }
    }

    /// Runs `test` to its end on a two-worker runtime whose threads log here.
    pub fn run<F: Future>(&self, test: F) -> F::Output {
        let dispatch = self.dispatch.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                let guard = tracing::dispatcher::set_default(&dispatch);
                SCOPED.with(|scoped| *scoped.borrow_mut() = Some(guard));
            })
            .on_thread_stop(|| SCOPED.with(|scoped| drop(scoped.borrow_mut().take())))
            .build()
            .expect("a runtime for the test");
        tracing::dispatcher::with_default(&self.dispatch, || runtime.block_on(test))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.0.lock().unwrap_or_else(|e| e.into_inner()))
            .into_owned()
    }

    pub fn json(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
