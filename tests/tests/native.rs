//! Black-box tests of the native protocol: the real `spine serve` on
//! loopback, reached over plain TCP (`native://`), TLS (`natives://`) and
//! QUIC (`quic://`) through the `spine-client` library, raw sockets with
//! the `spine-protocol` codec (and hand-made bad frames), and the `spine`
//! client commands.
//!
//! Every test starts its own node on a fresh data directory with
//! OS-assigned ports (TCP and UDP), development certificates from
//! `spine certs dev` where TLS is needed, and metrics off; it stops the
//! node with SIGTERM and expects exit 0. Scenarios that make sense on
//! every transport are written once and run per transport
//! (`per_transport!`). Every wait is bounded: client requests by their
//! timeouts, raw socket operations by [`STEP`], each scenario by
//! [`SCENARIO_LIMIT`].

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use sha2::{Digest, Sha256};
use spine_client::{BatchItem, Client, ClientConfig, ClientError, Endpoint, SendHeader};
use spine_core::ids::{LocalId, MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::ErrorCode as _;
use spine_protocol::{
    ClientCodec, Flags, Frame, FrameCodec, FrameHeader, FrameKind, Password, Request, Response,
    WireError, WireErrorCode, HEADER_LEN, PROTOCOL_VERSION,
};
use spine_tests::{run, run_env, Finished, Spine};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The demo directory's password (every mailbox).
const PASSWORD: &str = "password";
/// Demo workflow: X26ABC1 sends, X26ABC2 receives.
const WORKFLOW: &str = "TEST_WORKFLOW";
/// Demo workflow: X26ABC1 sends, all three mailboxes receive.
const WORKFLOW_ALL: &str = "TEST_WORKFLOW2";
/// A well-formed message id no node in these tests ever issues.
const UNKNOWN_ID: &str = "20200601122152994285_D59900";
/// Bound on one raw socket operation or one awaited event.
const STEP: Duration = Duration::from_secs(20);
/// Bound on a whole scenario.
const SCENARIO_LIMIT: Duration = Duration::from_secs(100);
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Nodes, transports and clients
// ---------------------------------------------------------------------------

/// How a client reaches the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// `native://`: plain TCP.
    Tcp,
    /// `natives://`: TLS over TCP.
    Tls,
    /// `quic://`.
    Quic,
}

/// What TLS the node is served with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// No certificate: TCP speaks plain text, QUIC is off.
    Plain,
    /// A server certificate: TCP speaks TLS, QUIC runs.
    Tls,
    /// Server certificate and required client certificates.
    MutualTls,
}

/// A running `spine serve` with its data directory and certificates.
#[derive(Debug)]
struct Node {
    spine: Option<Spine>,
    _data: tempfile::TempDir,
    certs: Option<tempfile::TempDir>,
    native: SocketAddr,
    quic: Option<SocketAddr>,
}

/// Runs blocking harness code (process waits poll with `sleep`) without
/// stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Writes development certificates (`spine certs dev DIR`) into a new
/// temporary directory.
fn dev_certs() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let out = run(&["certs", "dev", path_str(dir.path())?])?;
    ensure!(
        out.code() == 0,
        "spine certs dev failed ({}): {}",
        out.code(),
        out.stderr
    );
    Ok(dir)
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 path")
}

/// The address after `scheme://` in a logged listen address.
fn logged_addr(logged: &Value, field: &str, scheme: &str) -> anyhow::Result<SocketAddr> {
    let shown = logged[field]
        .as_str()
        .with_context(|| format!("no {field} field in {logged}"))?;
    Ok(shown
        .strip_prefix(scheme)
        .with_context(|| format!("{field} is {shown:?}, expected {scheme}IP:PORT"))?
        .parse()?)
}

impl Node {
    /// The node a scenario on `t` needs: plain for TCP, TLS for TLS and
    /// QUIC.
    fn for_transport(t: Transport) -> anyhow::Result<Node> {
        Node::start_with(Node::security_for(t), &[])
    }

    fn security_for(t: Transport) -> Security {
        match t {
            Transport::Tcp => Security::Plain,
            Transport::Tls | Transport::Quic => Security::Tls,
        }
    }

    /// Serves a fresh data directory on the demo directory until ready.
    fn start(security: Security) -> anyhow::Result<Node> {
        Node::start_with(security, &[])
    }

    /// [`Node::start`] with extra `spine serve` flags.
    fn start_with(security: Security, extra: &[&str]) -> anyhow::Result<Node> {
        let data = tempfile::tempdir()?;
        let certs = match security {
            Security::Plain => None,
            Security::Tls | Security::MutualTls => Some(dev_certs()?),
        };
        let mut args: Vec<String> = [
            "serve",
            "--data-dir",
            path_str(data.path())?,
            "--log-format",
            "json",
            "--metrics-enabled",
            "false",
            "--native-listen",
            "127.0.0.1:0",
            "--quic-listen",
            "127.0.0.1:0",
        ]
        .map(String::from)
        .to_vec();
        if let Some(dir) = &certs {
            let file = |name: &str| -> anyhow::Result<String> {
                Ok(path_str(&dir.path().join(name))?.to_owned())
            };
            args.extend([
                "--tls-cert".into(),
                file("server.pem")?,
                "--tls-key".into(),
                file("server-key.pem")?,
            ]);
            if security == Security::MutualTls {
                args.extend([
                    "--client-ca".into(),
                    file("ca.pem")?,
                    "--require-client-cert".into(),
                ]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut spine = Spine::start(&args)?;
        let line = spine.wait_for_log("listen addresses")?;
        spine.wait_for_log("ready; send SIGINT or SIGTERM to stop")?;
        let logged: Value = serde_json::from_str(&line)?;
        let (native, quic) = match security {
            Security::Plain => {
                ensure!(
                    logged["quic"] == "off (no TLS certificate)",
                    "QUIC needs TLS: {line}"
                );
                (logged_addr(&logged, "native", "tcp://")?, None)
            }
            Security::Tls | Security::MutualTls => (
                logged_addr(&logged, "native", "tls://")?,
                Some(logged_addr(&logged, "quic", "quic://")?),
            ),
        };
        ensure!(
            native.ip().is_loopback() && quic.is_none_or(|q| q.ip().is_loopback()),
            "loopback only: {line}"
        );
        Ok(Node {
            spine: Some(spine),
            _data: data,
            certs,
            native,
            quic,
        })
    }

    fn spine(&mut self) -> anyhow::Result<&mut Spine> {
        self.spine.as_mut().context("the node was stopped")
    }

    /// The server process id.
    fn pid(&self) -> anyhow::Result<u32> {
        Ok(self.spine.as_ref().context("the node was stopped")?.pid())
    }

    /// Whether `spine serve` is still running.
    fn running(&mut self) -> anyhow::Result<bool> {
        self.spine()?.running()
    }

    /// A file written by `spine certs dev`.
    fn cert_file(&self, name: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .certs
            .as_ref()
            .context("this node has no certificates")?
            .path()
            .join(name))
    }

    /// The client certificate and key `spine certs dev` wrote for `mailbox`.
    fn client_cert(&self, mailbox: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        Ok((
            self.cert_file(&format!("client-{mailbox}.pem"))?,
            self.cert_file(&format!("client-{mailbox}-key.pem"))?,
        ))
    }

    /// The endpoint URL for `t`.
    fn url(&self, t: Transport) -> anyhow::Result<String> {
        Ok(match t {
            Transport::Tcp => format!("native://{}", self.native),
            Transport::Tls => format!("natives://{}", self.native),
            Transport::Quic => format!("quic://{}", self.quic.context("QUIC is not running")?),
        })
    }

    /// A client configuration for `mailbox` over `t` (trusting the dev CA).
    fn config(&self, t: Transport, mailbox: &str, password: &str) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new(Endpoint::parse(&self.url(t)?)?, mb(mailbox)?, password);
        config.client_name = "spine-tests/native".into();
        config.connect_timeout = Duration::from_secs(10);
        config.request_timeout = Duration::from_secs(30);
        if t != Transport::Tcp {
            config.tls.ca_file = Some(self.cert_file("ca.pem")?);
        }
        Ok(config)
    }

    /// A connected client for `mailbox` (demo password) over `t`.
    async fn client(&self, t: Transport, mailbox: &str) -> anyhow::Result<Client> {
        let config = self.config(t, mailbox, PASSWORD)?;
        Client::connect(config)
            .await
            .with_context(|| format!("connecting as {mailbox} over {t:?}"))
    }

    /// SIGTERM, then expects exit 0, a clean stop and no panic in the log.
    fn stop(mut self) -> anyhow::Result<Finished> {
        let spine = self.spine.take().context("already stopped")?;
        spine.signal("TERM")?;
        let out = spine.wait()?;
        ensure!(
            out.code() == 0,
            "spine serve exited {} after SIGTERM; log:\n{}",
            out.code(),
            out.stderr
        );
        ensure!(
            out.stderr.contains("stopped cleanly") && !out.stderr.contains("panicked"),
            "not a clean stop; log:\n{}",
            out.stderr
        );
        Ok(out)
    }
}

/// Runs `scenario` on `t`, bounded by [`SCENARIO_LIMIT`].
async fn run_scenario<F, Fut>(t: Transport, scenario: F) -> anyhow::Result<()>
where
    F: FnOnce(Transport) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    tokio::time::timeout(SCENARIO_LIMIT, scenario(t))
        .await
        .map_err(|_| anyhow!("the {t:?} scenario did not finish within {SCENARIO_LIMIT:?}"))?
        .with_context(|| format!("over {t:?}"))
}

/// Runs an async test body bounded by [`SCENARIO_LIMIT`].
async fn bounded(body: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(SCENARIO_LIMIT, body)
        .await
        .map_err(|_| anyhow!("the test did not finish within {SCENARIO_LIMIT:?}"))?
}

/// Awaits `fut` for at most [`STEP`].
async fn step<T>(what: &str, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(STEP, fut)
        .await
        .map_err(|_| anyhow!("{what}: nothing within {STEP:?}"))
}

/// One `#[tokio::test]` per named transport, each running the scenario
/// function of the same name: `per_transport!(f: tcp => Tcp, quic => Quic)`
/// gives tests `f::tcp` and `f::quic`.
macro_rules! per_transport {
    ($scenario:ident: $($name:ident => $t:ident),+ $(,)?) => {
        mod $scenario {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::run_scenario(super::Transport::$t, super::$scenario).await
                }
            )+
        }
    };
}

