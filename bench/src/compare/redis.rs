//! Redis as a peer: `redis-server` on 127.0.0.1 with the append-only file
//! on `appendfsync always` (and no RDB snapshots), driven through the
//! `redis` crate.
//!
//! The queue is a Redis Stream `bench` with one consumer group `bench`: a
//! producer `XADD`s (its reply, under `appendfsync always`, comes after the
//! AOF is fsynced: Redis fsyncs before it answers the event loop's
//! writes), a consumer `XREADGROUP`s up to 512 entries, then `XACK`s them.
//! Each producer is one multiplexed connection, so a window of `XADD`s is
//! pipelined on it; each consumer has its own connection (its blocking
//! read must not hold up anyone else's).
//!
//! Invariant: the server listens only on 127.0.0.1 and writes only inside
//! its own directory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands as _, Value};

use super::process::{free_port, Server};
use super::workload::{BoxFuture, Inbox, Peer, Publish};

const STREAM: &str = "bench";
const GROUP: &str = "bench";
const FIELD: &str = "b";

/// The server's arguments (also checked by a test).
pub(crate) fn server_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--dir",
        &dir.display().to_string(),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Starts `redis-server` in `dir`; returns the server and its address.
pub(crate) async fn start(binary: &Path, dir: &Path) -> anyhow::Result<(Server, SocketAddr)> {
    let port = free_port()?;
    let mut cmd = Command::new(binary);
    cmd.args(server_args(port, dir));
    Server::start_listening(
        "redis-server",
        cmd,
        &dir.join("server.log"),
        port,
        Duration::from_secs(30),
    )
    .await
}

/// A started Redis with the stream and group created.
#[derive(Debug)]
pub(crate) struct Redis {
    client: redis::Client,
}

impl Redis {
    /// Creates the stream and its consumer group (from the end: a group
    /// created again on a used stream only sees new entries).
    pub(crate) async fn setup(addr: SocketAddr) -> anyhow::Result<Redis> {
        let client = redis::Client::open(format!("redis://{addr}/"))?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .context("connecting")?;
        let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(STREAM, GROUP, "$").await;
        if let Err(e) = created {
            anyhow::ensure!(e.to_string().contains("BUSYGROUP"), "XGROUP CREATE: {e}");
        }
        Ok(Redis { client })
    }
}

struct Producer {
    conn: MultiplexedConnection,
}

impl Publish for Producer {
    fn publish(&self, body: Bytes) -> BoxFuture<Result<(), String>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let r: redis::RedisResult<String> = redis::cmd("XADD")
                .arg(STREAM)
                .arg("*")
                .arg(FIELD)
                .arg(&body[..])
                .query_async(&mut conn)
                .await;
            r.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// Receives and acknowledges until the inbox says stop.
async fn consume(mut conn: MultiplexedConnection, name: String, inbox: Inbox) {
    let options = StreamReadOptions::default()
        .group(GROUP, &name)
        .count(512)
        .block(100);
    while inbox.running() {
        let reply: redis::RedisResult<Option<StreamReadReply>> =
            conn.xread_options(&[STREAM], &[">"], &options).await;
        let reply = match reply {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                inbox.error(format!("XREADGROUP: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut ids = Vec::new();
        for key in reply.keys {
            for entry in key.ids {
                match entry.map.get(FIELD) {
                    Some(Value::BulkString(b)) => inbox.received(b),
                    _ => inbox.error(format!("entry {} has no body", entry.id)),
                }
                ids.push(entry.id);
            }
        }
        if !ids.is_empty() {
            let acked: redis::RedisResult<usize> = conn.xack(STREAM, GROUP, &ids).await;
            if let Err(e) = acked {
                inbox.error(format!("XACK: {e}"));
            }
        }
    }
}

impl Peer for Redis {
    fn producer(&self) -> BoxFuture<anyhow::Result<Box<dyn Publish>>> {
        let client = self.client.clone();
        Box::pin(async move {
            let conn = client.get_multiplexed_async_connection().await?;
            Ok(Box::new(Producer { conn }) as Box<dyn Publish>)
        })
    }

    fn consumer(&self, index: usize, inbox: Inbox) -> BoxFuture<anyhow::Result<BoxFuture<()>>> {
        let client = self.client.clone();
        Box::pin(async move {
            let conn = client.get_multiplexed_async_connection().await?;
            Ok(Box::pin(consume(conn, format!("c{index}"), inbox)) as BoxFuture<()>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_binds_loopback_and_fsyncs_every_write() {
        let args = server_args(6400, Path::new("/tmp/r"));
        let pair = |k: &str| {
            args.iter()
                .position(|a| a == k)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        assert_eq!(pair("--bind").as_deref(), Some("127.0.0.1"));
        assert_eq!(pair("--appendonly").as_deref(), Some("yes"));
        assert_eq!(pair("--appendfsync").as_deref(), Some("always"));
        assert_eq!(pair("--save").as_deref(), Some(""));
        assert_eq!(pair("--dir").as_deref(), Some("/tmp/r"));
    }
}
