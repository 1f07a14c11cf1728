//! Crash durability through the real binary: the promise that an
//! acknowledgement to a sender means the message is on disk and is never
//! lost afterwards, whatever happens to the process.
//!
//! One `spine serve` node (a generated JSONL directory of [`MAILBOXES`]
//! mailboxes spread over the partitions; 1 MiB log segments and compaction
//! checked every 200 ms, so rotation, carrying forward and freeing segments
//! happen under the kills) takes load over both APIs at once: native single
//! sends, `SEND_BATCH`es and chunked uploads through `spine-client`, MESH
//! single sends and chunked uploads (`Mex-Chunk-Range: 1:N`, then
//! `/outbox/{id}/{n}`) as raw HTTP/1.1 with NHSMESH tokens, half of them
//! with an idempotency key; meanwhile recipients download (checking the
//! bytes) and acknowledge messages, natively and over MESH. After a seeded
//! 50–500 ms the node is killed with SIGKILL and restarted on the same data
//! directory. A ledger records every request: what the node acknowledged
//! (message id, chunks) and what was in flight when it died. Every message
//! carries its tag in its subject and its bytes are a function of the tag,
//! so anything found in an inbox can be checked.
//!
//! After each restart ([`Check`]):
//! - every message acknowledged to its sender and not yet collected is
//!   listed exactly once in its recipient's inbox (all pages, seeded page
//!   sizes) and downloads natively with the right bytes and envelope;
//! - a message whose recipient acknowledgement was answered is never listed
//!   again (and tracks as acknowledged);
//! - a chunked message interrupted mid-upload is never listed and never
//!   downloadable (native or MESH) and tracks as `uploading` with every
//!   acknowledged chunk (at most the one in flight more); finishing it after
//!   the restart (half of them at once, the rest after more kills) makes it
//!   appear once, whole;
//! - a request in flight at the kill took effect once (then it is held to
//!   the same promise from then on) or not at all (then it never appears);
//!   sends with a key are retried with it and yield exactly one message,
//!   and acknowledged ones sent again are answered with their original id.
//!
//! The schedule (seeds, load mix, delays, page sizes, which messages are
//! collected or finished) is fixed by [`SEEDS`]; how many messages fit in a
//! round depends on the machine, what is asserted does not. Set
//! `SPINE_CRASH_SEEDS=1,2,0x3` to run other schedules. A failure lists every
//! problem found at that restart, naming the seed, round and message tag
//! (`r<round>.<worker>.<n>`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context};
use bytes::Bytes;
use serde_json::Value;
use spine_client::{BatchItem, Client, ClientConfig, ClientError, Endpoint, SendHeader};
use spine_core::ids::{MailboxId, MessageId, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::time::Timestamp;
use spine_protocol::mesh::auth::make_token;
use spine_tests::Spine;

/// One seed per round: the round's load mix, its length before the kill
/// (50–500 ms) and the choices made while checking.
const SEEDS: [u64; 10] = [
    0x5EED_0001,
    0xC0FF_EE02,
    0xDEAD_BEE3,
    0x0BAD_F00D,
    0x1234_5678,
    0x8BAD_F00D,
    0xFEED_FACE,
    0x0DDB_A115,
    0xB0BA_CAFE,
    0x5EED_0010,
];
/// Mailboxes in the generated directory; any sends to any.
const MAILBOXES: usize = 12;
/// Not in the directory's workflows file: unrestricted.
const WORKFLOW: &str = "CRASH_TEST";
/// The default MESH shared key.
const SHARED_KEY: &[u8] = b"BackBone";
/// Bound on one socket operation or client request.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one phase (checking, repairing, joining the load).
const PHASE_LIMIT: Duration = Duration::from_secs(60);
/// Bound on the whole test.
const TEST_LIMIT: Duration = Duration::from_secs(240);
/// Downloads in flight at once while checking bytes.
const DOWNLOAD_CONCURRENCY: usize = 16;

// ---------------------------------------------------------------------------
// Determinism: seeds and content
// ---------------------------------------------------------------------------

/// SplitMix64: small, seedable, good enough for schedules and bytes.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The bytes of chunk `chunk` (1-based) of the message tagged `tag`: mostly
/// small, one in twelve 16–64 KiB.
fn content(tag: &str, chunk: u32) -> Bytes {
    let mut rng = Rng::new(fnv1a(tag.as_bytes()) ^ u64::from(chunk).wrapping_mul(0xA24B_AED4));
    let len = if rng.below(12) == 0 {
        (16 << 10) + rng.below(48 << 10)
    } else {
        1 + rng.below(3000)
    } as usize;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn mailbox(i: usize) -> String {
    format!("CRASH{i:02}")
}

fn password(i: usize) -> String {
    format!("crash-pw-{i:02}")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// The ledger: what was asked, what the node acknowledged
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Api {
    Native,
    Mesh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Chunk 1 was sent and not answered (the node died): it may or may
    /// not exist.
    InDoubt,
    /// In doubt at a kill, then not found after the restart: the node
    /// never had it, so it must never appear.
    Absent,
    /// Chunk 1 (and `acked` chunks in all) acknowledged; not complete.
    Uploading,
    /// Complete and acknowledged to its sender: listed exactly once until
    /// its recipient acknowledges it.
    Pending,
    /// The recipient's acknowledgement was sent and not answered.
    AckInDoubt,
    /// Acknowledged by its recipient (answered): never listed again.
    Collected,
}

/// What a send asks for; the body is [`content`] of the tag.
#[derive(Clone, Debug)]
struct Spec {
    tag: String,
    api: Api,
    sender: usize,
    recipient: usize,
    total: u32,
    key: Option<String>,
}

#[derive(Debug)]
struct Attempt {
    spec: Spec,
    round: usize,
    id: Option<String>,
    state: State,
    /// Chunks acknowledged to the sender (or found after a restart).
    acked: u32,
    /// An upload of chunk `acked + 1` was unanswered at the kill.
    chunk_in_flight: bool,
    /// Found after a restart without having been acknowledged.
    adopted: bool,
    /// Seen interrupted mid-upload by a kill.
    interrupted: bool,
}

#[derive(Debug, Default)]
struct Ledger {
    attempts: Vec<Attempt>,
    by_tag: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    /// Failures seen by the load (requests refused before the kill, answers
    /// that contradict the ledger).
    problems: Vec<String>,
}

impl Ledger {
    fn begin(&mut self, spec: Spec, round: usize) -> usize {
        let idx = self.attempts.len();
        self.by_tag.insert(spec.tag.clone(), idx);
        self.attempts.push(Attempt {
            spec,
            round,
            id: None,
            state: State::InDoubt,
            acked: 0,
            chunk_in_flight: false,
            adopted: false,
            interrupted: false,
        });
        idx
    }

    /// Chunk 1 of `idx` was acknowledged as message `id`.
    fn first_acked(&mut self, idx: usize, id: &str) {
        if let Some(&other) = self.by_id.get(id) {
            if other != idx {
                let msg = format!(
                    "message id {id} acknowledged for {} was already {}'s",
                    self.attempts[idx].spec.tag, self.attempts[other].spec.tag
                );
                self.problems.push(msg);
                return;
            }
        }
        self.by_id.insert(id.to_string(), idx);
        let a = &mut self.attempts[idx];
        a.id = Some(id.to_string());
        a.acked = 1;
        a.state = if a.spec.total == 1 {
            State::Pending
        } else {
            State::Uploading
        };
    }

    fn chunk_started(&mut self, idx: usize) {
        self.attempts[idx].chunk_in_flight = true;
    }

    fn chunk_acked(&mut self, idx: usize) {
        let a = &mut self.attempts[idx];
        a.chunk_in_flight = false;
        a.acked += 1;
        if a.acked == a.spec.total {
            a.state = State::Pending;
        }
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

// ---------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------

/// Where the node keeps its data and directory across restarts.
#[derive(Debug)]
struct Site {
    data: tempfile::TempDir,
    mailboxes: PathBuf,
    workflows: PathBuf,
}

impl Site {
    fn new() -> anyhow::Result<Site> {
        let data = tempfile::tempdir()?;
        let dir = data.path().join("directory");
        std::fs::create_dir_all(&dir)?;
        let mailboxes = dir.join("mailboxes.jsonl");
        let workflows = dir.join("workflows.jsonl");
        let mut text = String::new();
        for i in 0..MAILBOXES {
            let line = serde_json::json!({
                "mailbox_id": mailbox(i),
                "mailbox_name": format!("Crash test mailbox {i}"),
                "ods_code": format!("C{i:02}"),
                "password": password(i),
            });
            text.push_str(&format!("{line}\n"));
        }
        std::fs::write(&mailboxes, text)?;
        // A restricted workflow nobody uses: CRASH_TEST stays unrestricted.
        std::fs::write(
            &workflows,
            format!(
                "{}\n",
                serde_json::json!({
                    "workflow_id": "CRASH_RESTRICTED",
                    "senders": [mailbox(0)],
                    "receivers": [mailbox(1)],
                })
            ),
        )?;
        Ok(Site {
            data,
            mailboxes,
            workflows,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }
}

#[derive(Debug)]
struct Node {
    spine: Spine,
    native: SocketAddr,
    mesh: SocketAddr,
}

/// What the node's logs said across runs: recovery and compaction at work,
/// and any warning or error (shown in the summary).
#[derive(Debug, Default)]
struct LogSummary {
    /// Recoveries that cut a torn record off the log's tail.
    torn_tails: usize,
    /// Segments freed by compaction at start-up.
    freed_at_start: u64,
    /// Segments freed by compaction while serving.
    freed_online: u64,
    /// Distinct warning and error messages.
    warnings: BTreeSet<String>,
}

impl LogSummary {
    fn add(&mut self, stderr: &str) {
        for line in stderr.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let message = v["message"].as_str().unwrap_or_default();
            if message == "recovered the write-ahead log" {
                if v["truncated_torn_tail"].as_str() != Some("none") {
                    self.torn_tails += 1;
                }
                let report = v["compaction"].as_str().unwrap_or_default();
                self.freed_at_start += report
                    .split("segments_removed: ")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if message == "compaction freed log segments" {
                self.freed_online += v["removed"].as_u64().unwrap_or(0);
            }
            if matches!(v["level"].as_str(), Some("WARN" | "ERROR"))
                && !message.starts_with("no directory configured")
            {
                self.warnings.insert(format!("{}: {message}", v["level"]));
            }
        }
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 path")
}

fn logged_addr(logged: &Value, field: &str, scheme: &str) -> anyhow::Result<SocketAddr> {
    let shown = logged[field]
        .as_str()
        .with_context(|| format!("no {field} in {logged}"))?;
    Ok(shown
        .strip_prefix(scheme)
        .with_context(|| format!("{field} is {shown:?}, expected {scheme}IP:PORT"))?
        .parse()?)
}

impl Node {
    /// Serves the site's data directory (recovering whatever is there)
    /// until ready.
    fn start(site: &Site) -> anyhow::Result<Node> {
        let data = site.data_dir();
        let args = [
            "serve",
            "--data-dir",
            path_str(&data)?,
            "--mailboxes",
            path_str(&site.mailboxes)?,
            "--workflows",
            path_str(&site.workflows)?,
            "--hash-iterations",
            "1",
            "--log-format",
            "json",
            "--metrics-enabled",
            "false",
            "--native-listen",
            "127.0.0.1:0",
            "--quic-enabled",
            "false",
            "--mesh-listen",
            "127.0.0.1:0",
            // Rotation and compaction happen under the kills too.
            "--segment-bytes",
            "1048576",
            "--compaction-min-log-bytes",
            "0",
            "--compaction-check-ms",
            "200",
        ];
        let mut spine = Spine::start(&args)?;
        let line = spine.wait_for_log("listen addresses")?;
        spine.wait_for_log("ready; send SIGINT or SIGTERM to stop")?;
        let logged: Value = serde_json::from_str(&line)?;
        Ok(Node {
            native: logged_addr(&logged, "native", "tcp://")?,
            mesh: logged_addr(&logged, "mesh", "http://")?,
            spine,
        })
    }

    /// SIGKILL, then waits (bounded) for the process to be gone.
    fn kill(self, log: &mut LogSummary) -> anyhow::Result<()> {
        self.spine.signal("KILL")?;
        let out = self.spine.wait()?;
        ensure!(
            out.status.code().is_none(),
            "spine was expected to die of SIGKILL, it exited {}",
            out.code()
        );
        ensure!(
            !out.stderr.contains("panicked"),
            "the node panicked before the kill; log:\n{}",
            out.stderr
        );
        log.add(&out.stderr);
        Ok(())
    }

    /// SIGTERM; expects a clean exit 0.
    fn stop(self, log: &mut LogSummary) -> anyhow::Result<()> {
        self.spine.signal("TERM")?;
        let out = self.spine.wait()?;
        ensure!(
            out.code() == 0 && !out.stderr.contains("panicked"),
            "spine serve exited {} after SIGTERM; log:\n{}",
            out.code(),
            out.stderr
        );
        log.add(&out.stderr);
        Ok(())
    }

    async fn clients(&self) -> anyhow::Result<Vec<Client>> {
        let mut clients = Vec::with_capacity(MAILBOXES);
        for i in 0..MAILBOXES {
            let endpoint = Endpoint::parse(&format!("native://{}", self.native))?;
            let mut config =
                ClientConfig::new(endpoint, MailboxId::parse(&mailbox(i))?, password(i));
            config.client_name = "spine-tests/crash".into();
            config.connect_timeout = IO_TIMEOUT;
            config.request_timeout = IO_TIMEOUT;
            let client = Client::connect(config)
                .await
                .with_context(|| format!("connecting as {}", mailbox(i)))?;
            clients.push(client);
        }
        Ok(clients)
    }
}

// ---------------------------------------------------------------------------
// MESH over raw HTTP/1.1
// ---------------------------------------------------------------------------

fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    Timestamp::from_micros(micros)
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn message_id(&self) -> anyhow::Result<String> {
        let v: Value = serde_json::from_slice(&self.body)
            .with_context(|| format!("JSON body: {}", String::from_utf8_lossy(&self.body)))?;
        Ok(v["message_id"]
            .as_str()
            .with_context(|| format!("no message_id in {v}"))?
            .to_string())
    }

    fn describe(&self) -> String {
        format!(
            "HTTP {} {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
        )
    }
}

/// One keep-alive HTTP/1.1 connection; each request carries a fresh
/// NHSMESH token (this connection's nonce, an increasing count).
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    nonce: String,
    count: u64,
}

impl Conn {
    fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        static NONCES: AtomicU64 = AtomicU64::new(0);
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let n = NONCES.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            stream,
            buf: Vec::new(),
            nonce: format!("crash-{}-{n}", std::process::id()),
            count: 0,
        })
    }

    fn token(&mut self, mb: usize) -> String {
        self.count += 1;
        make_token(
            &mailbox(mb),
            &password(mb),
            SHARED_KEY,
            &self.nonce,
            self.count,
            now(),
        )
    }

    fn request(
        &mut self,
        as_mailbox: usize,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Reply> {
        let auth = self.token(as_mailbox);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/vnd.mesh.v2+json\r\nAuthorization: {auth}\r\n"
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body)?;
        self.read_reply(method == "HEAD")
    }

    fn fill(&mut self) -> anyhow::Result<usize> {
        let mut chunk = [0u8; 64 << 10];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn read_reply(&mut self, head_only: bool) -> anyhow::Result<Reply> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.fill()? == 0 {
                bail!("connection closed before a response");
            }
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf = self.buf.split_off(end + 4);
        let mut lines = text.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .context("status line")?
            .parse()?;
        let mut len = 0usize;
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") && !head_only {
                    len = v.trim().parse()?;
                }
            }
        }
        while self.buf.len() < len {
            if self.fill()? == 0 {
                bail!("connection closed mid-body");
            }
        }
        let rest = self.buf.split_off(len);
        let body = std::mem::replace(&mut self.buf, rest);
        Ok(Reply { status, body })
    }

    /// `POST /outbox`: chunk 1 of `spec`.
    fn send(&mut self, spec: &Spec) -> anyhow::Result<Reply> {
        let to = mailbox(spec.recipient);
        let range = format!("1:{}", spec.total);
        let mut headers = vec![
            ("Mex-To", to.as_str()),
            ("Mex-WorkflowID", WORKFLOW),
            ("Mex-Chunk-Range", range.as_str()),
            ("Mex-Subject", spec.tag.as_str()),
            ("Content-Type", "application/octet-stream"),
        ];
        if let Some(key) = &spec.key {
            headers.push(("Mex-Idempotency-Key", key.as_str()));
        }
        let path = format!("/messageexchange/{}/outbox", mailbox(spec.sender));
        self.request(spec.sender, "POST", &path, &headers, &content(&spec.tag, 1))
    }

    /// `POST /outbox/{id}/{n}`: chunk `n` of `spec`.
    fn upload(&mut self, spec: &Spec, id: &str, n: u32) -> anyhow::Result<Reply> {
        let range = format!("{n}:{}", spec.total);
        let path = format!("/messageexchange/{}/outbox/{id}/{n}", mailbox(spec.sender));
        self.request(
            spec.sender,
            "POST",
            &path,
            &[
                ("Mex-Chunk-Range", range.as_str()),
                ("Content-Type", "application/octet-stream"),
            ],
            &content(&spec.tag, n),
        )
    }

    fn acknowledge(&mut self, recipient: usize, id: &str) -> anyhow::Result<Reply> {
        let path = format!(
            "/messageexchange/{}/inbox/{id}/status/acknowledged",
            mailbox(recipient)
        );
        self.request(recipient, "PUT", &path, &[], b"")
    }

    fn download(&mut self, recipient: usize, id: &str, n: u32) -> anyhow::Result<Reply> {
        let path = format!("/messageexchange/{}/inbox/{id}/{n}", mailbox(recipient));
        self.request(recipient, "GET", &path, &[], b"")
    }
}