fn mb(id: &str) -> anyhow::Result<MailboxId> {
    Ok(MailboxId::parse(id)?)
}

fn wf(id: &str) -> anyhow::Result<WorkflowId> {
    Ok(WorkflowId::parse(id)?)
}

fn header(to: &str, workflow: &str) -> anyhow::Result<SendHeader> {
    Ok(SendHeader::simple(mb(to)?, wf(workflow)?))
}

/// Expects a server refusal of class `code` named `name`.
fn refused<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: WireErrorCode,
    name: &str,
) -> anyhow::Result<WireError> {
    match result {
        Err(ClientError::Server(e)) if e.code == code.as_u16() && e.name == name => Ok(e),
        other => bail!("expected {name} ({code}), got {other:?}"),
    }
}

/// Expects an `ERROR` response of class `code`.
fn error_of(response: Response, code: WireErrorCode) -> anyhow::Result<WireError> {
    match response {
        Response::Error(e) if e.code == code.as_u16() => Ok(e),
        other => bail!("expected an ERROR of class {code}, got {other:?}"),
    }
}

/// Deterministic, chunk-specific bytes (xorshift), so misplaced or mixed-up
/// chunks are caught by the hash.
fn pattern(seed: u64, len: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len()).min(8);
        out.put_slice(&x.to_le_bytes()[..take]);
    }
    out.freeze()
}

// ---------------------------------------------------------------------------
// Raw sockets
// ---------------------------------------------------------------------------

/// A bare TCP protocol client: frames written and read one by one with the
/// `spine-protocol` codec; every operation bounded by [`STEP`].
#[derive(Debug)]
struct Raw {
    socket: TcpStream,
    codec: ClientCodec,
    buf: BytesMut,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Raw> {
        let socket = step("TCP connect", TcpStream::connect(addr)).await??;
        Ok(Raw {
            socket,
            codec: ClientCodec::default(),
            buf: BytesMut::new(),
        })
    }

    async fn write_bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        step("write", self.socket.write_all(bytes)).await??;
        Ok(())
    }

    async fn write(&mut self, id: u64, request: &Request) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        self.codec.encode(id, request, &mut out)?;
        self.write_bytes(&out).await
    }

    /// The next frame, or `None` once the server has closed the connection
    /// (a reset counts as closed).
    async fn read(&mut self) -> anyhow::Result<Option<(u64, Response)>> {
        loop {
            if let Some(frame) = self
                .codec
                .decode(&mut self.buf)
                .map_err(|e| anyhow!("the server sent an undecodable frame: {e}"))?
            {
                return Ok(Some(frame));
            }
            let read = step("read", self.socket.read_buf(&mut self.buf)).await?;
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                ensure!(
                    self.buf.is_empty(),
                    "the server closed mid-frame ({} bytes left over)",
                    self.buf.len()
                );
                return Ok(None);
            }
        }
    }

    async fn call(&mut self, id: u64, request: Request) -> anyhow::Result<Response> {
        self.write(id, &request).await?;
        let (got, response) = self
            .read()
            .await?
            .with_context(|| format!("the server closed instead of answering request {id}"))?;
        ensure!(
            got == id,
            "answer for request {got}, expected {id}: {response:?}"
        );
        Ok(response)
    }

    async fn hello(&mut self, id: u64, mailbox: &str, password: &str) -> anyhow::Result<Response> {
        self.call(id, hello(mailbox, password)?).await
    }

    async fn expect_closed(&mut self) -> anyhow::Result<()> {
        match self.read().await? {
            None => Ok(()),
            Some(frame) => bail!("expected the server to close, got {frame:?}"),
        }
    }

    async fn expect_pong(&mut self, id: u64) -> anyhow::Result<()> {
        match self.call(id, Request::Ping).await? {
            Response::Pong => Ok(()),
            other => bail!("expected PONG, got {other:?}"),
        }
    }
}

fn hello(mailbox: &str, password: &str) -> anyhow::Result<Request> {
    Ok(Request::Hello {
        client_name: "spine-tests/raw".into(),
        mailbox: mb(mailbox)?,
        password: Password::new(password),
    })
}

fn list_all() -> Request {
    Request::ListInbox {
        workflow_filter: None,
        max_results: 100,
        after: None,
    }
}

/// A frame built byte by byte with the layout of `protocol/src/frame.rs`
/// (big-endian: length of the rest, version, kind, flags, request id, meta
/// length, meta, payload), so frames the codec refuses to encode can be
/// sent.
fn handmade(kind: u8, flags: u16, id: u64, meta: &[u8], payload: &[u8]) -> Vec<u8> {
    let rest = HEADER_LEN - 4 + meta.len() + payload.len();
    let mut out = Vec::with_capacity(rest + 4);
    out.put_u32(u32::try_from(rest).unwrap_or(u32::MAX));
    out.put_u8(PROTOCOL_VERSION);
    out.put_u8(kind);
    out.put_u16(flags);
    out.put_u64(id);
    out.put_u32(u32::try_from(meta.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(meta);
    out.extend_from_slice(payload);
    out
}

/// A bare QUIC protocol client following the stream convention: one
/// request per bidirectional stream (the client finishes its side, the
/// server answers and finishes).
#[derive(Debug)]
struct RawQuic {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    codec: ClientCodec,
}

impl RawQuic {
    async fn connect(node: &Node) -> anyhow::Result<RawQuic> {
        let ca = std::fs::read(node.cert_file("ca.pem")?)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![spine_client::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))?;
        let mut endpoint = quinn::Endpoint::client((Ipv4Addr::LOCALHOST, 0).into())?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let addr = node.quic.context("QUIC is not running")?;
        let conn = step("QUIC handshake", endpoint.connect(addr, "127.0.0.1")?).await??;
        Ok(RawQuic {
            endpoint,
            conn,
            codec: ClientCodec::default(),
        })
    }

    fn encode(&self, id: u64, request: &Request) -> anyhow::Result<BytesMut> {
        let mut out = BytesMut::new();
        self.codec.encode(id, request, &mut out)?;
        Ok(out)
    }

    /// Sends `request` on a new stream; answers every frame the server
    /// wrote before finishing the stream.
    async fn call(&self, id: u64, request: &Request) -> anyhow::Result<Vec<(u64, Response)>> {
        let bytes = self.encode(id, request)?;
        let (mut send, mut recv) = step("open a stream", self.conn.open_bi()).await??;
        step("write", send.write_all(&bytes)).await??;
        send.finish()?;
        let answer = step("read the answer", recv.read_to_end(32 * MIB)).await??;
        let mut buf = BytesMut::from(&answer[..]);
        let mut codec = self.codec.clone();
        let mut frames = Vec::new();
        while let Some(frame) = codec
            .decode(&mut buf)
            .map_err(|e| anyhow!("undecodable answer: {e}"))?
        {
            frames.push(frame);
        }
        ensure!(buf.is_empty(), "{} stray bytes after the answer", buf.len());
        Ok(frames)
    }

    /// Closes the connection at once, abandoning whatever is in flight, and
    /// waits until the close is sent. (It can still be lost, like any
    /// datagram: then the server notices only at its idle timeout.)
    async fn vanish(self) -> anyhow::Result<()> {
        self.conn.close(0u32.into(), b"vanished");
        step("sending the close", self.endpoint.wait_idle()).await
    }

    /// [`RawQuic::call`] for a request with exactly one answer frame.
    async fn call_one(&self, id: u64, request: &Request) -> anyhow::Result<Response> {
        let mut frames = self.call(id, request).await?;
        ensure!(frames.len() == 1, "expected one answer, got {frames:?}");
        let (got, response) = frames.remove(0);
        ensure!(got == id, "answer for request {got}, expected {id}");
        Ok(response)
    }
}

// ---------------------------------------------------------------------------
// Server memory
// ---------------------------------------------------------------------------

/// The resident set size of process `pid`, in bytes.
fn vm_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS line")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// Samples a process's resident set size every 5 ms on a thread and keeps
/// the peak.
#[derive(Debug)]
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> anyhow::Result<RssSampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(vm_rss(pid)?));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = vm_rss(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Ok(RssSampler { stop, peak, thread })
    }

    /// Stops sampling; answers the peak seen.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// 1. Happy paths (every transport)
// ---------------------------------------------------------------------------

per_transport!(happy_path: tcp => Tcp, tls => Tls, quic => Quic);

