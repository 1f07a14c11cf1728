//! RabbitMQ as a peer: Debian's `rabbitmq-server` started by this tool as
//! a foreground process with everything in a fresh directory, and our own
//! `epmd`, both on 127.0.0.1; driven through `lapin`.
//!
//! The queue `bench` is a durable **quorum** queue (a Raft log, fsynced
//! before a publisher confirm). Each producer is its own connection and
//! channel in confirm mode; a publish is acknowledged by its publisher
//! confirm (a nack is a failed publish). Consumers have a prefetch of 1,000
//! and `basic.ack` each delivery.
//!
//! Invariants:
//! - Nothing binds beyond loopback: `epmd -address 127.0.0.1` (ours,
//!   on a free port, found through `ERL_EPMD_PORT`), the AMQP listener
//!   (`RABBITMQ_NODE_IP_ADDRESS`), and Erlang distribution
//!   (`inet_dist_use_interface`). No plugins (no management listener).
//! - `/usr/sbin/rabbitmq-server` is Debian's wrapper that `su`s to the
//!   rabbitmq user and drops the environment, so the server's own script
//!   (`/usr/lib/rabbitmq/bin/rabbitmq-server`) is what runs; `--rabbitmq-server`
//!   given the wrapper is mapped to it. The script execs `beam.smp` as its
//!   child in our process group: stopping the group stops both.
//! - epmd is started and stopped by its own pid, after the broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::process::{free_port, Server};
use super::workload::{BoxFuture, Inbox, Peer, Publish};

const QUEUE: &str = "bench";

/// The broker and its epmd; dropped or stopped broker first.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) broker: Server,
    pub(crate) epmd: Server,
}

impl Running {
    /// Stops the broker, then epmd, each by the pid we started.
    pub(crate) fn stop(&mut self) -> String {
        let broker = self.broker.stop(Duration::from_secs(30));
        let epmd = self.epmd.stop(Duration::from_secs(5));
        format!("broker {broker}; epmd {epmd}")
    }
}

/// The script to run for a given `--rabbitmq-server` (Debian's `su`
/// wrapper mapped to the real script next to it).
pub(crate) fn script(binary: &Path) -> PathBuf {
    let real = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
    let wrapper = std::fs::read_link(binary)
        .map(|t| t.ends_with("rabbitmq-script-wrapper"))
        .unwrap_or(false);
    if wrapper && real.exists() {
        real.to_owned()
    } else {
        binary.to_owned()
    }
}