// ---------------------------------------------------------------------------
// Load: senders and recipients racing the kill
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct RoundCtx {
    round: usize,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
    killed: AtomicBool,
}

impl RoundCtx {
    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Records a failure, unless the node has been killed (then failures
    /// are expected and the request is in doubt).
    fn failed(&self, what: String) {
        if !self.killed() {
            lock(&self.ledger).problem(format!(
                "seed {:#x} round {}: {what} (before the kill)",
                self.seed, self.round
            ));
        }
    }

    fn spec(
        &self,
        rng: &mut Rng,
        api: Api,
        worker: &str,
        n: u64,
        sender: usize,
        total: u32,
    ) -> Spec {
        let tag = format!("r{}.{worker}.{n}", self.round);
        let key = rng.chance(50).then(|| format!("k-{tag}"));
        Spec {
            tag,
            api,
            sender,
            recipient: rng.index(MAILBOXES),
            total,
            key,
        }
    }
}

fn native_header(spec: &Spec) -> anyhow::Result<SendHeader> {
    let mut header = SendHeader::simple(
        MailboxId::parse(&mailbox(spec.recipient))?,
        WorkflowId::parse(WORKFLOW)?,
    );
    header.subject = Some(spec.tag.clone());
    header.total_chunks = spec.total;
    header.idempotency_key = spec.key.clone();
    Ok(header)
}

fn parse_id(id: &str) -> anyhow::Result<MessageId> {
    MessageId::parse(id).map_err(|e| anyhow!("message id {id:?}: {e}"))
}

/// Native single sends, one after another (several of these share a
/// client, so the connection is pipelined).
async fn native_singles(
    ctx: Arc<RoundCtx>,
    client: Client,
    sender: usize,
    worker: String,
    mut rng: Rng,
) {
    let mut n = 0;
    while !ctx.killed() {
        n += 1;
        let spec = ctx.spec(&mut rng, Api::Native, &worker, n, sender, 1);
        let Ok(header) = native_header(&spec) else {
            ctx.failed(format!("{}: bad header", spec.tag));
            return;
        };
        let body = content(&spec.tag, 1);
        let idx = lock(&ctx.ledger).begin(spec.clone(), ctx.round);
        match client.send(header, body).await {
            Ok(ok) => {
                let mut ledger = lock(&ctx.ledger);
                if ok.duplicate || ok.status != MessageStatus::Accepted {
                    ledger.problem(format!("{}: fresh send answered {ok:?}", spec.tag));
                }
                ledger.first_acked(idx, ok.message_id.as_str());
            }
            Err(e) => {
                ctx.failed(format!("native send {}: {e}", spec.tag));
                return;
            }
        }
    }
}

/// Native `SEND_BATCH`es of 2–6 messages.
async fn native_batches(
    ctx: Arc<RoundCtx>,
    client: Client,
    sender: usize,
    worker: String,
    mut rng: Rng,
) {
    let mut n = 0;
    while !ctx.killed() {
        let count = 2 + rng.below(5);
        let mut items = Vec::new();
        let mut idxs = Vec::new();
        for _ in 0..count {
            n += 1;
            let spec = ctx.spec(&mut rng, Api::Native, &worker, n, sender, 1);
            let Ok(header) = native_header(&spec) else {
                ctx.failed(format!("{}: bad header", spec.tag));
                return;
            };
            items.push(BatchItem {
                header,
                body: content(&spec.tag, 1),
            });
            idxs.push((lock(&ctx.ledger).begin(spec.clone(), ctx.round), spec.tag));
        }
        match client.send_batch(items).await {
            Ok(results) => {
                let mut ledger = lock(&ctx.ledger);
                for ((idx, tag), result) in idxs.into_iter().zip(results) {
                    match result {
                        Ok(ok) if !ok.duplicate && ok.status == MessageStatus::Accepted => {
                            ledger.first_acked(idx, ok.message_id.as_str());
                        }
                        Ok(ok) => ledger.problem(format!("{tag}: batch item answered {ok:?}")),
                        Err(e) => {
                            // An item refused while the node is being
                            // killed is in doubt like any other.
                            if !ctx.killed() {
                                ledger.problem(format!("{tag}: batch item refused: {e:?}"));
                            }
                        }
                    }
                }
            }
            Err(e) => {
                ctx.failed(format!("native batch ending {n}: {e}"));
                return;
            }
        }
    }
}

/// Native chunked messages (2–5 chunks): `SEND` then `SEND_CHUNK`s.
async fn native_chunked(
    ctx: Arc<RoundCtx>,
    client: Client,
    sender: usize,
    worker: String,
    mut rng: Rng,
) {
    let mut n = 0;
    while !ctx.killed() {
        n += 1;
        let total = 2 + rng.below(4) as u32;
        let spec = ctx.spec(&mut rng, Api::Native, &worker, n, sender, total);
        let Ok(header) = native_header(&spec) else {
            ctx.failed(format!("{}: bad header", spec.tag));
            return;
        };
        let idx = lock(&ctx.ledger).begin(spec.clone(), ctx.round);
        let id = match client.send(header, content(&spec.tag, 1)).await {
            Ok(ok) => {
                let mut ledger = lock(&ctx.ledger);
                if ok.duplicate || ok.status != MessageStatus::Uploading {
                    ledger.problem(format!("{}: chunk 1 answered {ok:?}", spec.tag));
                }
                ledger.first_acked(idx, ok.message_id.as_str());
                ok.message_id
            }
            Err(e) => {
                ctx.failed(format!("native send {} chunk 1: {e}", spec.tag));
                return;
            }
        };
        for chunk in 2..=total {
            lock(&ctx.ledger).chunk_started(idx);
            match client
                .send_chunk(id, chunk, content(&spec.tag, chunk))
                .await
            {
                Ok(complete) => {
                    let mut ledger = lock(&ctx.ledger);
                    if complete != (chunk == total) {
                        ledger.problem(format!("{}: chunk {chunk} complete={complete}", spec.tag));
                    }
                    ledger.chunk_acked(idx);
                }
                Err(e) => {
                    ctx.failed(format!("native chunk {chunk} of {}: {e}", spec.tag));
                    return;
                }
            }
        }
    }
}

/// MESH single sends (`chunks == 1`) or chunked uploads, one connection.
fn mesh_sender(
    ctx: Arc<RoundCtx>,
    mesh: SocketAddr,
    sender: usize,
    worker: String,
    chunked: bool,
    mut rng: Rng,
) {
    let mut conn = match Conn::open(mesh) {
        Ok(c) => c,
        Err(e) => {
            ctx.failed(format!("MESH connect: {e}"));
            return;
        }
    };
    let mut n = 0;
    while !ctx.killed() {
        n += 1;
        let total = if chunked { 2 + rng.below(4) as u32 } else { 1 };
        let spec = ctx.spec(&mut rng, Api::Mesh, &worker, n, sender, total);
        let idx = lock(&ctx.ledger).begin(spec.clone(), ctx.round);
        let id = match conn.send(&spec) {
            Ok(r) if r.status == 202 => match r.message_id() {
                Ok(id) => {
                    lock(&ctx.ledger).first_acked(idx, &id);
                    id
                }
                Err(e) => {
                    ctx.failed(format!("MESH send {}: {e}", spec.tag));
                    return;
                }
            },
            Ok(r) => {
                ctx.failed(format!("MESH send {}: {}", spec.tag, r.describe()));
                return;
            }
            Err(e) => {
                ctx.failed(format!("MESH send {}: {e}", spec.tag));
                return;
            }
        };
        for chunk in 2..=total {
            lock(&ctx.ledger).chunk_started(idx);
            match conn.upload(&spec, &id, chunk) {
                Ok(r) if r.status == 202 => lock(&ctx.ledger).chunk_acked(idx),
                Ok(r) => {
                    ctx.failed(format!(
                        "MESH chunk {chunk} of {}: {}",
                        spec.tag,
                        r.describe()
                    ));
                    return;
                }
                Err(e) => {
                    ctx.failed(format!("MESH chunk {chunk} of {}: {e}", spec.tag));
                    return;
                }
            }
        }
    }
}

/// A random message waiting for one of the recipients a collector serves
/// (even or odd mailboxes, so two collectors never race for a message): its
/// ledger index, what was sent, its id.
fn pick_waiting(ctx: &RoundCtx, rng: &mut Rng, odd: bool) -> Option<(usize, Spec, String)> {
    let ledger = lock(&ctx.ledger);
    let waiting: Vec<usize> = ledger
        .attempts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.state == State::Pending && (a.spec.recipient % 2 == 1) == odd)
        .map(|(i, _)| i)
        .collect();
    let idx = *waiting.get(rng.index(waiting.len()))?;
    let a = &ledger.attempts[idx];
    Some((idx, a.spec.clone(), a.id.clone()?))
}