/// HELLO, PING, LOOKUP, SUBSCRIBE with credit, SEND, TRACK, LIST_INBOX,
/// DOWNLOAD, ACKNOWLEDGE, SEND_BATCH, chunked SEND + SEND_CHUNK and
/// idempotent sends, all on one transport.
async fn happy_path(t: Transport) -> anyhow::Result<()> {
    let node = blocking(|| Node::for_transport(t))?;
    let sender = node.client(t, "X26ABC1").await?;
    let recipient = node.client(t, "X26ABC2").await?;

    // HELLO_OK: the mailbox as authenticated, the server's name and limits.
    let session = sender.session();
    ensure!(session.mailbox == mb("X26ABC1")?, "{session:?}");
    ensure!(session.server_name == "spine", "{session:?}");
    ensure!(
        session.limits.max_payload_bytes == 16 << 20
            && session.limits.max_batch == 1024
            && session.limits.max_credit == 65_536,
        "the default limits: {session:?}"
    );
    sender.ping().await?;
    recipient.ping().await?;

    // LOOKUP: by organisation and workflow, and across organisations.
    let ids = |found: Vec<spine_client::LookupEntry>| -> Vec<String> {
        found.iter().map(|e| e.mailbox_id.to_string()).collect()
    };
    let at_x26 = sender
        .lookup(Some(OdsCode::parse("X26")?), wf(WORKFLOW_ALL)?)
        .await?;
    ensure!(ids(at_x26.clone()) == ["X26ABC1", "X26ABC2"], "{at_x26:?}");
    ensure!(
        at_x26[1].mailbox_name == "TESTMB2" && at_x26[1].ods_code.to_string() == "X26",
        "{at_x26:?}"
    );
    let anywhere = sender.lookup(None, wf(WORKFLOW_ALL)?).await?;
    ensure!(
        ids(anywhere.clone()) == ["X26ABC1", "X26ABC2", "X26ABC3"],
        "{anywhere:?}"
    );
    let none = sender
        .lookup(Some(OdsCode::parse("X27")?), wf(WORKFLOW)?)
        .await?;
    ensure!(none.is_empty(), "{none:?}");

    // Pushes with a window of one: the second push only comes after the
    // first is consumed and its credit granted back.
    let mut pushes = recipient.subscribe(1).await?;
    ensure!(pushes.window() == 1);

    let mut first_header = header("X26ABC2", WORKFLOW)?;
    first_header.subject = Some("native protocol test".into());
    first_header.local_id = Some(LocalId::parse("local-1")?);
    first_header.file_name = Some("hello.txt".into());
    first_header.content_type = Some("text/plain".into());
    let first_body = Bytes::from(format!("hello over {t:?}"));
    let first = sender
        .send(first_header.clone(), first_body.clone())
        .await?;
    ensure!(
        first.status == MessageStatus::Accepted && !first.duplicate,
        "{first:?}"
    );
    let tracked = sender.track(first.message_id).await?;
    ensure!(
        tracked.status == MessageStatus::Accepted
            && tracked.acknowledged_at.is_none()
            && tracked.envelope.recipient == mb("X26ABC2")?
            && tracked.envelope.subject.as_deref() == Some("native protocol test")
            && tracked.chunks_received == 1,
        "{tracked:?}"
    );
    let second = sender
        .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"second"))
        .await?;
    ensure!(second.message_id != first.message_id);

    let push = step("first push", pushes.next())
        .await?
        .context("the subscription ended")?;
    ensure!(push.envelope.message_id == first.message_id, "{push:?}");
    let push2 = step("second push (after the credit came back)", pushes.next())
        .await?
        .context("the subscription ended")?;
    ensure!(push2.envelope.message_id == second.message_id, "{push2:?}");
    ensure!(push2.order > push.order);

    // LIST_INBOX in acceptance order.
    let page = recipient.list_inbox(None, 100, None).await?;
    let listed: Vec<MessageId> = page.messages.iter().map(|m| m.message_id).collect();
    ensure!(
        listed == [first.message_id, second.message_id] && page.total == 2 && page.next.is_none(),
        "{page:?}"
    );
    let entry = &page.messages[0];
    ensure!(
        entry.sender == mb("X26ABC1")?
            && entry.workflow_id == wf(WORKFLOW)?
            && entry.total_chunks == 1
            && entry.order == push.order,
        "{entry:?}"
    );
    let one = recipient.list_inbox(None, 1, None).await?;
    ensure!(
        one.messages.len() == 1 && one.next.is_some() && one.total == 2,
        "{one:?}"
    );
    let rest = recipient.list_inbox(None, 100, one.next).await?;
    ensure!(
        rest.messages.len() == 1 && rest.messages[0].message_id == second.message_id,
        "{rest:?}"
    );

    // DOWNLOAD, ACKNOWLEDGE (twice: idempotent), TRACK again.
    let got = recipient.download(first.message_id, 1).await?;
    ensure!(got.body == first_body, "body {:?}", got.body);
    ensure!(
        got.envelope.sender == mb("X26ABC1")?
            && got.envelope.file_name.as_deref() == Some("hello.txt")
            && got.envelope.local_id == first_header.local_id,
        "{:?}",
        got.envelope
    );
    recipient.acknowledge(first.message_id).await?;
    recipient.acknowledge(first.message_id).await?;
    let tracked = sender.track(first.message_id).await?;
    ensure!(
        tracked.status == MessageStatus::Acknowledged && tracked.acknowledged_at.is_some(),
        "{tracked:?}"
    );
    let page = recipient.list_inbox(None, 100, None).await?;
    ensure!(
        page.total == 1 && page.messages[0].message_id == second.message_id,
        "{page:?}"
    );

    // SEND_BATCH: one result per item, in item order; a refused item does
    // not fail the others.
    let mut items = Vec::new();
    for i in 0..3u8 {
        items.push(BatchItem {
            header: header("X26ABC2", WORKFLOW)?,
            body: Bytes::from(vec![b'a' + i; 100 + usize::from(i)]),
        });
    }
    items.insert(
        2,
        BatchItem {
            header: header("X26ABC3", WORKFLOW)?,
            body: Bytes::from_static(b"not registered for X26ABC3"),
        },
    );
    let results = sender.send_batch(items).await?;
    ensure!(results.len() == 4, "{results:?}");
    let refused_item = results[2].as_ref().err().context("item 2 is refused")?;
    ensure!(
        refused_item.code == WireErrorCode::DeliveryRefused.as_u16()
            && refused_item.name == "DIR_WORKFLOW_NOT_REGISTERED",
        "{refused_item:?}"
    );
    let mut batch_ids = BTreeSet::new();
    for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != 2) {
        let ok = r.as_ref().map_err(|e| anyhow!("batch item {i}: {e}"))?;
        ensure!(ok.status == MessageStatus::Accepted, "{ok:?}");
        batch_ids.insert(ok.message_id);
    }
    ensure!(batch_ids.len() == 3);
    let mut pushed = BTreeSet::new();
    for _ in 0..3 {
        let p = step("batch push", pushes.next())
            .await?
            .context("the subscription ended")?;
        pushed.insert(p.envelope.message_id);
    }
    ensure!(pushed == batch_ids, "pushed {pushed:?}, sent {batch_ids:?}");
    for (i, id) in results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|ok| ok.message_id)
        .enumerate()
    {
        let got = recipient.download(id, 1).await?;
        let i = u8::try_from(i)?;
        ensure!(
            got.body == vec![b'a' + i; 100 + usize::from(i)],
            "batch item {i}"
        );
    }

    // A chunked message: SEND (chunk 1) then SEND_CHUNK 2 and 3; accepted
    // (and pushed) only once complete.
    let mut chunked = header("X26ABC2", WORKFLOW)?;
    chunked.total_chunks = 3;
    let started = sender
        .send(chunked, Bytes::from_static(b"chunk one|"))
        .await?;
    ensure!(started.status == MessageStatus::Uploading, "{started:?}");
    let tracked = sender.track(started.message_id).await?;
    ensure!(
        tracked.status == MessageStatus::Uploading && tracked.chunks_received == 1,
        "{tracked:?}"
    );
    ensure!(
        !sender
            .send_chunk(started.message_id, 2, Bytes::from_static(b"chunk two|"))
            .await?
    );
    ensure!(
        sender
            .send_chunk(started.message_id, 3, Bytes::from_static(b"chunk three"))
            .await?
    );
    let p = step("push of the chunked message", pushes.next())
        .await?
        .context("the subscription ended")?;
    ensure!(
        p.envelope.message_id == started.message_id && p.envelope.total_chunks == 3,
        "{p:?}"
    );
    let mut whole = Vec::new();
    for n in 1..=3 {
        let got = recipient.download(started.message_id, n).await?;
        ensure!(got.chunk_no == n);
        whole.extend_from_slice(&got.body);
    }
    ensure!(whole == b"chunk one|chunk two|chunk three");
    refused(
        recipient.download(started.message_id, 4).await,
        WireErrorCode::InvalidRequest,
        "MSG_CHUNK_OUT_OF_RANGE",
    )?;

    // Idempotency: a repeat with the same key names the first message.
    let mut keyed = header("X26ABC2", WORKFLOW)?;
    keyed.idempotency_key = Some(format!("key-{t:?}"));
    let once = sender
        .send(keyed.clone(), Bytes::from_static(b"once"))
        .await?;
    let again = sender.send(keyed, Bytes::from_static(b"once")).await?;
    ensure!(
        !once.duplicate && again.duplicate && again.message_id == once.message_id,
        "{once:?} then {again:?}"
    );
    let page = recipient.list_inbox(None, 100, None).await?;
    ensure!(
        page.total == 6,
        "second + 3 batch + chunked + keyed: {page:?}"
    );

    pushes.unsubscribe().await?;
    sender.ping().await?;
    sender.close().await;
    recipient.close().await;
    blocking(|| node.stop())?;
    Ok(())
}

/// TLS and QUIC share one node's state: sent over QUIC, read over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_quic_clients_share_one_node() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Tls))?;
        let sender = node.client(Transport::Quic, "X26ABC1").await?;
        let recipient = node.client(Transport::Tls, "X26ABC2").await?;
        let mut pushes = recipient.subscribe(4).await?;
        let ok = sender
            .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"q2t"))
            .await?;
        let push = step("push", pushes.next()).await?.context("ended")?;
        ensure!(push.envelope.message_id == ok.message_id);
        ensure!(recipient.download(ok.message_id, 1).await?.body == b"q2t"[..]);
        recipient.acknowledge(ok.message_id).await?;
        ensure!(sender.track(ok.message_id).await?.status == MessageStatus::Acknowledged);
        drop(pushes);
        sender.close().await;
        recipient.close().await;
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

/// ACKNOWLEDGE_BATCH acknowledges each message as ACKNOWLEDGE would, with
/// one result per message in order: the recipient's own messages (twice:
/// idempotent), another mailbox's and an unknown one refused per item,
/// without failing the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_acknowledge_batch_answers_each_message() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Plain))?;
        let sender = node.client(Transport::Tcp, "X26ABC1").await?;
        let recipient = node.client(Transport::Tcp, "X26ABC2").await?;
        let a = sender
            .send(header("X26ABC2", WORKFLOW)?, pattern(1, 10))
            .await?;
        let b = sender
            .send(header("X26ABC2", WORKFLOW)?, pattern(2, 10))
            .await?;
        let theirs = sender
            .send(header("X26ABC3", WORKFLOW_ALL)?, pattern(3, 10))
            .await?;
        let unknown = MessageId::parse("20200101000000000000_000000")?;
        let results = recipient
            .acknowledge_batch(vec![
                a.message_id,
                b.message_id,
                a.message_id,
                theirs.message_id,
                unknown,
            ])
            .await?;
        ensure!(results.len() == 5, "{results:?}");
        ensure!(results[..3].iter().all(Result::is_ok), "{results:?}");
        for r in &results[3..] {
            let e = r
                .as_ref()
                .err()
                .context("another mailbox's or unknown: refused")?;
            ensure!(
                e.code == WireErrorCode::Forbidden.as_u16()
                    || e.code == WireErrorCode::NotFound.as_u16(),
                "{e:?}"
            );
        }
        for id in [a.message_id, b.message_id] {
            ensure!(sender.track(id).await?.status == MessageStatus::Acknowledged);
        }
        ensure!(sender.track(theirs.message_id).await?.status == MessageStatus::Accepted);
        sender.close().await;
        recipient.close().await;
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

