//! Waiting in a test for something another task or process does.

use std::time::{Duration, Instant};

/// Waits until `done` holds, looking every 50 ms; fails the test after 60 s,
/// naming `what` it waited for.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