/// Marks `idx` as being acknowledged by its recipient, unless another
/// recipient worker got there first.
fn ack_started(ctx: &RoundCtx, idx: usize) -> bool {
    let mut ledger = lock(&ctx.ledger);
    let a = &mut ledger.attempts[idx];
    if a.state != State::Pending {
        return false;
    }
    a.state = State::AckInDoubt;
    true
}

fn ack_done(ctx: &RoundCtx, idx: usize) {
    lock(&ctx.ledger).attempts[idx].state = State::Collected;
}

/// Recipients (even mailboxes) collecting natively until the kill: downloads a waiting
/// message (checking its bytes), then acknowledges it.
async fn native_collector(ctx: Arc<RoundCtx>, clients: Vec<Client>, mut rng: Rng) {
    while !ctx.killed() {
        let Some((idx, spec, id)) = pick_waiting(&ctx, &mut rng, false) else {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        };
        let client = clients[spec.recipient].clone();
        if let Err(e) = check_bytes(client.clone(), spec.clone(), id.clone()).await {
            ctx.failed(format!("native collection: {e}"));
            return;
        }
        let Ok(mid) = parse_id(&id) else {
            ctx.failed(format!("bad id {id}"));
            return;
        };
        if !ack_started(&ctx, idx) {
            continue;
        }
        match client.acknowledge(mid).await {
            Ok(()) => ack_done(&ctx, idx),
            Err(e) => {
                ctx.failed(format!("native acknowledge {} ({id}): {e}", spec.tag));
                return;
            }
        }
    }
}