/// A subscription that asks for bodies gets each small single-chunk body
/// with its push (no DOWNLOAD needed), over TCP and QUIC; a body over
/// `push_inline_bytes` comes as a notification to download, and a plain
/// subscription never carries bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_with_bodies_get_small_bodies_inline() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Tls))?;
        let sender = node.client(Transport::Tls, "X26ABC1").await?;
        for transport in [Transport::Tls, Transport::Quic] {
            let to = "X26ABC2";
            let recipient = node.client(transport, to).await?;
            let mut pushes = recipient.subscribe_with_bodies(8).await?;
            let small = pattern(1, 65_536);
            let big = pattern(2, 65_537);
            let a = sender.send(header(to, WORKFLOW)?, small.clone()).await?;
            let b = sender.send(header(to, WORKFLOW)?, big.clone()).await?;
            let empty = sender.send(header(to, WORKFLOW)?, Bytes::new()).await?;
            let first = step("push", pushes.next()).await?.context("ended")?;
            ensure!(first.envelope.message_id == a.message_id, "{transport:?}");
            ensure!(
                first.body.as_ref() == Some(&small),
                "{transport:?}: inline body"
            );
            let second = step("push", pushes.next()).await?.context("ended")?;
            ensure!(second.envelope.message_id == b.message_id);
            ensure!(
                second.body.is_none(),
                "{transport:?}: over the inline limit"
            );
            ensure!(recipient.download(b.message_id, 1).await?.body == big);
            let third = step("push", pushes.next()).await?.context("ended")?;
            ensure!(third.envelope.message_id == empty.message_id);
            ensure!(
                third.body.as_deref() == Some(&b""[..]),
                "{transport:?}: empty"
            );
            drop(pushes);
            recipient.close().await;
        }
        // Without asking, no bodies.
        let recipient = node.client(Transport::Tls, "X26ABC2").await?;
        let mut plain = recipient.subscribe(4).await?;
        let c = sender
            .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"tiny"))
            .await?;
        let push = step("push", plain.next()).await?.context("ended")?;
        ensure!(push.envelope.message_id == c.message_id && push.body.is_none());
        drop(plain);
        recipient.close().await;
        sender.close().await;
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

/// Credit is enforced by the server, not just by the client library: with
/// credit 1 and two new messages, exactly one PUSH arrives until CREDIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_push_credit_is_enforced_on_the_wire() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Plain))?;
        let sender = node.client(Transport::Tcp, "X26ABC1").await?;
        let mut raw = Raw::connect(node.native).await?;
        ensure!(matches!(
            raw.hello(1, "X26ABC2", PASSWORD).await?,
            Response::HelloOk { .. }
        ));
        match raw
            .call(
                2,
                Request::Subscribe {
                    credit: 1,
                    inline: false,
                },
            )
            .await?
        {
            Response::Subscribed { credit: 1 } => {}
            other => bail!("expected SUBSCRIBED with credit 1, got {other:?}"),
        }
        let a = sender
            .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"a"))
            .await?;
        let b = sender
            .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"b"))
            .await?;
        match raw.read().await?.context("closed")? {
            (0, Response::Push { envelope, .. }) if envelope.message_id == a.message_id => {}
            other => bail!("expected the PUSH of {}, got {other:?}", a.message_id),
        }
        // Give a credit-ignoring server time to push the second message,
        // then check the next frame is the PONG, not a PUSH.
        tokio::time::sleep(Duration::from_millis(300)).await;
        raw.expect_pong(3).await?;
        raw.write(4, &Request::Credit { add: 1 }).await?;
        match raw.read().await?.context("closed")? {
            (0, Response::Push { envelope, .. }) if envelope.message_id == b.message_id => {}
            other => bail!("expected the PUSH of {}, got {other:?}", b.message_id),
        }
        match raw.call(5, Request::Unsubscribe).await? {
            Response::Unsubscribed => {}
            other => bail!("expected UNSUBSCRIBED, got {other:?}"),
        }
        raw.expect_pong(6).await?;
        sender.close().await;
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

/// Requests pipelined behind HELLO in one write are served in the session
/// HELLO establishes, and answered by id; behind a failed HELLO they are
/// NOT_AUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_requests_pipelined_behind_hello_are_answered_by_id() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Plain))?;
        let unknown = MessageId::parse(UNKNOWN_ID)?;
        for (password, authenticated) in [(PASSWORD, true), ("wrong", false)] {
            let mut raw = Raw::connect(node.native).await?;
            let mut burst = BytesMut::new();
            let requests = [
                hello("X26ABC2", password)?,
                list_all(),
                Request::Ping,
                Request::Download {
                    message_id: unknown,
                    chunk_no: 1,
                },
                Request::Lookup {
                    ods_code: None,
                    workflow_id: wf(WORKFLOW)?,
                },
            ];
            for (id, request) in (1u64..).zip(&requests) {
                raw.codec.encode(id, request, &mut burst)?;
            }
            raw.write_bytes(&burst).await?;
            let mut answers = std::collections::BTreeMap::new();
            while answers.len() < requests.len() {
                let (id, response) = raw.read().await?.context("closed early")?;
                ensure!(
                    answers.insert(id, response).is_none(),
                    "two answers for request {id}"
                );
            }
            let get = |id: u64| answers.get(&id).cloned().context("no answer");
            ensure!(matches!(get(3)?, Response::Pong), "PING is always served");
            if authenticated {
                ensure!(matches!(get(1)?, Response::HelloOk { .. }));
                ensure!(matches!(get(2)?, Response::InboxPage { total: 0, .. }));
                let e = error_of(get(4)?, WireErrorCode::NotFound)?;
                ensure!(e.name == "MSG_NOT_FOUND", "{e:?}");
                ensure!(matches!(get(5)?, Response::LookupResult(ref found) if found.len() == 1));
            } else {
                error_of(get(1)?, WireErrorCode::AuthFailed)?;
                for id in [2, 4, 5] {
                    error_of(get(id)?, WireErrorCode::NotAuthenticated)?;
                }
            }
        }
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// 2. Bad, truncated and oversize frames (raw TCP)
// ---------------------------------------------------------------------------