/// The environment of the broker process.
pub(crate) fn broker_env(dir: &Path, amqp: u16, dist: u16, epmd: u16) -> Vec<(String, String)> {
    let d = |sub: &str| dir.join(sub).display().to_string();
    [
        ("HOME", dir.display().to_string()),
        ("ERL_EPMD_PORT", epmd.to_string()),
        ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
        ("RABBITMQ_NODENAME", "spinebench@localhost".to_owned()),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".to_owned()),
        ("RABBITMQ_NODE_PORT", amqp.to_string()),
        ("RABBITMQ_DIST_PORT", dist.to_string()),
        ("RABBITMQ_MNESIA_BASE", d("mnesia")),
        ("RABBITMQ_LOG_BASE", d("log")),
        ("RABBITMQ_PID_FILE", d("rabbit.pid")),
        ("RABBITMQ_CONFIG_FILE", d("rabbitmq")),
        ("RABBITMQ_ADVANCED_CONFIG_FILE", d("advanced.config")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins")),
        ("RABBITMQ_ENABLED_PLUGINS", String::new()),
        (
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Most attempts to start the broker when a port it was given was taken
/// in the meantime (see [`lost_a_port`]).
const START_ATTEMPTS: usize = 3;

/// Whether a failed start's log says one of its ports was taken: the ports
/// are found free, then handed to the broker, and an outgoing connection
/// may take one of them from the same ephemeral range in between (seen
/// once: `dist_port_already_used`).
pub(crate) fn lost_a_port(log: &str) -> bool {
    log.contains("dist_port_already_used") || log.contains("eaddrinuse")
}

/// Starts epmd and the broker in `dir` on fresh ports, again with other
/// ports if one was taken meanwhile; returns them and the AMQP address.
pub(crate) async fn start(
    binary: &Path,
    epmd_binary: &Path,
    dir: &Path,
) -> anyhow::Result<(Running, SocketAddr)> {
    let mut attempt = 1;
    loop {
        match start_once(binary, epmd_binary, dir).await {
            Err(e) if attempt < START_ATTEMPTS && lost_a_port(&format!("{e:#}")) => {
                eprintln!("compare: rabbitmq-server lost a port to another process; starting it again with other ports");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn start_once(
    binary: &Path,
    epmd_binary: &Path,
    dir: &Path,
) -> anyhow::Result<(Running, SocketAddr)> {
    let (epmd_port, amqp, dist) = (free_port()?, free_port()?, free_port()?);
    let mut cmd = Command::new(epmd_binary);
    cmd.args(["-address", "127.0.0.1", "-port", &epmd_port.to_string()]);
    let mut epmd = Server::spawn("epmd", cmd, &dir.join("epmd.log"))?;
    epmd.wait_listening(
        SocketAddr::from(([127, 0, 0, 1], epmd_port)),
        Duration::from_secs(10),
    )
    .await?;
    std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
    let mut cmd = Command::new(script(binary));
    cmd.current_dir(dir)
        .envs(broker_env(dir, amqp, dist, epmd_port));
    let broker = Server::spawn("rabbitmq-server", cmd, &dir.join("server.log"))?;
    let mut running = Running { broker, epmd };
    let addr = SocketAddr::from(([127, 0, 0, 1], amqp));
    running
        .broker
        .wait_listening(addr, Duration::from_secs(120))
        .await?;
    Ok((running, addr))
}

/// The version from the package's directory name, if found.
pub(crate) fn version() -> Option<String> {
    let dir = std::fs::read_dir("/usr/lib/rabbitmq/lib").ok()?;
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|n| {
            n.strip_prefix("rabbitmq_server-")
                .map(|v| format!("RabbitMQ {v}"))
        })
}

/// A started broker with the quorum queue declared.
#[derive(Debug)]
pub(crate) struct Rabbit {
    uri: String,
}

async fn connect(uri: &str) -> anyhow::Result<Connection> {
    Connection::connect(uri, ConnectionProperties::default())
        .await
        .context("AMQP connect")
}

impl Rabbit {
    /// Declares the quorum queue.
    pub(crate) async fn setup(addr: SocketAddr) -> anyhow::Result<Rabbit> {
        let uri = format!("amqp://guest:guest@{addr}/%2f");
        let conn = connect(&uri).await?;
        let channel = conn.create_channel().await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        channel
            .queue_declare(QUEUE.into(), QueueDeclareOptions::durable(), args)
            .await
            .context("declaring the quorum queue")?;
        let _ = conn.close(200, "setup done".into()).await;
        Ok(Rabbit { uri })
    }
}

struct Producer {
    channel: Channel,
    // Keeps the connection open as long as the producer lives.
    _conn: Connection,
}

impl Publish for Producer {
    fn publish(&self, body: Bytes) -> BoxFuture<Result<(), String>> {
        let channel = self.channel.clone();
        Box::pin(async move {
            let confirm = channel
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .map_err(|e| e.to_string())?;
            let confirmation = confirm.await.map_err(|e| e.to_string())?;
            if confirmation.is_ack() {
                Ok(())
            } else {
                Err("publisher confirm: nack".to_owned())
            }
        })
    }
}

impl Peer for Rabbit {
    fn producer(&self) -> BoxFuture<anyhow::Result<Box<dyn Publish>>> {
        let uri = self.uri.clone();
        Box::pin(async move {
            let conn = connect(&uri).await?;
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok(Box::new(Producer {
                channel,
                _conn: conn,
            }) as Box<dyn Publish>)
        })
    }

    fn consumer(&self, index: usize, inbox: Inbox) -> BoxFuture<anyhow::Result<BoxFuture<()>>> {
        let uri = self.uri.clone();
        Box::pin(async move {
            let conn = connect(&uri).await?;
            let channel = conn.create_channel().await?;
            channel.basic_qos(1000, BasicQosOptions::default()).await?;
            let mut deliveries = channel
                .basic_consume(
                    QUEUE.into(),
                    format!("c{index}").into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok(Box::pin(async move {
                let _keep = (conn, channel);
                while inbox.running() {
                    match tokio::time::timeout(Duration::from_millis(100), deliveries.next()).await
                    {
                        Ok(Some(Ok(delivery))) => {
                            inbox.received(&delivery.data);
                            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                                inbox.error(format!("basic.ack: {e}"));
                            }
                        }
                        Ok(Some(Err(e))) => {
                            inbox.error(format!("delivery: {e}"));
                            break;
                        }
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
            }) as BoxFuture<()>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_retried_only_when_a_port_was_taken() {
        // The line RabbitMQ 3.10 logged when its distribution port had been
        // taken between `free_port` and its start.
        let taken = "rabbitmq-server exited (exit status: 0) before listening on 127.0.0.1:38079: \
            {{shutdown,{failed_to_start_child,prelaunch,{dist_port_already_used,34215,not_erlang,\"localhost\"}}}";
        assert!(lost_a_port(taken));
        assert!(lost_a_port("{listen_error,eaddrinuse}"));
        assert!(!lost_a_port(
            "rabbitmq-server did not listen on 127.0.0.1:5672 within 120 s"
        ));
        assert!(!lost_a_port("{error,eacces}"));
    }

    #[test]
    fn everything_the_broker_binds_is_loopback_and_inside_its_directory() {
        let env = broker_env(Path::new("/tmp/rmq"), 5700, 5701, 5702);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("RABBITMQ_NODE_IP_ADDRESS"), Some("127.0.0.1"));
        assert_eq!(get("ERL_EPMD_ADDRESS"), Some("127.0.0.1"));
        assert_eq!(get("ERL_EPMD_PORT"), Some("5702"));
        assert_eq!(get("RABBITMQ_NODE_PORT"), Some("5700"));
        assert!(get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS")
            .is_some_and(|v| v.contains("inet_dist_use_interface {127,0,0,1}")));
        for k in ["RABBITMQ_MNESIA_BASE", "RABBITMQ_LOG_BASE", "HOME"] {
            assert!(get(k).is_some_and(|v| v.starts_with("/tmp/rmq")), "{k}");
        }
    }

    #[test]
    fn a_plain_script_path_is_used_as_given() {
        assert_eq!(
            script(Path::new("/opt/rabbit/sbin/rabbitmq-server")),
            PathBuf::from("/opt/rabbit/sbin/rabbitmq-server")
        );
    }
}