/// Recipients (odd mailboxes) collecting over MESH: `GET /inbox/{id}/{n}` for every chunk, then
/// `PUT .../status/acknowledged`.
fn mesh_collector(ctx: Arc<RoundCtx>, mesh: SocketAddr, mut rng: Rng) {
    let mut conn = match Conn::open(mesh) {
        Ok(c) => c,
        Err(e) => {
            ctx.failed(format!("MESH connect: {e}"));
            return;
        }
    };
    while !ctx.killed() {
        let Some((idx, spec, id)) = pick_waiting(&ctx, &mut rng, true) else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        for n in 1..=spec.total {
            match conn.download(spec.recipient, &id, n) {
                Ok(r) if r.status / 100 == 2 && r.body == content(&spec.tag, n) => {}
                Ok(r) => {
                    let what = if r.status / 100 == 2 {
                        format!("wrong bytes ({} bytes)", r.body.len())
                    } else {
                        r.describe()
                    };
                    ctx.failed(format!(
                        "MESH download {} ({id}) chunk {n}: {what}",
                        spec.tag
                    ));
                    return;
                }
                Err(e) => {
                    ctx.failed(format!("MESH download {} ({id}) chunk {n}: {e}", spec.tag));
                    return;
                }
            }
        }
        if !ack_started(&ctx, idx) {
            continue;
        }
        match conn.acknowledge(spec.recipient, &id) {
            Ok(r) if r.status == 200 => ack_done(&ctx, idx),
            Ok(r) => {
                ctx.failed(format!(
                    "MESH acknowledge {} ({id}): {}",
                    spec.tag,
                    r.describe()
                ));
                return;
            }
            Err(e) => {
                ctx.failed(format!("MESH acknowledge {} ({id}): {e}", spec.tag));
                return;
            }
        }
    }
}