/// The hand-made layout agrees with the codec (so the bad frames below are
/// bad only where they mean to be).
#[test]
fn handmade_frames_match_the_codec() -> anyhow::Result<()> {
    let mut encoded = BytesMut::new();
    ClientCodec::default().encode(7, &Request::Ping, &mut encoded)?;
    ensure!(encoded[..] == handmade(FrameKind::Ping.as_u8(), 0, 7, &[], &[])[..]);
    let frame = Frame {
        header: FrameHeader {
            kind: FrameKind::Ping,
            flags: Flags::NONE,
            request_id: 9,
        },
        meta: Bytes::new(),
        payload: Bytes::new(),
    };
    let mut raw = BytesMut::new();
    FrameCodec::default().encode(&frame, &mut raw)?;
    ensure!(raw[..] == handmade(FrameKind::Ping.as_u8(), 0, 9, &[], &[])[..]);
    let mut wire = BytesMut::from(&handmade(0x7E, 0, 3, &[], b"xyz")[..]);
    let e = FrameCodec::default()
        .decode(&mut wire)
        .err()
        .context("an unknown kind is refused")?;
    ensure!(!e.is_fatal() && e.reply_id() == 3, "{e:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_garbage_gets_an_error_frame_then_the_connection_closes() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Plain))?;
        // (what, bytes, expected class, sent after a successful HELLO)
        let cases: Vec<(&str, Vec<u8>, WireErrorCode, bool)> = vec![
            (
                "an HTTP request",
                b"GET / HTTP/1.1\r\nHost: spine\r\n\r\n".to_vec(),
                WireErrorCode::FrameTooLarge,
                false,
            ),
            (
                "a length prefix below the header",
                vec![0, 0, 0, 3, 1, 0xD, 0, 0],
                WireErrorCode::BadFrame,
                false,
            ),
            (
                "protocol version 9",
                {
                    let mut f = handmade(FrameKind::Ping.as_u8(), 0, 1, &[], &[]);
                    f[4] = 9;
                    f
                },
                WireErrorCode::UnsupportedVersion,
                false,
            ),
            (
                "a meta length past the frame's end",
                {
                    let mut f = handmade(FrameKind::Ping.as_u8(), 0, 1, &[], &[]);
                    f[16..20].copy_from_slice(&1000u32.to_be_bytes());
                    f
                },
                WireErrorCode::BadFrame,
                false,
            ),
            (
                "binary garbage after HELLO",
                [&[0xDE, 0xAD, 0xBE, 0xEF][..], &pattern(99, 60)].concat(),
                WireErrorCode::FrameTooLarge,
                true,
            ),
        ];
        for (what, bytes, code, after_hello) in cases {
            let mut raw = Raw::connect(node.native).await?;
            if after_hello {
                ensure!(matches!(
                    raw.hello(1, "X26ABC1", PASSWORD).await?,
                    Response::HelloOk { .. }
                ));
            }
            raw.write_bytes(&bytes).await?;
            let (id, answer) = raw
                .read()
                .await?
                .with_context(|| format!("{what}: closed without an ERROR"))?;
            ensure!(id == 0, "{what}: the ERROR concerns the connection (id 0)");
            let e = error_of(answer, code).with_context(|| what.to_string())?;
            ensure!(e.name.starts_with("PROTO_"), "{what}: {e:?}");
            raw.expect_closed()
                .await
                .with_context(|| format!("{what}: the connection closes"))?;
        }
        let mut fresh = Raw::connect(node.native).await?;
        fresh.expect_pong(1).await?;
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_an_oversize_length_prefix_gets_frame_too_large_with_id_0_then_close(
) -> anyhow::Result<()> {
    bounded(async {
        let mut node = blocking(|| Node::start(Security::Plain))?;
        let mut raw = Raw::connect(node.native).await?;
        let Response::HelloOk { limits, .. } = raw.hello(1, "X26ABC1", PASSWORD).await? else {
            bail!("HELLO failed");
        };
        // One byte over the largest frame the server advertised; only the
        // header is sent: the server must refuse before buffering the rest.
        let max_rest = limits.max_frame_bytes() - 4;
        let mut frame = handmade(FrameKind::Send.as_u8(), 0, 2, &[], &[]);
        frame[0..4].copy_from_slice(&u32::try_from(max_rest + 1)?.to_be_bytes());
        raw.write_bytes(&frame).await?;
        let (id, answer) = raw.read().await?.context("closed without an ERROR")?;
        ensure!(id == 0, "request id 0, got {id}");
        let e = error_of(answer, WireErrorCode::FrameTooLarge)?;
        ensure!(e.code == 1001 && e.name == "PROTO_FRAME_TOO_LARGE", "{e:?}");
        raw.expect_closed().await?;

        // A frame of exactly the largest size passes the length check: it
        // is refused only for its content (a payload over the payload
        // limit), for its own request id, and the connection carries on.
        let mut raw = Raw::connect(node.native).await?;
        ensure!(matches!(
            raw.hello(1, "X26ABC1", PASSWORD).await?,
            Response::HelloOk { .. }
        ));
        let payload_len = usize::try_from(max_rest)? - (HEADER_LEN - 4);
        let mut big = handmade(FrameKind::Send.as_u8(), 0, 2, &[], &[]);
        big[0..4].copy_from_slice(&u32::try_from(max_rest)?.to_be_bytes());
        raw.write_bytes(&big).await?;
        let zeros = vec![0u8; MIB];
        let mut left = payload_len;
        while left > 0 {
            let n = left.min(zeros.len());
            raw.write_bytes(&zeros[..n]).await?;
            left -= n;
        }
        let (id, answer) = raw.read().await?.context("closed")?;
        ensure!(id == 2, "the refusal names the request: {id}");
        let e = error_of(answer, WireErrorCode::FrameTooLarge)?;
        ensure!(e.name == "PROTO_PAYLOAD_TOO_LARGE", "{e:?}");
        raw.expect_pong(3).await?;
        ensure!(blocking(|| node.running())?);
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_a_truncated_frame_then_the_client_closing_leaves_the_server_healthy(
) -> anyhow::Result<()> {
    bounded(async {
        let mut node = blocking(|| Node::start(Security::Plain))?;
        for authenticated in [false, true] {
            let mut raw = Raw::connect(node.native).await?;
            if authenticated {
                ensure!(matches!(
                    raw.hello(1, "X26ABC1", PASSWORD).await?,
                    Response::HelloOk { .. }
                ));
            }
            let mut frame = BytesMut::new();
            ClientCodec::default().encode(
                2,
                &Request::Send {
                    header: header("X26ABC2", WORKFLOW)?,
                    // Small enough to be read before HELLO (a longer
                    // frame is refused there from its length prefix).
                    body: pattern(5, 2_000),
                },
                &mut frame,
            )?;
            raw.write_bytes(&frame[..frame.len() / 2]).await?;
            // Only our side ends: the server must close without answering.
            step("half-close", raw.socket.shutdown()).await??;
            raw.expect_closed().await?;
        }
        // A bare partial header too.
        let mut raw = Raw::connect(node.native).await?;
        raw.write_bytes(&[0, 0, 0]).await?;
        step("half-close", raw.socket.shutdown()).await??;
        raw.expect_closed().await?;

        let mut fresh = Raw::connect(node.native).await?;
        fresh.expect_pong(1).await?;
        ensure!(matches!(
            fresh.hello(2, "X26ABC2", PASSWORD).await?,
            Response::HelloOk { .. }
        ));
        match fresh.call(3, list_all()).await? {
            Response::InboxPage { total: 0, .. } => {}
            other => bail!("nothing half-sent was accepted: {other:?}"),
        }
        ensure!(blocking(|| node.running())?);
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_unknown_kinds_and_other_bad_frames_get_an_error_for_their_id_and_the_connection_goes_on(
) -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Plain))?;
        let mut raw = Raw::connect(node.native).await?;
        // Before HELLO too: an unknown kind is a frame error, not a session one.
        raw.write_bytes(&handmade(0x7E, 0, 40, &[], &[])).await?;
        let (id, answer) = raw.read().await?.context("closed")?;
        ensure!(id == 40);
        error_of(answer, WireErrorCode::UnknownKind)?;
        raw.expect_pong(41).await?;
        ensure!(matches!(
            raw.hello(1, "X26ABC1", PASSWORD).await?,
            Response::HelloOk { .. }
        ));

        let cases: Vec<(&str, Vec<u8>, u64, WireErrorCode)> = vec![
            (
                "an unknown kind with meta and payload",
                handmade(0x7E, 0, 42, b"some meta", &pattern(1, 5000)),
                42,
                WireErrorCode::UnknownKind,
            ),
            (
                "a server-initiated kind (PUSH)",
                handmade(FrameKind::Push.as_u8(), 0, 43, &[], &[]),
                43,
                WireErrorCode::UnexpectedFrame,
            ),
            (
                "a response kind (PONG)",
                handmade(FrameKind::Pong.as_u8(), 0, 44, &[], &[]),
                44,
                WireErrorCode::UnexpectedFrame,
            ),
            (
                "undefined flag bits on PING",
                handmade(FrameKind::Ping.as_u8(), 0x8000, 45, &[], &[]),
                45,
                WireErrorCode::BadFrame,
            ),
            (
                "a meta section that is not an archive",
                handmade(FrameKind::ListInbox.as_u8(), 0, 46, &[0xAB; 13], &[]),
                46,
                WireErrorCode::BadFrame,
            ),
            (
                "a payload on PING",
                handmade(FrameKind::Ping.as_u8(), 0, 47, &[], b"unexpected"),
                47,
                WireErrorCode::BadFrame,
            ),
        ];
        let mut ping_id = 100;
        for (what, bytes, id, code) in cases {
            raw.write_bytes(&bytes).await?;
            let (got, answer) = raw
                .read()
                .await?
                .with_context(|| format!("{what}: the server closed"))?;
            ensure!(got == id, "{what}: answer for {got}, expected {id}");
            error_of(answer, code).with_context(|| what.to_string())?;
            ping_id += 1;
            raw.expect_pong(ping_id)
                .await
                .with_context(|| format!("after {what}"))?;
        }
        match raw.call(200, list_all()).await? {
            Response::InboxPage { .. } => {}
            other => bail!("the session survived: {other:?}"),
        }
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// 3. Authentication
// ---------------------------------------------------------------------------

per_transport!(wrong_credentials: tcp => Tcp, tls => Tls, quic => Quic);

/// A wrong password or an unknown mailbox is AUTH_FAILED (2000), the same
/// answer for both; the right password still works afterwards.
async fn wrong_credentials(t: Transport) -> anyhow::Result<()> {
    let node = blocking(|| Node::for_transport(t))?;
    for (mailbox, password) in [("X26ABC1", "wrong"), ("X26ABC9", PASSWORD)] {
        let result = Client::connect(node.config(t, mailbox, password)?).await;
        refused(result, WireErrorCode::AuthFailed, "AUTH_FAILED")
            .with_context(|| format!("{mailbox} with {password:?}"))?;
    }
    let client = node.client(t, "X26ABC1").await?;
    client.ping().await?;
    client.close().await;
    blocking(|| node.stop())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_requests_before_hello_are_refused_and_three_failed_hellos_close_the_connection(
) -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Plain))?;
        let id = MessageId::parse(UNKNOWN_ID)?;
        let mut raw = Raw::connect(node.native).await?;
        raw.expect_pong(1).await?;
        let before_hello = [
            list_all(),
            Request::Send {
                header: header("X26ABC2", WORKFLOW)?,
                body: Bytes::from_static(b"x"),
            },
            Request::Download {
                message_id: id,
                chunk_no: 1,
            },
            Request::Acknowledge { message_id: id },
            Request::Track { message_id: id },
            Request::Lookup {
                ods_code: None,
                workflow_id: wf(WORKFLOW)?,
            },
            Request::Subscribe {
                credit: 1,
                inline: false,
            },
        ];
        for (n, request) in (2u64..).zip(before_hello) {
            let kind = request.kind();
            let e = error_of(raw.call(n, request).await?, WireErrorCode::NotAuthenticated)
                .with_context(|| format!("{kind} before HELLO"))?;
            ensure!(e.code == 1005, "{e:?}");
        }
        // Two failures, then the right password: still allowed.
        for n in [20, 21] {
            error_of(
                raw.hello(n, "X26ABC1", "wrong").await?,
                WireErrorCode::AuthFailed,
            )?;
        }
        ensure!(matches!(
            raw.hello(22, "X26ABC1", PASSWORD).await?,
            Response::HelloOk { .. }
        ));
        match raw.call(23, list_all()).await? {
            Response::InboxPage { .. } => {}
            other => bail!("authenticated now: {other:?}"),
        }
        // A second HELLO on an authenticated connection is refused.
        error_of(
            raw.hello(24, "X26ABC2", PASSWORD).await?,
            WireErrorCode::UnexpectedFrame,
        )?;

        // Three failures close the connection.
        let mut guesser = Raw::connect(node.native).await?;
        for n in 1..=3 {
            let e = error_of(
                guesser.hello(n, "X26ABC1", &format!("guess-{n}")).await?,
                WireErrorCode::AuthFailed,
            )?;
            ensure!(e.code == 2000 && e.name == "AUTH_FAILED", "{e:?}");
        }
        guesser.expect_closed().await?;
        let mut fresh = Raw::connect(node.native).await?;
        ensure!(matches!(
            fresh.hello(1, "X26ABC1", PASSWORD).await?,
            Response::HelloOk { .. }
        ));
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_requests_before_hello_are_refused_and_three_failed_hellos_close_the_connection(
) -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Tls))?;
        let quic = RawQuic::connect(&node).await?;
        ensure!(matches!(
            quic.call_one(1, &Request::Ping).await?,
            Response::Pong
        ));
        error_of(
            quic.call_one(2, &list_all()).await?,
            WireErrorCode::NotAuthenticated,
        )?;
        error_of(
            quic.call_one(
                3,
                &Request::Send {
                    header: header("X26ABC2", WORKFLOW)?,
                    body: Bytes::from_static(b"x"),
                },
            )
            .await?,
            WireErrorCode::NotAuthenticated,
        )?;
        // Authentication is per connection: a stream after HELLO acts for it.
        ensure!(matches!(
            quic.call_one(4, &hello("X26ABC2", PASSWORD)?).await?,
            Response::HelloOk { .. }
        ));
        match quic.call_one(5, &list_all()).await? {
            Response::InboxPage { total: 0, .. } => {}
            other => bail!("authenticated now: {other:?}"),
        }
        // An unknown kind on a stream: ERROR for its id.
        let (mut send, mut recv) = step("open", quic.conn.open_bi()).await??;
        step("write", send.write_all(&handmade(0x7E, 0, 6, &[], b"??"))).await??;
        send.finish()?;
        let answer = step("read", recv.read_to_end(MIB)).await??;
        let mut buf = BytesMut::from(&answer[..]);
        let (id, response) = quic
            .codec
            .clone()
            .decode(&mut buf)
            .map_err(|e| anyhow!("{e}"))?
            .context("an answer")?;
        ensure!(id == 6);
        error_of(response, WireErrorCode::UnknownKind)?;
        ensure!(matches!(
            quic.call_one(7, &Request::Ping).await?,
            Response::Pong
        ));

        // Three failed HELLOs close the QUIC connection, after the third
        // ERROR has been delivered.
        let guesser = RawQuic::connect(&node).await?;
        for n in 1..=2 {
            error_of(
                guesser
                    .call_one(n, &hello("X26ABC1", &format!("guess-{n}"))?)
                    .await?,
                WireErrorCode::AuthFailed,
            )?;
        }
        error_of(
            guesser.call_one(3, &hello("X26ABC1", "guess-3")?).await?,
            WireErrorCode::AuthFailed,
        )?;
        let reason = step("the server closing the connection", guesser.conn.closed()).await?;
        ensure!(
            matches!(reason, quinn::ConnectionError::ApplicationClosed(_)),
            "closed by the server: {reason:?}"
        );
        ensure!(matches!(
            quic.call_one(8, &Request::Ping).await?,
            Response::Pong
        ));
        quic.conn.close(0u32.into(), b"done");
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

/// The third failed HELLO is answered AUTH_FAILED before the close, over
/// QUIC too: a QUIC close discards stream data the peer has not yet
/// acknowledged, so the server lets its streams flush and waits briefly
/// for the client to close first (`transport/quic.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_the_third_failed_hello_is_answered_before_the_close() -> anyhow::Result<()> {
    bounded(async {
        let node = blocking(|| Node::start(Security::Tls))?;
        let guesser = RawQuic::connect(&node).await?;
        for n in 1..=3 {
            let answer = guesser
                .call_one(n, &hello("X26ABC1", &format!("guess-{n}"))?)
                .await
                .with_context(|| format!("failed HELLO {n}"))?;
            error_of(answer, WireErrorCode::AuthFailed)?;
        }
        step("the server closing the connection", guesser.conn.closed()).await?;
        blocking(|| node.stop())?;
        Ok(())
    })
    .await
}

per_transport!(mutual_tls: tls => Tls, quic => Quic);

/// With `--require-client-cert`: the certificate names the mailbox (any
/// password), another mailbox's name is refused, and a client without a
/// certificate (or with one from another CA) cannot connect.
async fn mutual_tls(t: Transport) -> anyhow::Result<()> {
    let node = blocking(|| Node::start(Security::MutualTls))?;
    let with_cert = |mailbox: &str, cert_of: &str, password: &str| -> anyhow::Result<_> {
        let mut config = node.config(t, mailbox, password)?;
        let (cert, key) = node.client_cert(cert_of)?;
        config.tls.client_cert = Some(cert);
        config.tls.client_key = Some(key);
        Ok(config)
    };

    let sender = Client::connect(with_cert("X26ABC1", "X26ABC1", "not-the-password")?).await?;
    ensure!(sender.session().mailbox == mb("X26ABC1")?);
    let ok = sender
        .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"mtls"))
        .await?;
    let recipient = Client::connect(with_cert("X26ABC2", "X26ABC2", PASSWORD)?).await?;
    let got = recipient.download(ok.message_id, 1).await?;
    ensure!(got.envelope.sender == mb("X26ABC1")? && got.body == b"mtls"[..]);

    // X26ABC1's certificate cannot act as X26ABC2, even with its password.
    let e = refused(
        Client::connect(with_cert("X26ABC2", "X26ABC1", PASSWORD)?).await,
        WireErrorCode::AuthFailed,
        "AUTH_FAILED",
    )?;
    ensure!(
        e.message.contains("X26ABC1"),
        "says whose certificate: {e:?}"
    );

    // No certificate: refused by the TLS layer, not by HELLO.
    let no_cert = Client::connect(node.config(t, "X26ABC1", PASSWORD)?).await;
    let e = no_cert
        .err()
        .context("a client without a certificate connected")?;
    ensure!(e.code() == "CLIENT_TLS", "{e:?}");
    // A certificate for the right CN from another CA.
    let other_ca = blocking(dev_certs)?;
    let mut config = node.config(t, "X26ABC1", PASSWORD)?;
    config.tls.client_cert = Some(other_ca.path().join("client-X26ABC1.pem"));
    config.tls.client_key = Some(other_ca.path().join("client-X26ABC1-key.pem"));
    let e = Client::connect(config)
        .await
        .err()
        .context("a certificate from another CA was accepted")?;
    ensure!(e.code() == "CLIENT_TLS", "refused by the TLS layer: {e:?}");

    sender.ping().await?;
    sender.close().await;
    recipient.close().await;
    blocking(|| node.stop())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Cross-mailbox access
// ---------------------------------------------------------------------------

per_transport!(cross_mailbox: tcp => Tcp, tls => Tls, quic => Quic);

/// X26ABC3 can neither download, acknowledge nor track a message from
/// X26ABC1 to X26ABC2 (nor add chunks to X26ABC1's upload); the sender
/// cannot download or acknowledge it either; the recipient still can.
async fn cross_mailbox(t: Transport) -> anyhow::Result<()> {
    let node = blocking(|| Node::for_transport(t))?;
    let sender = node.client(t, "X26ABC1").await?;
    let recipient = node.client(t, "X26ABC2").await?;
    let other = node.client(t, "X26ABC3").await?;
    let ok = sender
        .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"private"))
        .await?;
    let id = ok.message_id;

    let page = other.list_inbox(None, 100, None).await?;
    ensure!(page.total == 0 && page.messages.is_empty(), "{page:?}");
    refused(
        other.download(id, 1).await,
        WireErrorCode::Forbidden,
        "MSG_NOT_RECIPIENT",
    )?;
    refused(
        other.acknowledge(id).await,
        WireErrorCode::Forbidden,
        "MSG_NOT_RECIPIENT",
    )?;
    // Tracking cannot probe: not yours looks like not there.
    refused(
        other.track(id).await,
        WireErrorCode::NotFound,
        "MSG_NOT_FOUND",
    )?;
    refused(
        recipient.track(id).await,
        WireErrorCode::NotFound,
        "MSG_NOT_FOUND",
    )?;
    refused(
        sender.download(id, 1).await,
        WireErrorCode::Forbidden,
        "MSG_NOT_RECIPIENT",
    )?;
    refused(
        sender.acknowledge(id).await,
        WireErrorCode::Forbidden,
        "MSG_NOT_RECIPIENT",
    )?;
    let unknown = MessageId::parse(UNKNOWN_ID)?;
    refused(
        other.download(unknown, 1).await,
        WireErrorCode::NotFound,
        "MSG_NOT_FOUND",
    )?;

    // Another mailbox cannot complete X26ABC1's chunked upload.
    let mut chunked = header("X26ABC2", WORKFLOW)?;
    chunked.total_chunks = 2;
    let upload = sender.send(chunked, Bytes::from_static(b"1")).await?;
    refused(
        other
            .send_chunk(upload.message_id, 2, Bytes::from_static(b"2"))
            .await,
        WireErrorCode::Forbidden,
        "MSG_NOT_SENDER",
    )?;
    ensure!(
        sender
            .send_chunk(upload.message_id, 2, Bytes::from_static(b"2"))
            .await?
    );

    // Nothing changed for the rightful recipient.
    let tracked = sender.track(id).await?;
    ensure!(tracked.status == MessageStatus::Accepted, "{tracked:?}");
    ensure!(recipient.download(id, 1).await?.body == b"private"[..]);
    recipient.acknowledge(id).await?;
    ensure!(sender.track(id).await?.status == MessageStatus::Acknowledged);
    refused(
        other.acknowledge(id).await,
        WireErrorCode::Forbidden,
        "MSG_NOT_RECIPIENT",
    )?;
    for c in [sender, recipient, other] {
        c.close().await;
    }
    blocking(|| node.stop())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Clients vanishing mid-transfer
