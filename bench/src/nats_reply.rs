//! NATS request/reply as the yardstick for Spine's synchronous service
//! requests (`spine-bench request`): a core `nats-server` (no JetStream,
//! nothing on disk) on 127.0.0.1, responders that answer `pds.get` from
//! the same reference PDS state Spine's built-in provider holds
//! ([`ReferenceServices`], seeded alike, so each reply is the same JSON
//! patient), and clients that call `request("pds.get", body)`.
//!
//! Like with like, and where it is not: both are one request and one
//! response over a loopback TCP connection through a broker to a PDS
//! provider. Spine also checks the caller's accreditation, resolves the
//! interaction in the service directory and routes through its service
//! actor; NATS does none of that. The NATS responders run in this process
//! (`--nats-responders` connections in a queue group), as an external
//! provider would; Spine's reference provider runs inside the node.
//!
//! Invariants: the server listens on 127.0.0.1 only, runs in its own
//! process group from a fresh directory, and is stopped by the pid we
//! started (see `compare::process`), never by name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use spine_core::error_code::ErrorCode as _;
use spine_core::ids::OdsCode;
use spine_core::services::{Asid, Builtin, Caller, ReferenceConfig, ReferenceServices};
use spine_core::time::Timestamp;

use crate::compare::options::locate;
use crate::compare::process::{free_port, version, Server};

/// The subject PDS get requests go to.
pub(crate) const SUBJECT: &str = "pds.get";

/// A reply that is a refusal starts with this (a successful reply is a
/// patient object, which never does).
pub(crate) const ERROR_PREFIX: &[u8] = br#"{"error":"#;

/// Where `nats-server` is: the flag, then the copy `bench/compare.sh`
/// installs, then `PATH` and the sbin directories.
pub(crate) fn binary(given: Option<&Path>) -> Result<PathBuf, String> {
    locate(
        given,
        &[PathBuf::from("target/compare-tools/nats/bin/nats-server")],
        "nats-server",
    )
    .ok_or_else(|| {
        "nats-server not found (pass --nats-server, install Debian's nats-server, or run bench/compare.sh, which installs one)".to_owned()
    })
}

/// A running core NATS server with its responders.
#[derive(Debug)]
pub(crate) struct NatsReply {
    server: Server,
    url: String,
    responders: Vec<tokio::task::JoinHandle<()>>,
    version: Option<String>,
    // Holds the server's directory (its log) until it is stopped.
    _dir: tempfile::TempDir,
}

impl NatsReply {
    /// Starts `nats-server` and `responders` responder connections serving
    /// the first `patients` synthetic patients (seed as the node's default).
    pub(crate) async fn start(
        binary: &Path,
        responders: usize,
        patients: usize,
    ) -> anyhow::Result<NatsReply> {
        let dir = tempfile::tempdir().context("creating the nats-server directory")?;
        let port = free_port()?;
        let mut cmd = Command::new(binary);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        let (server, addr) = Server::start_listening(
            "nats-server",
            cmd,
            &dir.path().join("server.log"),
            port,
            Duration::from_secs(30),
        )
        .await?;
        let url = format!("nats://{addr}");
        let state = Arc::new(
            ReferenceServices::new(ReferenceConfig {
                patients: patients.max(1),
                ..ReferenceConfig::default()
            })
            .map_err(|e| anyhow::anyhow!("seeding the reference PDS: {e}"))?,
        );
        let caller = Caller {
            asid: Asid::parse("200000000001").map_err(anyhow::Error::msg)?,
            ods: OdsCode::parse("X26").map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        let mut tasks = Vec::new();
        for _ in 0..responders.max(1) {
            let client = async_nats::connect(&url)
                .await
                .context("responder connecting to nats-server")?;
            let sub = client
                .queue_subscribe(SUBJECT, "pds".to_owned())
                .await
                .map_err(|e| anyhow::anyhow!("responder subscribing: {e}"))?;
            // The subscription is registered once the server has the SUB.
            client
                .flush()
                .await
                .map_err(|e| anyhow::anyhow!("responder flushing: {e}"))?;
            tasks.push(tokio::spawn(respond(
                client,
                sub,
                Arc::clone(&state),
                caller.clone(),
            )));
        }
        Ok(NatsReply {
            version: version(binary),
            server,
            url,
            responders: tasks,
            _dir: dir,
        })
    }

    /// The server's version line.
    pub(crate) fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// `n` client connections.
    pub(crate) async fn clients(&self, n: usize) -> anyhow::Result<Vec<async_nats::Client>> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(
                async_nats::ConnectOptions::new()
                    .request_timeout(Some(Duration::from_secs(10)))
                    .connect(&self.url)
                    .await
                    .context("client connecting to nats-server")?,
            );
        }
        Ok(clients)
    }

    /// Stops the responders and the server (by its pid); says how it ended.
    pub(crate) fn stop(mut self) -> String {
        for t in &self.responders {
            t.abort();
        }
        self.server.stop(Duration::from_secs(5))
    }
}

/// One responder: answers each request with the patient (or an error
/// object with the refusal's code), in arrival order.
async fn respond(
    client: async_nats::Client,
    mut sub: async_nats::Subscriber,
    state: Arc<ReferenceServices>,
    caller: Caller,
) {
    while let Some(msg) = sub.next().await {
        let Some(reply) = msg.reply else { continue };
        let body = match state.handle(Builtin::Pds, "get", &caller, &msg.payload, Timestamp::ZERO) {
            Ok(handled) => handled.response,
            Err(e) => Bytes::from(format!(r#"{{"error":"{}"}}"#, e.code())),
        };
        if client.publish(reply, body).await.is_err() {
            return;
        }
    }
}
