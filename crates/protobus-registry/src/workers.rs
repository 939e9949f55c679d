//! Where schemas are compiled and checked: threads of their own with a
//! large stack, at most [`Limits::workers`] at once, each answered within
//! [`Limits::work_timeout`]. A panic in the work becomes an error for its
//! request alone.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use tracing::error;

use crate::Error;
use crate::limits::Limits;

/// Stack of each worker thread: the compiler recurses per nesting level.
pub(crate) const STACK_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Workers {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl Workers {
    pub(crate) fn new(limits: &Limits) -> Self {
        Workers {
            permits: Arc::new(Semaphore::new(limits.workers.max(1))),
            timeout: limits.work_timeout,
        }
    }

    /// Runs `job` on a worker. Past the deadline the request is answered;
    /// the job still holds its worker until it ends, so work that outlives
    /// its caller cannot pile up beyond the pool.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        job: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + self.timeout;
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::timed_out(what, self.timeout))?
            .map_err(|_| Error::internal("the worker pool is closed"))?;
        let (done, result) = oneshot::channel();
        std::thread::Builder::new()
            .name("registry-worker".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let outcome = catch_panic(what, job);
                drop(permit);
                let _ = done.send(outcome);
            })
            .map_err(|e| Error::internal(format!("starting a worker: {e}")))?;
        match tokio::time::timeout_at(deadline, result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(Error::internal(format!("{what} ended without a result"))),
            Err(_) => Err(Error::timed_out(what, self.timeout)),
        }
    }
}

/// Runs `job`, turning a panic into an internal error (logged with its message).
pub(crate) fn catch_panic<T>(
    what: &str,
    job: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    std::panic::catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
        let message = panic_message(&*panic);
        error!(work = what, panic = %message, "a registry worker panicked");
        Err(Error::internal(format!("{what} failed unexpectedly")))
    })
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(timeout: Duration) -> Workers {
        Workers::new(&Limits {
            workers: 1,
            work_timeout: timeout,
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error_for_its_request_alone() {
        let workers = workers(Duration::from_secs(5));
        let err = workers
            .run("panicking", || -> Result<(), Error> { panic!("boom") })
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (500, 500));
        assert_eq!(workers.run("next", || Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn work_past_its_deadline_is_answered_and_keeps_its_worker() {
        let workers = workers(Duration::from_millis(100));
        let err = workers
            .run("sleeping", || {
                std::thread::sleep(Duration::from_millis(400));
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (500, 50002));
        // The one worker is still busy: the next job times out waiting for it.
        let err = workers.run("queued", || Ok(())).await.unwrap_err();
        assert_eq!(err.code(), 50002);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(workers.run("after", || Ok(())).await.is_ok());
    }
}