/// Runs one round of load over both APIs and kills the node with SIGKILL
/// after the seeded delay. Returns the delay.
fn load_and_kill(
    rt: &tokio::runtime::Runtime,
    node: Node,
    clients: &[Client],
    ledger: &Arc<Mutex<Ledger>>,
    round: usize,
    seed: u64,
    log: &mut LogSummary,
) -> anyhow::Result<Duration> {
    let mut rng = Rng::new(seed);
    let delay = Duration::from_millis(50 + rng.below(451));
    let ctx = Arc::new(RoundCtx {
        round,
        seed,
        ledger: Arc::clone(ledger),
        killed: AtomicBool::new(false),
    });

    let mut tasks = Vec::new();
    // Native: two pipelined single senders on each of two clients, a
    // batcher, a chunked uploader and a recipient collecting.
    for w in 0..2 {
        let sender = rng.index(MAILBOXES);
        for p in 0..2 {
            tasks.push(rt.spawn(native_singles(
                Arc::clone(&ctx),
                clients[sender].clone(),
                sender,
                format!("n{w}{p}"),
                rng.fork(),
            )));
        }
    }
    let sender = rng.index(MAILBOXES);
    tasks.push(rt.spawn(native_batches(
        Arc::clone(&ctx),
        clients[sender].clone(),
        sender,
        "nb".into(),
        rng.fork(),
    )));
    let sender = rng.index(MAILBOXES);
    tasks.push(rt.spawn(native_chunked(
        Arc::clone(&ctx),
        clients[sender].clone(),
        sender,
        "nc".into(),
        rng.fork(),
    )));
    tasks.push(rt.spawn(native_collector(
        Arc::clone(&ctx),
        clients.to_vec(),
        rng.fork(),
    )));

    // MESH: three single senders, a chunked uploader, a recipient collecting.
    let mut threads = Vec::new();
    for w in 0..4 {
        let (c, sender, r, chunked) = (Arc::clone(&ctx), rng.index(MAILBOXES), rng.fork(), w == 3);
        let mesh = node.mesh;
        let name = if chunked {
            "mc".to_string()
        } else {
            format!("m{w}")
        };
        threads.push(std::thread::spawn(move || {
            mesh_sender(c, mesh, sender, name, chunked, r)
        }));
    }
    {
        let (c, mesh, r) = (Arc::clone(&ctx), node.mesh, rng.fork());
        threads.push(std::thread::spawn(move || mesh_collector(c, mesh, r)));
    }

    std::thread::sleep(delay);
    ctx.killed.store(true, Ordering::SeqCst);
    node.kill(log)?;

    let deadline = Instant::now() + PHASE_LIMIT;
    for t in threads {
        while !t.is_finished() {
            ensure!(
                Instant::now() < deadline,
                "a MESH load thread did not stop after the kill"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        t.join()
            .map_err(|_| anyhow!("a MESH load thread panicked"))?;
    }
    rt.block_on(async {
        for t in tasks {
            tokio::time::timeout(PHASE_LIMIT, t)
                .await
                .map_err(|_| anyhow!("a native load task did not stop after the kill"))??;
        }
        anyhow::Ok(())
    })?;
    Ok(delay)
}

// ---------------------------------------------------------------------------
// Checking after a restart
// ---------------------------------------------------------------------------

/// What one check found (for the summary).
#[derive(Debug, Default)]
struct Checked {
    /// Messages listed in all inboxes.
    listed: usize,
    /// Messages downloaded whole and compared.
    downloaded: usize,
    /// Sends in doubt retried with their idempotency key.
    retried: usize,
    /// Acknowledged sends sent again with their key (answered the same id).
    resent: usize,
    /// Requests in flight at the kill that turned out to have taken effect.
    adopted: usize,
    /// Sends in flight at the kill that turned out not to have.
    absent: usize,
    /// Uploads found interrupted by the kill.
    interrupted: usize,
    /// Recipient acknowledgements in flight at the kill: lost, kept.
    ack_lost: usize,
    ack_kept: usize,
    /// Messages acknowledged by their recipients after the check.
    collected: usize,
    /// Interrupted uploads finished after the check.
    finished: usize,
}

/// Downloads every chunk of `id` as `recipient` and compares it with what
/// `spec` says was sent.
async fn check_bytes(client: Client, spec: Spec, id: String) -> Result<(), String> {
    let mid = parse_id(&id).map_err(|e| e.to_string())?;
    for n in 1..=spec.total {
        let got = client
            .download(mid, n)
            .await
            .map_err(|e| format!("{} ({id}): download of chunk {n} failed: {e}", spec.tag))?;
        let env = &got.envelope;
        if got.chunk_no != n
            || env.message_id.as_str() != id
            || env.subject.as_deref() != Some(spec.tag.as_str())
            || env.sender.as_str() != mailbox(spec.sender)
            || env.recipient.as_str() != mailbox(spec.recipient)
            || env.total_chunks != spec.total
        {
            return Err(format!(
                "{} ({id}): chunk {n} came with the wrong envelope: {env:?}",
                spec.tag
            ));
        }
        let want = content(&spec.tag, n);
        if got.body != want {
            return Err(format!(
                "{} ({id}): chunk {n} has the wrong bytes ({} bytes, {} expected)",
                spec.tag,
                got.body.len(),
                want.len()
            ));
        }
    }
    Ok(())
}

/// One check of the node against the ledger after a restart (see the
/// module docs). Problems are collected, so one failure shows them all.
#[derive(Debug)]
struct Check<'a> {
    label: &'a str,
    ledger: &'a Arc<Mutex<Ledger>>,
    clients: &'a [Client],
    conn: Conn,
    rng: &'a mut Rng,
    problems: Vec<String>,
    checked: Checked,
}

impl<'a> Check<'a> {
    fn new(
        label: &'a str,
        ledger: &'a Arc<Mutex<Ledger>>,
        clients: &'a [Client],
        mesh: SocketAddr,
        rng: &'a mut Rng,
    ) -> anyhow::Result<Check<'a>> {
        // Failures the load saw come first.
        let problems = std::mem::take(&mut lock(ledger).problems);
        Ok(Check {
            label,
            ledger,
            clients,
            conn: Conn::open(mesh)?,
            rng,
            problems,
            checked: Checked::default(),
        })
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    /// Everything, in order; then [`Check::finish_uploads`].
    async fn run(&mut self) -> anyhow::Result<()> {
        self.retry_in_doubt().await?;
        self.check_uploads().await?;
        let listed = self.list_inboxes().await?;
        self.check_listed(&listed).await?;
        let waiting = self.check_waiting(&listed).await?;
        self.resend_acknowledged().await?;
        self.check_bytes_of(waiting.clone()).await?;
        if self.problems.is_empty() {
            self.collect(waiting).await?;
        }
        Ok(())
    }

    /// Sends `spec` again, same idempotency key: the id, and (natively)
    /// whether the node says it already had it.
    async fn send_again(&mut self, spec: &Spec) -> Result<(String, Option<bool>), String> {
        match spec.api {
            Api::Native => {
                let header = native_header(spec).map_err(|e| e.to_string())?;
                let ok = self.clients[spec.sender]
                    .send(header, content(&spec.tag, 1))
                    .await
                    .map_err(|e| format!("{}: sending again failed: {e}", spec.tag))?;
                Ok((ok.message_id.as_str().to_string(), Some(ok.duplicate)))
            }
            Api::Mesh => {
                let r = self
                    .conn
                    .send(spec)
                    .map_err(|e| format!("{}: sending again failed: {e}", spec.tag))?;
                if r.status != 202 {
                    return Err(format!("{}: sending again: {}", spec.tag, r.describe()));
                }
                Ok((r.message_id().map_err(|e| e.to_string())?, None))
            }
        }
    }

    /// A client that lost its answer retries with the same idempotency
    /// key: it gets the original message if there was one, a new one
    /// otherwise, never two.
    async fn retry_in_doubt(&mut self) -> anyhow::Result<()> {
        let retry: Vec<(usize, Spec)> = lock(self.ledger)
            .attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.state == State::InDoubt && a.spec.key.is_some())
            .map(|(i, a)| (i, a.spec.clone()))
            .collect();
        for (idx, spec) in retry {
            let (id, duplicate) = match self.send_again(&spec).await {
                Ok(answer) => answer,
                Err(p) => {
                    self.problem(p);
                    continue;
                }
            };
            self.checked.retried += 1;
            let mut l = lock(self.ledger);
            if let Some(&other) = l.by_id.get(&id) {
                let other = l.attempts[other].spec.tag.clone();
                drop(l);
                self.problem(format!(
                    "{}: retried, and answered {id}, which is {other}",
                    spec.tag
                ));
                continue;
            }
            l.first_acked(idx, &id);
            if duplicate == Some(true) {
                l.attempts[idx].adopted = true;
                self.checked.adopted += 1;
            }
        }
        Ok(())
    }

    /// Interrupted uploads: still uploading with every acknowledged chunk
    /// (at most the one in flight more), not downloadable natively or over
    /// MESH; or complete if the last chunk was the one in flight.
    async fn check_uploads(&mut self) -> anyhow::Result<()> {
        let uploading: Vec<(usize, Spec, String, u32, bool)> = lock(self.ledger)
            .attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.state == State::Uploading)
            .filter_map(|(i, a)| {
                Some((i, a.spec.clone(), a.id.clone()?, a.acked, a.chunk_in_flight))
            })
            .collect();
        for (idx, spec, id, acked, in_flight) in uploading {
            let mid = parse_id(&id)?;
            let info = match self.clients[spec.sender].track(mid).await {
                Ok(info) => info,
                Err(e) => {
                    self.problem(format!(
                        "{} ({id}): {acked} chunk(s) acknowledged, but tracking fails: {e}",
                        spec.tag
                    ));
                    continue;
                }
            };
            let got = info.chunks_received;
            match info.status {
                MessageStatus::Uploading => {
                    if got < acked || got > acked + u32::from(in_flight) {
                        self.problem(format!(
                            "{} ({id}): {acked} chunk(s) acknowledged (one more in flight: \
                             {in_flight}), {got} received after the restart",
                            spec.tag
                        ));
                    }
                    match self.clients[spec.recipient].download(mid, 1).await {
                        Err(ClientError::Server(_)) => {}
                        other => self.problem(format!(
                            "{} ({id}): half-uploaded ({got}/{} chunks), yet a native download \
                             gave {other:?}",
                            spec.tag, spec.total
                        )),
                    }
                    let r = self.conn.download(spec.recipient, &id, 1)?;
                    if r.status / 100 == 2 {
                        self.problem(format!(
                            "{} ({id}): half-uploaded ({got}/{} chunks), yet a MESH download \
                             gave {}",
                            spec.tag,
                            spec.total,
                            r.describe()
                        ));
                    }
                    let mut l = lock(self.ledger);
                    let a = &mut l.attempts[idx];
                    a.acked = got.max(acked);
                    a.chunk_in_flight = false;
                    if !a.interrupted {
                        a.interrupted = true;
                        self.checked.interrupted += 1;
                    }
                }
                MessageStatus::Accepted if in_flight && acked + 1 == spec.total => {
                    // The last chunk was in flight and made it: complete,
                    // and held to the promise from now on.
                    let mut l = lock(self.ledger);
                    let a = &mut l.attempts[idx];
                    a.acked = spec.total;
                    a.chunk_in_flight = false;
                    a.state = State::Pending;
                    a.adopted = true;
                    self.checked.adopted += 1;
                }
                other => self.problem(format!(
                    "{} ({id}): {acked}/{} chunks acknowledged (one more in flight: \
                     {in_flight}), yet the node says {other} with {got} chunks",
                    spec.tag, spec.total
                )),
            }
        }
        Ok(())
    }

    /// Every inbox, every page (a seeded page size per inbox).
    async fn list_inboxes(&mut self) -> anyhow::Result<Vec<BTreeSet<String>>> {
        let mut listed = Vec::with_capacity(MAILBOXES);
        for mb in 0..MAILBOXES {
            let page_size = 10 + self.rng.below(90) as u32;
            let mut ids: Vec<String> = Vec::new();
            let mut after = None;
            let mut total = 0;
            for _ in 0..100_000 {
                let page = self.clients[mb].list_inbox(None, page_size, after).await?;
                total = page.total;
                ids.extend(
                    page.messages
                        .iter()
                        .map(|m| m.message_id.as_str().to_string()),
                );
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let set: BTreeSet<String> = ids.iter().cloned().collect();
            if set.len() != ids.len() {
                let mut seen = BTreeSet::new();
                let dups: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
                self.problem(format!(
                    "{}: listed more than once across pages of {page_size}: {dups:?}",
                    mailbox(mb)
                ));
            }
            if total != ids.len() as u64 {
                self.problem(format!(
                    "{}: the inbox says it holds {total} messages, its pages list {}",
                    mailbox(mb),
                    ids.len()
                ));
            }
            self.checked.listed += set.len();
            listed.push(set);
        }
        Ok(listed)
    }

    /// What is listed is a complete message not collected by its recipient,
    /// or a send that was in flight at the kill and took effect once.
    async fn check_listed(&mut self, listed: &[BTreeSet<String>]) -> anyhow::Result<()> {
        let mut unknown = Vec::new();
        let mut found = Vec::new();
        {
            let mut l = lock(self.ledger);
            for (mb, ids) in listed.iter().enumerate() {
                for id in ids {
                    let Some(&idx) = l.by_id.get(id) else {
                        unknown.push((mb, id.clone()));
                        continue;
                    };
                    let a = &mut l.attempts[idx];
                    let tag = &a.spec.tag;
                    if a.spec.recipient != mb {
                        found.push(format!(
                            "{tag} ({id}): listed for {}, sent to {}",
                            mailbox(mb),
                            mailbox(a.spec.recipient)
                        ));
                    }
                    match a.state {
                        State::Pending => {}
                        State::AckInDoubt => {
                            // The acknowledgement died with the node.
                            a.state = State::Pending;
                            self.checked.ack_lost += 1;
                        }
                        State::Collected => found.push(format!(
                            "{tag} ({id}): acknowledged by its recipient (answered), yet listed \
                             again"
                        )),
                        State::Uploading => found.push(format!(
                            "{tag} ({id}): listed with only {}/{} chunks uploaded",
                            a.acked, a.spec.total
                        )),
                        State::InDoubt | State::Absent => {
                            found.push(format!("{tag} ({id}): listed in state {:?}", a.state))
                        }
                    }
                }
            }
        }
        self.problems.extend(found);
        for (mb, id) in unknown {
            let got = match self.clients[mb].download(parse_id(&id)?, 1).await {
                Ok(got) => got,
                Err(e) => {
                    self.problem(format!(
                        "{id}: listed for {}, but its download fails: {e}",
                        mailbox(mb)
                    ));
                    continue;
                }
            };
            let tag = got.envelope.subject.clone().unwrap_or_default();
            let mut l = lock(self.ledger);
            let Some(&idx) = l.by_tag.get(&tag) else {
                drop(l);
                self.problem(format!(
                    "{id}: listed for {} with subject {tag:?}, which this test never sent",
                    mailbox(mb)
                ));
                continue;
            };
            let a = &l.attempts[idx];
            let problem = if let Some(first) = &a.id {
                Some(format!(
                    "{tag}: one send, two messages: {first} and {id} (duplicated)"
                ))
            } else if a.state == State::Absent {
                Some(format!(
                    "{tag} ({id}): absent after the restart that followed its send (round {}), \
                     yet listed now",
                    a.round
                ))
            } else if a.spec.total > 1 {
                Some(format!(
                    "{tag} ({id}): only chunk 1 of {} was ever sent, yet it is listed",
                    a.spec.total
                ))
            } else if a.spec.recipient != mb {
                Some(format!("{tag} ({id}): listed for {}", mailbox(mb)))
            } else {
                None
            };
            if let Some(p) = problem {
                drop(l);
                self.problem(p);
                continue;
            }
            // In flight at the kill, and it took effect: from now on it is
            // held to the same promise as an acknowledged message (its
            // bytes are checked with the others').
            l.first_acked(idx, &id);
            l.attempts[idx].adopted = true;
            self.checked.adopted += 1;
        }
        Ok(())
    }

    /// Everything acknowledged to its sender and not collected is listed;
    /// settles recipient acknowledgements that were in doubt; sends that
    /// were in doubt and not found never took effect. Returns what is
    /// waiting: (spec, id).
    async fn check_waiting(
        &mut self,
        listed: &[BTreeSet<String>],
    ) -> anyhow::Result<Vec<(Spec, String)>> {
        let mut waiting = Vec::new();
        let mut to_track = Vec::new();
        let mut found = Vec::new();
        {
            let mut l = lock(self.ledger);
            for a in l.attempts.iter_mut() {
                let Some(id) = a.id.clone() else {
                    if a.state == State::InDoubt {
                        // Keyed sends were retried: only unkeyed ones are
                        // left, and they are nowhere.
                        a.state = State::Absent;
                        self.checked.absent += 1;
                    }
                    continue;
                };
                let present = listed[a.spec.recipient].contains(&id);
                match a.state {
                    State::Pending if !present => {
                        found.push(format!(
                        "{} ({id}, over {:?}, sent in round {}{}): acknowledged to its sender, \
                         missing from {}'s inbox",
                        a.spec.tag,
                        a.spec.api,
                        a.round,
                        if a.adopted { ", found after a kill" } else { "" },
                        mailbox(a.spec.recipient)
                    ))
                    }
                    State::Pending => waiting.push((a.spec.clone(), id)),
                    State::AckInDoubt => {
                        a.state = State::Collected;
                        self.checked.ack_kept += 1;
                        to_track.push((a.spec.clone(), id));
                    }
                    State::Collected if self.rng.chance(10) => to_track.push((a.spec.clone(), id)),
                    _ => {}
                }
            }
        }
        self.problems.extend(found);
        for (spec, id) in to_track {
            match self.clients[spec.sender].track(parse_id(&id)?).await {
                Ok(info) if info.status == MessageStatus::Acknowledged => {}
                other => self.problem(format!(
                    "{} ({id}): acknowledged by its recipient, yet tracking says {other:?}",
                    spec.tag
                )),
            }
        }
        Ok(waiting)
    }

    /// A sample of acknowledged sends with a key, sent again: the node
    /// still knows the key (across restarts and compaction) and answers
    /// the original id.
    async fn resend_acknowledged(&mut self) -> anyhow::Result<()> {
        let keyed: Vec<(Spec, String)> = lock(self.ledger)
            .attempts
            .iter()
            .filter(|a| a.state == State::Pending && a.spec.key.is_some())
            .filter_map(|a| Some((a.spec.clone(), a.id.clone()?)))
            .collect();
        for _ in 0..keyed.len().min(12) {
            let (spec, id) = &keyed[self.rng.index(keyed.len())];
            match self.send_again(spec).await {
                Ok((again, duplicate)) if again == *id && duplicate != Some(false) => {
                    self.checked.resent += 1;
                }
                Ok((again, duplicate)) => self.problem(format!(
                    "{} ({id}): sent again with its idempotency key, answered {again} \
                     (duplicate: {duplicate:?}): a second message",
                    spec.tag
                )),
                Err(p) => self.problem(p),
            }
        }
        Ok(())
    }

    /// Downloads every chunk of everything waiting and compares bytes and
    /// envelope.
    async fn check_bytes_of(&mut self, waiting: Vec<(Spec, String)>) -> anyhow::Result<()> {
        self.checked.downloaded = waiting.len();
        let mut set = tokio::task::JoinSet::new();
        let mut rest = waiting.into_iter();
        loop {
            while set.len() < DOWNLOAD_CONCURRENCY {
                let Some((spec, id)) = rest.next() else {
                    break;
                };
                let client = self.clients[spec.recipient].clone();
                set.spawn(check_bytes(client, spec, id));
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            if let Err(p) = done? {
                self.problem(p);
            }
        }
        Ok(())
    }

    /// Recipients collect a seeded 60% of what was just checked (a quarter
    /// of that over MESH), so the log holds dead records for compaction to
    /// reclaim under the next kills.
    async fn collect(&mut self, waiting: Vec<(Spec, String)>) -> anyhow::Result<()> {
        let mut native = Vec::new();
        for (spec, id) in waiting {
            if !self.rng.chance(60) {
                continue;
            }
            if self.rng.chance(25) {
                let r = self.conn.acknowledge(spec.recipient, &id)?;
                ensure!(
                    r.status == 200,
                    "{}: collecting {} ({id}) over MESH: {}",
                    self.label,
                    spec.tag,
                    r.describe()
                );
                self.collected(&id);
            } else {
                native.push((spec, id));
            }
        }
        let mut set = tokio::task::JoinSet::new();
        let mut rest = native.into_iter();
        loop {
            while set.len() < DOWNLOAD_CONCURRENCY {
                let Some((spec, id)) = rest.next() else {
                    break;
                };
                let client = self.clients[spec.recipient].clone();
                set.spawn(async move {
                    let mid = parse_id(&id).map_err(|e| e.to_string())?;
                    match client.acknowledge(mid).await {
                        Ok(()) => Ok(id),
                        Err(e) => Err(format!("{} ({id}): collecting failed: {e}", spec.tag)),
                    }
                });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            match done? {
                Ok(id) => self.collected(&id),
                Err(p) => self.problem(p),
            }
        }
        Ok(())
    }

    fn collected(&mut self, id: &str) {
        let mut l = lock(self.ledger);
        if let Some(&idx) = l.by_id.get(id) {
            l.attempts[idx].state = State::Collected;
        }
        self.checked.collected += 1;
    }

    /// Finishes interrupted uploads after the check (all of them when
    /// `all`, else a seeded half; the rest stay interrupted across another
    /// kill): they must then appear once, whole.
    async fn finish_uploads(&mut self, all: bool) -> anyhow::Result<()> {
        let uploading: Vec<(usize, Spec, String, u32)> = lock(self.ledger)
            .attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.state == State::Uploading)
            .filter_map(|(i, a)| Some((i, a.spec.clone(), a.id.clone()?, a.acked)))
            .collect();
        let label = self.label;
        for (idx, spec, id, acked) in uploading {
            if !all && !self.rng.chance(50) {
                continue;
            }
            let mid = parse_id(&id)?;
            for chunk in acked + 1..=spec.total {
                match spec.api {
                    Api::Native => {
                        let complete = self.clients[spec.sender]
                            .send_chunk(mid, chunk, content(&spec.tag, chunk))
                            .await
                            .with_context(|| {
                                format!("{label}: finishing {} chunk {chunk}", spec.tag)
                            })?;
                        ensure!(
                            complete == (chunk == spec.total),
                            "{label}: {} chunk {chunk}/{}: complete = {complete}",
                            spec.tag,
                            spec.total
                        );
                    }
                    Api::Mesh => {
                        let r = self.conn.upload(&spec, &id, chunk)?;
                        ensure!(
                            r.status == 202,
                            "{label}: finishing {} chunk {chunk}: {}",
                            spec.tag,
                            r.describe()
                        );
                    }
                }
                lock(self.ledger).chunk_acked(idx);
            }
            self.checked.finished += 1;
        }
        Ok(())
    }

    fn done(self) -> anyhow::Result<Checked> {
        if self.problems.is_empty() {
            return Ok(self.checked);
        }
        let shown: Vec<&str> = self.problems.iter().take(25).map(String::as_str).collect();
        bail!(
            "{}: {} durability problem(s):\n  {}",
            self.label,
            self.problems.len(),
            shown.join("\n  ")
        )
    }
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

fn seeds() -> anyhow::Result<Vec<u64>> {
    match std::env::var("SPINE_CRASH_SEEDS") {
        Ok(text) if !text.trim().is_empty() => text
            .split(',')
            .map(|s| {
                let s = s.trim();
                match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                }
                .with_context(|| format!("SPINE_CRASH_SEEDS: {s:?}"))
            })
            .collect(),
        _ => Ok(SEEDS.to_vec()),
    }
}

/// Connects to a (re)started node, checks it against the ledger and
/// finishes interrupted uploads; bounded by [`PHASE_LIMIT`].
fn check_node(
    rt: &tokio::runtime::Runtime,
    node: &Node,
    ledger: &Arc<Mutex<Ledger>>,
    label: &str,
    rng: &mut Rng,
    finish_all: bool,
) -> anyhow::Result<(Vec<Client>, Checked)> {
    rt.block_on(async {
        tokio::time::timeout(PHASE_LIMIT, async {
            let clients = node.clients().await?;
            let mut check = Check::new(label, ledger, &clients, node.mesh, rng)?;
            check.run().await?;
            if check.problems.is_empty() {
                check.finish_uploads(finish_all).await?;
            }
            let checked = check.done()?;
            anyhow::Ok((clients, checked))
        })
        .await
        .map_err(|_| anyhow!("{label}: checking took over {PHASE_LIMIT:?}"))?
    })
}

/// Round after round: start the node on the same data directory, check
/// everything, put load on both APIs, SIGKILL at a seeded moment. Then a
/// last check, a clean stop and restart, and a check of that.
#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() -> anyhow::Result<()> {
    let started = Instant::now();
    let seeds = seeds()?;
    ensure!(!seeds.is_empty(), "no seeds");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let site = Site::new()?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut report = Vec::new();
    let mut log = LogSummary::default();

    for (round, &seed) in seeds.iter().enumerate() {
        ensure!(
            started.elapsed() < TEST_LIMIT,
            "over {TEST_LIMIT:?} before round {round}"
        );
        let round_started = Instant::now();
        let label = match round.checked_sub(1) {
            Some(last) => format!("after the kill of round {last} (seed {:#x})", seeds[last]),
            None => "on a fresh data directory".to_string(),
        };
        let mut rng = Rng::new(seed ^ 0xC4EC_C4EC);
        let node = Node::start(&site)?;
        let (clients, checked) = check_node(&rt, &node, &ledger, &label, &mut rng, false)?;
        let delay = load_and_kill(&rt, node, &clients, &ledger, round, seed, &mut log)?;
        drop(clients);
        report.push(format!(
            "round {round} (seed {seed:#x}): {checked:?}; killed after {delay:?}; round took {:?}",
            round_started.elapsed()
        ));
    }

    // After the last kill: check, retry and finish everything, check again
    // on the same node, stop it cleanly, restart and check once more.
    let last = seeds.len() - 1;
    let label = format!("after the kill of round {last} (seed {:#x})", seeds[last]);
    let mut rng = Rng::new(seeds[last] ^ 0xF1AA);
    let node = Node::start(&site)?;
    let (_, checked) = check_node(&rt, &node, &ledger, &label, &mut rng, true)?;
    report.push(format!("final restart: {checked:?}"));
    let (_, checked) = check_node(&rt, &node, &ledger, "after finishing", &mut rng, true)?;
    report.push(format!("after finishing: {checked:?}"));
    node.stop(&mut log)?;
    let node = Node::start(&site)?;
    let (clients, checked) =
        check_node(&rt, &node, &ledger, "after a clean restart", &mut rng, true)?;
    report.push(format!("after a clean restart: {checked:?}"));
    drop(clients);
    node.stop(&mut log)?;

    // The run must have exercised what it claims to.
    let l = lock(&ledger);
    let mut by_api: BTreeMap<(Api, bool), usize> = BTreeMap::new();
    for a in l.attempts.iter().filter(|a| a.id.is_some() && !a.adopted) {
        *by_api.entry((a.spec.api, a.spec.total > 1)).or_default() += 1;
    }
    let count = |s: State| l.attempts.iter().filter(|a| a.state == s).count();
    let interrupted = l.attempts.iter().filter(|a| a.interrupted).count();
    let adopted = l.attempts.iter().filter(|a| a.adopted).count();
    eprintln!("{}", report.join("\n"));
    eprintln!(
        "acknowledged to senders (api, chunked): {by_api:?}; in flight at a kill and found: \
         {adopted}, not found: {}; uploads interrupted: {interrupted}; collected by \
         recipients: {}; waiting: {}; {:?} in all",
        count(State::Absent),
        count(State::Collected),
        count(State::Pending),
        started.elapsed()
    );
    eprintln!(
        "node logs: torn tails cut at recovery: {}; segments freed by compaction at start-up: \
         {}, while serving: {}; warnings and errors: {:?}",
        log.torn_tails, log.freed_at_start, log.freed_online, log.warnings
    );
    for api in [Api::Native, Api::Mesh] {
        for chunked in [false, true] {
            ensure!(
                by_api.get(&(api, chunked)).copied().unwrap_or(0) > 0,
                "no {api:?} {} message was acknowledged: the load did not run",
                if chunked { "chunked" } else { "single" }
            );
        }
    }
    ensure!(interrupted > 0, "no upload was interrupted by a kill");
    ensure!(
        count(State::Collected) > 0,
        "no message was collected by its recipient"
    );
    ensure!(
        count(State::InDoubt) == 0 && count(State::Uploading) == 0 && count(State::AckInDoubt) == 0,
        "something was left unsettled"
    );
    Ok(())
}
