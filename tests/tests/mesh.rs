//! Black-box tests of the MESH REST API through the real `spine serve`
//! binary over real loopback sockets, for what the Python mesh-client
//! suite (`tests/mesh/`) cannot reach: durability across SIGKILL, limits
//! (body size, gzip bombs, connections, slow clients), token replay, and
//! the refusal to expose the demo directory. Requests are written by hand
//! so every byte on the wire is the test's choice.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use serde_json::Value;
use spine_core::time::Timestamp;
use spine_protocol::mesh::auth::make_token;
use spine_tests::{run, Spine};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    Timestamp::from_micros(micros)
}

/// A fresh token for `mailbox` (password `password`, shared key `BackBone`).
fn token(mailbox: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    make_token(
        mailbox,
        "password",
        b"BackBone",
        &format!("rust-test-{}", std::process::id()),
        n,
        now(),
    )
}

struct Node {
    spine: Spine,
    mesh: SocketAddr,
    data: std::path::PathBuf,
}

fn start_in(data: &std::path::Path, extra: &[&str]) -> anyhow::Result<Node> {
    let dir = data.to_str().context("utf-8 temp path")?;
    let mut args = vec![
        "serve",
        "--data-dir",
        dir,
        "--log-format",
        "json",
        "--metrics-enabled",
        "false",
        "--native-listen",
        "127.0.0.1:0",
        "--quic-enabled",
        "false",
    ];
    args.extend_from_slice(extra);
    let mut spine = Spine::start(&args)?;
    let line = spine.wait_for_log("listen addresses")?;
    spine.wait_for_log("ready; send SIGINT or SIGTERM to stop")?;
    let logged: Value = serde_json::from_str(&line)?;
    let mesh = logged["mesh"]
        .as_str()
        .and_then(|s| s.strip_prefix("http://"))
        .context("mesh address in the log")?
        .parse()?;
    Ok(Node {
        spine,
        mesh,
        data: data.to_path_buf(),
    })
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("JSON body: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Reply> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
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
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = if head_only {
            0
        } else {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(Ok(0), |(_, v)| v.parse())?
        };
        while self.buf.len() < len {
            if self.fill()? == 0 {
                bail!("connection closed mid-body");
            }
        }
        let rest = self.buf.split_off(len);
        let body = std::mem::replace(&mut self.buf, rest);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

const V2: (&str, &str) = ("Accept", "application/vnd.mesh.v2+json");

fn send(conn: &mut Conn, from: &str, to: &str, body: &[u8]) -> anyhow::Result<Reply> {
    let auth = token(from);
    conn.send(
        "POST",
        &format!("/messageexchange/{from}/outbox"),
        &[
            V2,
            ("Authorization", &auth),
            ("Mex-To", to),
            ("Mex-WorkflowID", "TEST_WORKFLOW"),
            ("Mex-Chunk-Range", "1:1"),
            ("Content-Type", "application/octet-stream"),
        ],
        body,
    )
}

fn get(conn: &mut Conn, mailbox: &str, path: &str) -> anyhow::Result<Reply> {
    let auth = token(mailbox);
    conn.send("GET", path, &[V2, ("Authorization", &auth)], b"")
}

/// A 20 MiB single-chunk message (mesh-client sends files up to its 75 MiB
/// default chunk size in one request) is durable once answered 202: after
/// SIGKILL and a restart it is listed, downloads byte for byte, and
/// acknowledges.
#[test]
fn an_accepted_send_survives_sigkill_and_downloads_intact() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let node = start_in(data.path(), &[])?;
    let body: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut conn = Conn::open(node.mesh)?;
    let sent = send(&mut conn, "X26ABC1", "X26ABC2", &body)?;
    ensure!(sent.status == 202, "send: {sent:?}");
    let id = sent.json()?["message_id"]
        .as_str()
        .context("message_id")?
        .to_string();
    node.spine.signal("KILL")?;
    let finished = node.spine.wait()?;
    ensure!(!finished.status.success(), "killed");

    let node = start_in(&node.data, &[])?;
    let mut conn = Conn::open(node.mesh)?;
    let listed = get(&mut conn, "X26ABC2", "/messageexchange/X26ABC2/inbox")?;
    ensure!(listed.status == 200, "{listed:?}");
    ensure!(listed.json()?["messages"] == serde_json::json!([id]));
    let got = get(
        &mut conn,
        "X26ABC2",
        &format!("/messageexchange/X26ABC2/inbox/{id}"),
    )?;
    ensure!(got.status == 200, "download status {}", got.status);
    ensure!(got.header("mex-from") == Some("X26ABC1"));
    ensure!(got.header("mex-chunk-range") == Some("1:1"));
    ensure!(got.body == body, "the bytes differ");
    let auth = token("X26ABC2");
    let acked = conn.send(
        "PUT",
        &format!("/messageexchange/X26ABC2/inbox/{id}/status/acknowledged"),
        &[V2, ("Authorization", &auth)],
        b"",
    )?;
    ensure!(acked.status == 200, "{acked:?}");
    let listed = get(&mut conn, "X26ABC2", "/messageexchange/X26ABC2/inbox")?;
    ensure!(listed.json()?["messages"] == serde_json::json!([]));
    Ok(())
}

/// Bodies over `max_request_bytes` are refused with 413 and a JSON body
/// that says what to do, before or after decompression (a gzip bomb), and
/// the server goes on serving.
#[test]
fn oversize_bodies_and_gzip_bombs_are_refused_with_413() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let node = start_in(data.path(), &["--mesh-max-request-bytes", "65536"])?;
    let mut conn = Conn::open(node.mesh)?;
    let big = vec![b'x'; 65_537];
    let refused = send(&mut conn, "X26ABC1", "X26ABC2", &big)?;
    ensure!(refused.status == 413, "{refused:?}");
    let v = refused.json()?;
    ensure!(v["spine_error_code"] == "MESH_BODY_TOO_LARGE", "{v}");
    ensure!(
        v["detail"][0]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("chunks")),
        "{v}"
    );

    // 10 MiB of zeros, gzip-compressed by the system's gzip: ~10 KiB on
    // the wire, far over the limit once inflated.
    let bomb = std::process::Command::new("sh")
        .args(["-c", "head -c 10485760 /dev/zero | gzip -c"])
        .output()?;
    ensure!(bomb.status.success() && bomb.stdout.len() < 65_536);
    let mut conn = Conn::open(node.mesh)?;
    let auth = token("X26ABC1");
    let refused = conn.send(
        "POST",
        "/messageexchange/X26ABC1/outbox",
        &[
            V2,
            ("Authorization", &auth),
            ("Mex-To", "X26ABC2"),
            ("Mex-WorkflowID", "TEST_WORKFLOW"),
            ("Content-Encoding", "gzip"),
        ],
        &bomb.stdout,
    )?;
    ensure!(refused.status == 413, "{refused:?}");

    let mut conn = Conn::open(node.mesh)?;
    let ok = send(&mut conn, "X26ABC1", "X26ABC2", b"small")?;
    ensure!(ok.status == 202, "{ok:?}");
    Ok(())
}

