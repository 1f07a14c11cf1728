//! Spine as the subject of the comparison: `spine serve` on a fresh data
//! directory with only the native TCP listener (on 127.0.0.1; QUIC, MESH
//! and metrics off), driven by `spine-bench load`'s own producers and
//! consumers through `spine-client` (`load_bench::drive`).
//!
//! The demo directory's mailboxes `X26ABC1..` are senders and recipients
//! (one per consumer, so every message has a consumer); a send is
//! acknowledged by `SEND_OK`, which Spine gives only once the message is on
//! disk (`fdatasync` returned). Consumers take pushes, download and
//! acknowledge, as in `spine-bench load`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::{free_port, Server};

/// The demo directory's mailboxes (password `password`).
pub(crate) const DEMO_MAILBOXES: [&str; 3] = ["X26ABC1", "X26ABC2", "X26ABC3"];

/// `spine serve`'s arguments (also checked by a test).
pub(crate) fn serve_args(data_dir: &Path, port: u16) -> Vec<String> {
    [
        "serve",
        "--data-dir",
        &data_dir.display().to_string(),
        "--native-listen",
        &format!("127.0.0.1:{port}"),
        "--quic-enabled",
        "false",
        "--mesh-enabled",
        "false",
        "--metrics-enabled",
        "false",
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Starts `spine serve` in `dir`; returns the server and its native address.
pub(crate) async fn start(binary: &Path, dir: &Path) -> anyhow::Result<(Server, SocketAddr)> {
    let port = free_port()?;
    let mut cmd = Command::new(binary);
    cmd.args(serve_args(&dir.join("data"), port));
    Server::start_listening(
        "spine",
        cmd,
        &dir.join("server.log"),
        port,
        Duration::from_secs(60),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spine_serves_only_native_tcp_on_loopback() {
        let args = serve_args(Path::new("/d"), 7777).join(" ");
        assert!(args.starts_with("serve --data-dir /d"));
        assert!(args.contains("--native-listen 127.0.0.1:7777"));
        for off in [
            "--quic-enabled false",
            "--mesh-enabled false",
            "--metrics-enabled false",
        ] {
            assert!(args.contains(off), "{off}");
        }
    }
}
