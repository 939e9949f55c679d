//! Several members of one consumer, each on a task of its own: a member
//! decodes and handles its partitions on one task, so a consumer of several
//! uses as many cores (the group spreads the partitions among them).

use std::any::Any;
use std::future::Future;
use std::pin::pin;

use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tracing::error;

use crate::consumer::Dispatch;
use crate::consumer::member::Member;
use crate::error::Error;

/// How the members ended: the first error (the others are logged), or the
/// first panic, raised again once every member stopped.
#[derive(Default)]
struct Ended {
    error: Option<Error>,
    panic: Option<Box<dyn Any + Send>>,
}

impl Ended {
    fn add(&mut self, ended: Result<Result<(), Error>, JoinError>) {
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(err)) if self.error.is_none() => self.error = Some(err),
            Ok(Err(err)) => error!(error = %err, "another member of the consumer failed too"),
            Err(join) if join.is_panic() => {
                self.panic.get_or_insert(join.into_panic());
            }
            // Cancelled: only as the runtime shuts down (a dropped `run`
            // aborts them without looking at how they ended).
            Err(_) => {}
        }
    }
}

/// Runs `members` until `shutdown` resolves or one of them ends; the others
/// then stop as at shutdown (drain, commit, leave).
pub(super) async fn run<D: Dispatch + 'static>(
    members: Vec<Member<D>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (stop, stopped) = watch::channel(false);
    // Dropped with `run`, it aborts the members still running.
    let mut running = JoinSet::new();
    for member in members {
        let mut stopped = stopped.clone();
        running.spawn(member.run(async move {
            // An error only once `stop` is gone, as `run` is dropped.
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }
    let mut ended = Ended::default();
    tokio::select! {
        () = pin!(shutdown) => {}
        Some(first) = running.join_next() => ended.add(first),
    }
    let _ = stop.send(true);
    while let Some(member) = running.join_next().await {
        ended.add(member);
    }
    if let Some(panic) = ended.panic {
        std::panic::resume_unwind(panic);
    }
    ended.error.map_or(Ok(()), Err)
}