/// A token is good for one request; a token for one mailbox does not open
/// another's inbox; a missing token is refused; each with a JSON 403.
#[test]
fn tokens_are_single_use_and_bound_to_their_mailbox() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let node = start_in(data.path(), &[])?;
    let mut conn = Conn::open(node.mesh)?;
    let auth = token("X26ABC1");
    let path = "/messageexchange/X26ABC1/inbox";
    let first = conn.send("GET", path, &[V2, ("Authorization", &auth)], b"")?;
    ensure!(first.status == 200, "{first:?}");
    let again = conn.send("GET", path, &[V2, ("Authorization", &auth)], b"")?;
    ensure!(again.status == 403, "{again:?}");
    ensure!(again.json()?["spine_error_code"] == "MESH_AUTH_REPLAYED");
    let other = token("X26ABC1");
    let crossed = conn.send(
        "GET",
        "/messageexchange/X26ABC2/inbox",
        &[V2, ("Authorization", &other)],
        b"",
    )?;
    ensure!(crossed.status == 403, "{crossed:?}");
    ensure!(crossed.json()?["spine_error_code"] == "MESH_AUTH_MAILBOX_MISMATCH");
    let none = conn.send("GET", path, &[V2], b"")?;
    ensure!(none.status == 403 && none.json()?["spine_error_code"] == "MESH_AUTH_MISSING");
    let body = String::from_utf8_lossy(&none.body).to_lowercase();
    ensure!(!body.contains("password") || body.contains("wrong password"));
    Ok(())
}

/// A client that never finishes its headers is dropped after the header
/// timeout, while other clients are served; connections beyond the limit
/// are closed at once.
#[test]
fn slow_clients_are_dropped_and_connections_are_bounded() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let node = start_in(
        data.path(),
        &[
            "--mesh-header-timeout-ms",
            "300",
            "--mesh-max-connections",
            "2",
        ],
    )?;
    let mut slow = TcpStream::connect(node.mesh)?;
    slow.set_read_timeout(Some(IO_TIMEOUT))?;
    slow.write_all(b"GET /messageexchange/_ping HTTP/1.1\r\nHost: x\r\n")?;
    let mut good = Conn::open(node.mesh)?;
    let pong = good.send("GET", "/messageexchange/_ping", &[], b"")?;
    ensure!(pong.status == 200 && pong.json()?["status"] == "ok");
    // Both slots are taken: a third connection is closed without an answer.
    let mut third = TcpStream::connect(node.mesh)?;
    third.set_read_timeout(Some(IO_TIMEOUT))?;
    let _ = third.write_all(b"GET /messageexchange/_ping HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 256];
    let n = third.read(&mut buf).unwrap_or(0);
    ensure!(n == 0, "over the limit yet answered: {:?}", &buf[..n]);

    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "the slow client was not dropped"
    );
    ensure!(
        rest.is_empty() || String::from_utf8_lossy(&rest).contains(" 408 "),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    // Its slot is free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fresh = Conn::open(node.mesh)?;
        match fresh.send("GET", "/messageexchange/_ping", &[], b"") {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => bail!("slot not released: {other:?}"),
        }
    }
    Ok(())
}

