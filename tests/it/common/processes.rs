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
