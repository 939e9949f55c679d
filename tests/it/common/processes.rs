//! `protobus` processes a test starts, and addresses for them.

use super::kafka::bootstrap_servers;

/// An address on 127.0.0.1 that was free a moment ago, for a process that
/// binds it itself.
pub fn free_address() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    probe.local_addr().expect("local address")
}

/// A `protobus` process started by a test, killed when the test ends.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `protobus` binary with `args` against the test broker.
pub fn protobus(args: &[&str]) -> Process {
    Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_protobus"))
            .args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start protobus"),
    )
}

/// Waits until `url` answers a GET with success (a service a test started
/// is up); fails the test after 60 s.
pub async fn wait_for_http(url: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(std::time::Instant::now() < deadline, "{url} did not answer");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The JSON a GET of `url` answers (a test's read of a service it started).
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}