/// The embedded demo directory (well-known passwords) never listens beyond
/// loopback, and plain HTTP beyond loopback needs an explicit flag.
#[test]
fn remote_mesh_needs_a_real_directory_and_tls() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let dir = data.path().to_str().context("utf-8")?;
    let base = [
        "serve",
        "--data-dir",
        dir,
        "--metrics-enabled",
        "false",
        "--native-enabled",
        "false",
        "--quic-enabled",
        "false",
        "--mesh-listen",
        "0.0.0.0:0",
        "--mesh-allow-remote",
        "true",
    ];
    let plain = run(&base)?;
    ensure!(plain.code() == 1, "{}", plain.stderr);
    ensure!(plain.stderr.contains("TLS"), "{}", plain.stderr);
    let mut args = base.to_vec();
    args.extend(["--mesh-allow-plain-http", "true"]);
    let demo = run(&args)?;
    ensure!(demo.code() == 1, "{}", demo.stderr);
    ensure!(
        demo.stderr.contains("DIR_DEMO_NOT_LOOPBACK"),
        "{}",
        demo.stderr
    );
    Ok(())
}

/// The server's peak resident memory (VmHWM), bytes.
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("VmHWM")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kib * 1024)
}

/// A message much larger than any one request streams through chunk by
/// chunk in both directions: the server never holds it whole (its peak
/// memory stays well under the message's size), and every chunk arrives
/// intact with the right `Mex-Chunk-Range` and 206/200 statuses.
#[test]
fn a_large_chunked_message_streams_with_bounded_memory() -> anyhow::Result<()> {
    const CHUNK: usize = 4 << 20;
    const CHUNKS: usize = 40; // 160 MiB in all
    let data = tempfile::tempdir()?;
    let node = start_in(data.path(), &[])?;
    let pid = node.spine.pid();
    let chunk =
        |n: usize| -> Vec<u8> { (0..CHUNK).map(|i| ((i * 7 + n * 13) % 253) as u8).collect() };
    let mut conn = Conn::open(node.mesh)?;
    let auth = token("X26ABC1");
    let total = format!("1:{CHUNKS}");
    let first = conn.send(
        "POST",
        "/messageexchange/X26ABC1/outbox",
        &[
            V2,
            ("Authorization", &auth),
            ("Mex-To", "X26ABC2"),
            ("Mex-WorkflowID", "TEST_WORKFLOW"),
            ("Mex-Chunk-Range", &total),
        ],
        &chunk(1),
    )?;
    ensure!(first.status == 202, "{first:?}");
    let id = first.json()?["message_id"]
        .as_str()
        .context("message_id")?
        .to_string();
    for n in 2..=CHUNKS {
        let auth = token("X26ABC1");
        let range = format!("{n}:{CHUNKS}");
        let up = conn.send(
            "POST",
            &format!("/messageexchange/X26ABC1/outbox/{id}/{n}"),
            &[V2, ("Authorization", &auth), ("Mex-Chunk-Range", &range)],
            &chunk(n),
        )?;
        ensure!(up.status == 202, "chunk {n}: {up:?}");
    }
    for n in 1..=CHUNKS {
        let got = get(
            &mut conn,
            "X26ABC2",
            &format!("/messageexchange/X26ABC2/inbox/{id}/{n}"),
        )?;
        let expected = if n < CHUNKS { 206 } else { 200 };
        ensure!(got.status == expected, "chunk {n}: status {}", got.status);
        ensure!(got.header("mex-chunk-range") == Some(format!("{n}:{CHUNKS}").as_str()));
        ensure!(got.body == chunk(n), "chunk {n} differs");
    }
    let peak = peak_rss(pid)?;
    let whole = (CHUNK * CHUNKS) as u64;
    ensure!(
        peak < whole / 2,
        "peak RSS {} MiB for a {} MiB message",
        peak >> 20,
        whole >> 20
    );
    eprintln!(
        "peak RSS {} MiB for a {} MiB message",
        peak >> 20,
        whole >> 20
    );
    Ok(())
}
