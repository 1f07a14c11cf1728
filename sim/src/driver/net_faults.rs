//! Network faults in a deterministic run: the node's real native-protocol
//! transport runs in this process on loopback, and the drills use it.
//!
//! Invariant: only counts that do not depend on timing reach the event log
//! (connections that succeeded, frames refused), so runs stay reproducible.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use spine_actors::node::NodeHandle;
use spine_actors::transport::{NetworkConfig, Transports};
use spine_client::{Client, ClientConfig, Endpoint};
use spine_core::ids::MailboxId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IO_LIMIT: Duration = Duration::from_secs(20);

/// The in-process transport and one long-lived client.
pub(crate) struct Network {
    transports: Option<Transports>,
    addr: SocketAddr,
    client: Option<Client>,
    mailbox: MailboxId,
    password: String,
}

fn config() -> NetworkConfig {
    NetworkConfig {
        native_listen: "127.0.0.1:0".to_string(),
        quic_enabled: false,
        ..NetworkConfig::default()
    }
}

impl Network {
    pub(crate) async fn start(
        node: &NodeHandle,
        mailbox: MailboxId,
        password: String,
    ) -> anyhow::Result<Network> {
        let transports = Transports::start(node.clone(), &config()).await?;
        let addr = transports.native_addr().context("native listener")?;
        Ok(Network {
            transports: Some(transports),
            addr,
            client: None,
            mailbox,
            password,
        })
    }

    fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let endpoint = Endpoint::parse(&format!("native://{}", self.addr))?;
        let mut c = ClientConfig::new(endpoint, self.mailbox.clone(), self.password.clone());
        c.request_timeout = IO_LIMIT;
        c.connect_timeout = IO_LIMIT;
        Ok(c)
    }

    /// Restarts the transport after a node restart (the old one served the
    /// old node).
    pub(crate) async fn rebind(&mut self, node: &NodeHandle) -> anyhow::Result<()> {
        if let Some(t) = self.transports.take() {
            t.stop().await;
        }
        let mut c = config();
        c.native_listen = self.addr.to_string();
        let transports = Transports::start(node.clone(), &c).await?;
        self.transports = Some(transports);
        Ok(())
    }

    /// Drops every connection (the transport restarts) and checks that the
    /// long-lived client reconnects. Answers whether it did.
    pub(crate) async fn drop_connections(&mut self, node: &NodeHandle) -> anyhow::Result<bool> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.client_config()?).await?);
        }
        self.rebind(node).await?;
        let Some(client) = &self.client else {
            return Ok(false);
        };
        // The first call may see the dropped connection; the next reconnects.
        if client.ping().await.is_ok() {
            return Ok(true);
        }
        Ok(client.ping().await.is_ok())
    }

    /// `n` clients connect and authenticate at once, then leave. Answers
    /// how many succeeded.
    pub(crate) async fn reconnect_storm(&self, n: u32) -> anyhow::Result<u32> {
        let config = self.client_config()?;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let config = config.clone();
            tasks.spawn(async move {
                match Client::connect(config).await {
                    Ok(c) => {
                        let ok = c.ping().await.is_ok();
                        c.close().await;
                        ok
                    }
                    Err(_) => false,
                }
            });
        }
        let mut ok = 0;
        while let Some(done) = tasks.join_next().await {
            if matches!(done, Ok(true)) {
                ok += 1;
            }
        }
        Ok(ok)
    }

    /// Sends `n` frames of an unknown kind on a raw connection. Answers
    /// how many were refused with an answer frame before the server closed
    /// the connection (or all `n` were answered).
    pub(crate) async fn malformed(&self, n: u32) -> anyhow::Result<u32> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let mut out = Vec::with_capacity(n as usize * 20);
        for i in 0..n {
            out.extend_from_slice(&16u32.to_be_bytes()); // length after the prefix
            out.push(1); // version
            out.push(0x7E); // no such kind
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(&(u64::from(i) + 1).to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
        }
        let _ = stream.write_all(&out).await;
        let mut answered = 0;
        let mut buf = Vec::new();
        let read = async {
            let mut chunk = [0u8; 4096];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
                // Count whole frames.
                let mut at = 0;
                let mut frames = 0;
                while buf.len() >= at + 4 {
                    let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
                    let end = at + 4 + len as usize;
                    if buf.len() < end {
                        break;
                    }
                    frames += 1;
                    at = end;
                }
                answered = frames;
                if answered >= n {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(IO_LIMIT, read).await;
        Ok(answered)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(c) = self.client.take() {
            c.close().await;
        }
        if let Some(t) = self.transports.take() {
            t.stop().await;
        }
    }
}