// ---------------------------------------------------------------------------

per_transport!(vanishing_clients: tcp => Tcp, quic => Quic);

/// Clients that drop half-way through a multi-MB SEND, or right after
/// asking for (or reading the start of) a large download, leave the
/// server serving everyone else; nothing half-sent is accepted; SIGTERM
/// still exits 0.
async fn vanishing_clients(t: Transport) -> anyhow::Result<()> {
    // Over TCP, few connection slots: a vanished client whose slot was
    // never freed would soon make the node refuse everyone (BUSY). (Over
    // QUIC a client's close can be lost like any datagram, and then the
    // server only notices at its idle timeout, 30 s: not checked here.)
    let max_connections: usize = 8;
    let limit = max_connections.to_string();
    let extra: &[&str] = match t {
        Transport::Tcp => &["--max-connections", &limit],
        Transport::Tls | Transport::Quic => &[],
    };
    let mut node = blocking(|| Node::start_with(Node::security_for(t), extra))?;
    let sender = node.client(t, "X26ABC1").await?;
    let recipient = node.client(t, "X26ABC2").await?;
    let big = pattern(7, 12 * MIB);
    let big_id = sender
        .send(header("X26ABC2", WORKFLOW)?, big.clone())
        .await?
        .message_id;
    let half_send = Request::Send {
        header: header("X26ABC2", WORKFLOW)?,
        body: pattern(8, 8 * MIB),
    };
    let download = Request::Download {
        message_id: big_id,
        chunk_no: 1,
    };

    for round in 0..3 {
        match t {
            Transport::Tcp => {
                // Half of a SEND frame, then gone.
                let mut raw = Raw::connect(node.native).await?;
                ensure!(matches!(
                    raw.hello(1, "X26ABC1", PASSWORD).await?,
                    Response::HelloOk { .. }
                ));
                let mut frame = BytesMut::new();
                raw.codec.encode(2, &half_send, &mut frame)?;
                raw.write_bytes(&frame[..frame.len() / 2]).await?;
                drop(raw);

                // A large download asked for and never read.
                let mut raw = Raw::connect(node.native).await?;
                ensure!(matches!(
                    raw.hello(1, "X26ABC2", PASSWORD).await?,
                    Response::HelloOk { .. }
                ));
                raw.write(2, &download).await?;
                drop(raw);

                // One read for its first piece, a stall, then gone.
                let mut raw = Raw::connect(node.native).await?;
                ensure!(matches!(
                    raw.hello(1, "X26ABC2", PASSWORD).await?,
                    Response::HelloOk { .. }
                ));
                raw.write(2, &download).await?;
                match raw.read().await?.context("closed")? {
                    (2, Response::DownloadData(d)) if d.offset == 0 => {}
                    other => bail!("expected the first piece, got {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                drop(raw);
            }
            Transport::Tls => bail!("raw TLS is not scripted here"),
            Transport::Quic => {
                // Half of a SEND on its stream, then the connection closes.
                let quic = RawQuic::connect(&node).await?;
                ensure!(matches!(
                    quic.call_one(1, &hello("X26ABC1", PASSWORD)?).await?,
                    Response::HelloOk { .. }
                ));
                let frame = quic.encode(2, &half_send)?;
                let (mut send, _recv) = step("open", quic.conn.open_bi()).await??;
                step("write", send.write_all(&frame[..frame.len() / 2])).await??;
                quic.vanish().await?;

                // A large download asked for and dropped after its first bytes.
                let quic = RawQuic::connect(&node).await?;
                ensure!(matches!(
                    quic.call_one(1, &hello("X26ABC2", PASSWORD)?).await?,
                    Response::HelloOk { .. }
                ));
                let (mut send, mut recv) = step("open", quic.conn.open_bi()).await??;
                step("write", send.write_all(&quic.encode(2, &download)?)).await??;
                send.finish()?;
                let mut first = [0u8; 4096];
                step("read", recv.read_exact(&mut first)).await??;
                tokio::time::sleep(Duration::from_millis(200)).await;
                quic.vanish().await?;
            }
        }
        // Everyone else is served meanwhile.
        sender
            .ping()
            .await
            .with_context(|| format!("round {round}"))?;
        let page = recipient.list_inbox(None, 100, None).await?;
        ensure!(
            page.total == 1 && page.messages[0].message_id == big_id,
            "nothing half-sent was accepted: {page:?}"
        );
    }

    let ok = sender
        .send(header("X26ABC2", WORKFLOW)?, Bytes::from_static(b"after"))
        .await?;
    let got = recipient.download(big_id, 1).await?;
    ensure!(got.body == big, "the large message is intact");
    ensure!(recipient.download(ok.message_id, 1).await?.body == b"after"[..]);
    ensure!(blocking(|| node.running())?, "spine serve keeps running");

    // Every vanished client's slot is freed: all the others can connect.
    if t == Transport::Tcp {
        connect_all_at_once(&node, t, max_connections - 2).await?;
    }
    sender.close().await;
    recipient.close().await;
    blocking(|| node.stop())?;
    Ok(())
}

/// Connects `count` clients at once (retrying for a while, as the server
/// may still be noticing dropped connections); fails if the node keeps
/// refusing some of them.
async fn connect_all_at_once(node: &Node, t: Transport, count: usize) -> anyhow::Result<()> {
    for attempt in 1..=50 {
        let mut clients = Vec::new();
        let mut refusal = None;
        for _ in 0..count {
            match node.client(t, "X26ABC3").await {
                Ok(c) => clients.push(c),
                Err(e) => {
                    refusal = Some(e);
                    break;
                }
            }
        }
        for c in clients {
            c.ping().await?;
            c.close().await;
        }
        match refusal {
            None => return Ok(()),
            Some(e) if attempt == 50 => {
                return Err(e.context(format!(
                    "{count} connection slots should be free again; still refused after \
                     {attempt} attempts"
                )))
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 6. A large message streamed both ways in bounded memory
// ---------------------------------------------------------------------------

per_transport!(large_message_with_bounded_server_memory: tcp => Tcp, quic => Quic);

/// Chunk size of the large message.
const LARGE_CHUNK: usize = 4 * MIB;

/// A 64 MiB message (16 chunks of 4 MiB) uploaded with SEND + SEND_CHUNK
/// and downloaded chunk by chunk, compared by SHA-256 (the test holds one
/// chunk at a time too), while the server's resident memory is sampled:
/// its growth must stay well below the message size.
async fn large_message_with_bounded_server_memory(t: Transport) -> anyhow::Result<()> {
    let chunks: u32 = 16;
    let total = LARGE_CHUNK * chunks as usize;
    // Growth allowed over the resident size before the transfer. The
    // transfer holds one 4 MiB chunk at a time per direction (plus
    // allocator and socket buffers); a server holding the message would
    // grow by 64 MiB or more.
    let allowed = 48 * MIB as u64;

    let node = blocking(|| Node::for_transport(t))?;
    let sender = node.client(t, "X26ABC1").await?;
    let recipient = node.client(t, "X26ABC2").await?;
    sender.ping().await?;
    recipient.ping().await?;
    let pid = node.pid()?;
    let before = vm_rss(pid)?;
    let sampler = RssSampler::start(pid)?;

    let mut header = header("X26ABC2", WORKFLOW)?;
    header.total_chunks = chunks;
    header.file_name = Some("large.bin".into());
    let mut sent_hash = Sha256::new();
    let first = pattern(1000, LARGE_CHUNK);
    sent_hash.update(&first);
    let started = sender.send(header, first).await?;
    ensure!(started.status == MessageStatus::Uploading);
    for n in 2..=chunks {
        let body = pattern(1000 + u64::from(n), LARGE_CHUNK);
        sent_hash.update(&body);
        let complete = sender.send_chunk(started.message_id, n, body).await?;
        ensure!(
            complete == (n == chunks),
            "chunk {n}: complete = {complete}"
        );
    }
    let after_upload = vm_rss(pid)?;

    let page = recipient.list_inbox(None, 10, None).await?;
    ensure!(
        page.messages.len() == 1 && page.messages[0].total_chunks == chunks,
        "{page:?}"
    );
    let mut got_hash = Sha256::new();
    let mut got_bytes = 0;
    for n in 1..=chunks {
        let chunk = recipient.download(started.message_id, n).await?;
        ensure!(chunk.chunk_no == n && chunk.body.len() == LARGE_CHUNK);
        got_bytes += chunk.body.len();
        got_hash.update(&chunk.body);
    }
    let peak = blocking(|| sampler.finish());
    let after = vm_rss(pid)?;
    ensure!(got_bytes == total);
    ensure!(
        got_hash.finalize() == sent_hash.finalize(),
        "the downloaded message differs from the one sent"
    );
    recipient.acknowledge(started.message_id).await?;

    let growth = peak.saturating_sub(before);
    eprintln!(
        "{t:?}: server VmRSS before {} MiB, after upload {} MiB, peak {} MiB (growth {} MiB), \
         after {} MiB, for a {} MiB message",
        before >> 20,
        after_upload >> 20,
        peak >> 20,
        growth >> 20,
        after >> 20,
        total >> 20
    );
    ensure!(
        growth < allowed,
        "the server's resident memory grew by {} MiB (from {} to {} MiB) while streaming a {} \
         MiB message; allowed {} MiB",
        growth >> 20,
        before >> 20,
        peak >> 20,
        total >> 20,
        allowed >> 20
    );
    sender.close().await;
    recipient.close().await;
    blocking(|| node.stop())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The client commands
// ---------------------------------------------------------------------------

/// `spine ARGS`, expecting exit `code`.
fn cli(args: &[&str], code: i32) -> anyhow::Result<Finished> {
    let out = run(args)?;
    ensure!(
        out.code() == code,
        "spine {} exited {}, expected {code}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.code(),
        out.stdout,
        out.stderr
    );
    Ok(out)
}

/// `spine ARGS` with `--json`, exit 0, stdout parsed.
fn cli_json(args: &[&str]) -> anyhow::Result<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    let out = cli(&args, 0)?;
    serde_json::from_str(out.stdout.trim()).with_context(|| {
        format!(
            "stdout of spine {} is not JSON: {}",
            args.join(" "),
            out.stdout
        )
    })
}

/// The README quick start through the CLI: send a file from X26ABC1 to
/// X26ABC2, list, read it back, track, acknowledge, look up, watch.
#[test]
fn cli_quick_start_send_a_file_and_read_it_back() -> anyhow::Result<()> {
    let mut node = Node::start(Security::Plain)?;
    let server = node.url(Transport::Tcp)?;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("report.txt");
    // Printable text over three 4 KiB chunks.
    let content: String = (0..10_000)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)))
        .collect();
    std::fs::write(&file, &content)?;
    let as_x1 = [
        "--server",
        &server,
        "--mailbox",
        "X26ABC1",
        "--password",
        PASSWORD,
    ];
    let as_x2 = [
        "--server",
        &server,
        "--mailbox",
        "X26ABC2",
        "--password",
        PASSWORD,
    ];
    let with = |command: &[&str], who: &[&str]| -> Vec<String> {
        command.iter().chain(who).map(|s| s.to_string()).collect()
    };
    let json = |args: Vec<String>| -> anyhow::Result<Value> {
        cli_json(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let sent = json(with(
        &[
            "send",
            "--to",
            "X26ABC2",
            "--workflow",
            WORKFLOW,
            "--file",
            path_str(&file)?,
            "--subject",
            "quick start",
            "--chunk-size",
            "4096",
        ],
        &as_x1,
    ))?;
    let id = sent["message_id"]
        .as_str()
        .context("message_id")?
        .to_owned();
    MessageId::parse(&id)?;
    ensure!(
        sent["chunks"] == 3 && sent["bytes"] == 10_000 && sent["duplicate"] == false,
        "{sent}"
    );

    // Text output, and the connection settings from the environment.
    let out = run_env(
        &[
            "send",
            "--to",
            "X26ABC2",
            "--workflow",
            WORKFLOW,
            "--data",
            "hi",
        ],
        &[
            ("SPINE_SERVER", server.as_str()),
            ("SPINE_MAILBOX", "X26ABC1"),
            ("SPINE_PASSWORD", PASSWORD),
        ],
    )?;
    ensure!(
        out.code() == 0 && out.stdout.starts_with("sent ") && out.stdout.contains("1 chunk"),
        "{out:?}"
    );

    let inbox = json(with(&["inbox"], &as_x2))?;
    ensure!(inbox["total"] == 2, "{inbox}");
    let entry = inbox["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["message_id"] == id.as_str()))
        .with_context(|| format!("{id} listed: {inbox}"))?;
    ensure!(
        entry["sender"] == "X26ABC1"
            && entry["workflow_id"] == WORKFLOW
            && entry["total_chunks"] == 3,
        "{entry}"
    );
    let text = cli(
        &with(&["inbox"], &as_x2)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        0,
    )?;
    ensure!(
        text.stdout.starts_with("2 message(s) waiting") && text.stdout.contains(&id),
        "{}",
        text.stdout
    );

    let out_file = tmp.path().join("received.txt");
    let got = json(with(&["get", &id, "--out", path_str(&out_file)?], &as_x2))?;
    ensure!(
        got["bytes"] == 10_000
            && got["envelope"]["message_id"] == id.as_str()
            && got["envelope"]["subject"] == "quick start"
            && got["envelope"]["file_name"] == "report.txt",
        "{got}"
    );
    ensure!(std::fs::read_to_string(&out_file)? == content);
    let to_stdout = cli(
        &with(&["get", &id], &as_x2)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        0,
    )?;
    ensure!(to_stdout.stdout == content, "content on stdout");

    let tracked = json(with(&["track", &id], &as_x1))?;
    ensure!(
        tracked["status"] == "accepted" && tracked["recipient"] == "X26ABC2",
        "{tracked}"
    );
    let acked = json(with(&["ack", &id], &as_x2))?;
    ensure!(acked["acknowledged"] == true, "{acked}");
    let tracked = json(with(&["track", &id], &as_x1))?;
    ensure!(
        tracked["status"] == "acknowledged" && tracked["acknowledged_at"].is_string(),
        "{tracked}"
    );

    let found = json(with(
        &["lookup", "--workflow", WORKFLOW_ALL, "--ods", "X26"],
        &as_x1,
    ))?;
    let ids: Vec<&str> = found["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|r| r["mailbox_id"].as_str())
        .collect();
    ensure!(ids == ["X26ABC1", "X26ABC2"], "{found}");

    // `spine watch --count 1` prints the first message pushed after it
    // subscribed, then exits 0. Keep sending until it has seen one.
    let mut watch_args = vec!["watch", "--count", "1", "--json", "--timeout", "20"];
    watch_args.extend_from_slice(&as_x2);
    let mut watch = Spine::start(&watch_args)?;
    let mut sent_ids = Vec::new();
    for _ in 0..100 {
        let s = json(with(
            &[
                "send",
                "--to",
                "X26ABC2",
                "--workflow",
                WORKFLOW,
                "--data",
                "watched",
            ],
            &as_x1,
        ))?;
        sent_ids.push(s["message_id"].as_str().context("id")?.to_owned());
        if !watch.running()? {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let watched = watch.wait()?;
    ensure!(watched.code() == 0, "{watched:?}");
    let line: Value = serde_json::from_str(watched.stdout.trim())
        .with_context(|| format!("one JSON line: {}", watched.stdout))?;
    let pushed = line["message_id"].as_str().context("message_id")?;
    ensure!(
        sent_ids.iter().any(|s| s == pushed) && line["sender"] == "X26ABC1",
        "{line}"
    );
    ensure!(node.running()?);
    node.stop()?;
    Ok(())
}

/// The CLI over TLS and QUIC, with the development CA (and a client
/// certificate against a node that requires one).
#[test]
fn cli_over_tls_and_quic() -> anyhow::Result<()> {
    let node = Node::start(Security::MutualTls)?;
    let ca = node.cert_file("ca.pem")?;
    let ca = path_str(&ca)?.to_owned();
    let (c1, k1) = node.client_cert("X26ABC1")?;
    let (c2, k2) = node.client_cert("X26ABC2")?;
    let (c1, k1, c2, k2) = (
        path_str(&c1)?,
        path_str(&k1)?,
        path_str(&c2)?,
        path_str(&k2)?,
    );
    let quic = node.url(Transport::Quic)?;
    let tls = node.url(Transport::Tls)?;

    let sent = cli_json(&[
        "send",
        "--server",
        &quic,
        "--ca",
        &ca,
        "--cert",
        c1,
        "--key",
        k1,
        "--mailbox",
        "X26ABC1",
        "--password",
        "unused",
        "--to",
        "X26ABC2",
        "--workflow",
        WORKFLOW,
        "--data",
        "over quic",
    ])?;
    let id = sent["message_id"].as_str().context("message_id")?;
    let got = cli_json(&[
        "get",
        id,
        "--server",
        &tls,
        "--ca",
        &ca,
        "--cert",
        c2,
        "--key",
        k2,
        "--mailbox",
        "X26ABC2",
        "--password",
        "unused",
    ])?;
    ensure!(
        got["content"] == "over quic" && got["envelope"]["sender"] == "X26ABC1",
        "{got}"
    );
    let acked = cli_json(&[
        "ack",
        id,
        "--server",
        &quic,
        "--ca",
        &ca,
        "--cert",
        c2,
        "--key",
        k2,
        "--mailbox",
        "X26ABC2",
        "--password",
        "unused",
    ])?;
    ensure!(acked["acknowledged"] == true, "{acked}");

    // Refused: another mailbox's certificate (5); no certificate (3).
    let out = cli(
        &[
            "inbox",
            "--server",
            &tls,
            "--ca",
            &ca,
            "--cert",
            c1,
            "--key",
            k1,
            "--mailbox",
            "X26ABC2",
            "--password",
            PASSWORD,
        ],
        5,
    )?;
    ensure!(
        out.stderr.contains("spine: error [AUTH_FAILED]"),
        "{}",
        out.stderr
    );
    for server in [&tls, &quic] {
        let out = cli(
            &[
                "inbox",
                "--server",
                server,
                "--ca",
                &ca,
                "--mailbox",
                "X26ABC1",
                "--password",
                PASSWORD,
                "--timeout",
                "10",
            ],
            3,
        )?;
        ensure!(
            out.stderr.starts_with("spine: error [CLIENT_"),
            "{}",
            out.stderr
        );
    }
    // Without the CA the server cannot be verified: no insecure fallback.
    let out = cli(
        &[
            "inbox",
            "--server",
            &tls,
            "--mailbox",
            "X26ABC1",
            "--password",
            PASSWORD,
        ],
        3,
    )?;
    ensure!(out.stderr.contains("[CLIENT_TLS]"), "{}", out.stderr);
    node.stop()?;
    Ok(())
}

/// Exit statuses: 5 when the server refuses, 3 when it is unreachable, 1
/// for bad arguments; one `spine: error [CODE]` line on stderr each time.
#[test]
fn cli_exit_codes() -> anyhow::Result<()> {
    let node = Node::start(Security::Plain)?;
    let server = node.url(Transport::Tcp)?;
    let as_x1 = [
        "--server",
        server.as_str(),
        "--mailbox",
        "X26ABC1",
        "--password",
        PASSWORD,
    ];
    let args = |command: &[&str], who: &[&str]| -> Vec<String> {
        command.iter().chain(who).map(|s| s.to_string()).collect()
    };
    let expect = |args: Vec<String>, code: i32, error: &str| -> anyhow::Result<()> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&refs, code)?;
        ensure!(
            out.stderr.contains(error) && out.stdout.is_empty(),
            "spine {}: expected {error:?} on stderr\nstdout: {}\nstderr: {}",
            refs.join(" "),
            out.stdout,
            out.stderr
        );
        Ok(())
    };

    // 5: the server refused.
    expect(
        args(&["get", UNKNOWN_ID], &as_x1),
        5,
        "spine: error [MSG_NOT_FOUND]",
    )?;
    expect(
        args(&["track", UNKNOWN_ID], &as_x1),
        5,
        "spine: error [MSG_NOT_FOUND]",
    )?;
    expect(
        args(
            &[
                "inbox",
                "--server",
                &server,
                "--mailbox",
                "X26ABC1",
                "--password",
                "wrong",
            ],
            &[],
        ),
        5,
        "spine: error [AUTH_FAILED]",
    )?;
    expect(
        args(
            &[
                "send",
                "--to",
                "X26ABC3",
                "--workflow",
                WORKFLOW,
                "--data",
                "x",
            ],
            &as_x1,
        ),
        5,
        "spine: error [DIR_WORKFLOW_NOT_REGISTERED]",
    )?;

    // 3: nothing listens there.
    let closed = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        l.local_addr()?
    };
    expect(
        args(
            &[
                "inbox",
                "--server",
                &format!("native://{closed}"),
                "--mailbox",
                "X26ABC1",
                "--password",
                PASSWORD,
                "--timeout",
                "5",
            ],
            &[],
        ),
        3,
        "spine: error [CLIENT_CONNECT_FAILED]",
    )?;

    // 1: bad arguments, refused before connecting.
    expect(
        args(&["send", "--workflow", WORKFLOW, "--data", "x"], &as_x1),
        1,
        "--to",
    )?;
    expect(
        args(
            &[
                "send",
                "--to",
                "not a mailbox!",
                "--workflow",
                WORKFLOW,
                "--data",
                "x",
            ],
            &as_x1,
        ),
        1,
        "spine: error [CLI_ARGUMENT_INVALID]",
    )?;
    expect(
        args(&["get", "not-a-message-id"], &as_x1),
        1,
        "spine: error [CLI_ARGUMENT_INVALID]",
    )?;
    expect(
        args(
            &[
                "send",
                "--to",
                "X26ABC2",
                "--workflow",
                WORKFLOW,
                "--data",
                "x",
                "--chunk-size",
                "0",
            ],
            &as_x1,
        ),
        1,
        "spine: error [CLI_ARGUMENT_INVALID]",
    )?;
    expect(
        args(
            &[
                "inbox",
                "--server",
                "http://127.0.0.1:1",
                "--mailbox",
                "X26ABC1",
                "--password",
                "p",
            ],
            &[],
        ),
        1,
        "spine: error [CLIENT_ENDPOINT_INVALID]",
    )?;
    expect(
        args(&["inbox", "--server", &server, "--mailbox", "X26ABC1"], &[]),
        1,
        "spine: error [CLI_PASSWORD_MISSING]",
    )?;
    expect(
        args(&["send", "--to", "X26ABC2", "--workflow", WORKFLOW], &as_x1),
        1,
        "CLI_CONTENT_MISSING",
    )?;
    node.stop()?;
    Ok(())
}
