//! Black-box tests of `spine serve` and `spine wal inspect` on real data
//! directories: recovery, torn tails, corruption, locking, configuration,
//! the running actor tree (expiry), the Prometheus endpoint, and clean
//! shutdown on signals.
//!
//! Every served node gets its own metrics port (picked free on loopback)
//! and its native protocol port from the OS (`--native-listen
//! 127.0.0.1:0`), so tests run in parallel and beside a developer's own
//! node on the default ports. Nothing listens beyond loopback.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;
use spine_actors::system::SystemClock;
use spine_actors::wal::FileStorage;
use spine_core::envelope::{Envelope, MessageType};
use spine_core::ids::{MailboxId, MessageId, MessageIdGenerator, WorkflowId};
use spine_core::message::{AckCheck, ChunkLoc, Event, MessageStore, SendCheck, StoreConfig};
use spine_core::random::SeededRandom;
use spine_core::time::{Clock as _, Timestamp};
use spine_core::wal::{Wal, WalConfig};
use spine_tests::{run, run_env, Spine, WAIT};

/// What a log written by [`write_log`] should recover to.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    records: u64,
    messages: u64,
    in_inboxes: u64,
    mailboxes: u64,
    uploading: u64,
}

fn mb(s: &str) -> anyhow::Result<MailboxId> {
    Ok(MailboxId::parse(s)?)
}

/// [`write_log_at`] stamped with the current time, so a served node's
/// expiry actor (which runs on the wall clock) leaves it alone for days.
fn write_log(dir: &Path, n: usize) -> anyhow::Result<Expected> {
    write_log_at(dir, n, SystemClock::new().now())
}

/// Writes messages through the real log and store, created at `now`: `n`
/// sends to two mailboxes, every third acknowledged, plus one chunked
/// upload left incomplete. Small segments so the log spans several files.
fn write_log_at(dir: &Path, n: usize, now: Timestamp) -> anyhow::Result<Expected> {
    let storage = FileStorage::open(dir)?;
    let config = WalConfig {
        segment_bytes: 16 * 1024,
        ..WalConfig::default()
    };
    let (mut wal, _) = Wal::open(storage, config, |_| Ok(()))?;
    let mut store = MessageStore::new(StoreConfig::default());
    let mut ids = MessageIdGenerator::new();
    let mut rng = SeededRandom::new(42);
    let log = |wal: &mut Wal<FileStorage>,
               store: &mut MessageStore,
               ev: Event,
               body: Bytes|
     -> anyhow::Result<()> {
        let rec = ev.to_record(body.clone()).map_err(anyhow::Error::msg)?;
        let head = rec.head.len();
        let app = wal.append_batch(&[rec])?.pop().context("appended")?;
        let loc = ChunkLoc::body_of(app.location, head, body.len());
        store.apply(app.seq, app.location, ev, &body, loc)?;
        Ok(())
    };
    let mut envelope =
        |to: &str, chunks: u32, ids: &mut MessageIdGenerator| -> anyhow::Result<Envelope> {
            Ok(Envelope {
                message_id: ids.next(now, &mut rng)?,
                message_type: MessageType::Data,
                sender: mb("X26ABC1")?,
                recipient: mb(to)?,
                workflow_id: WorkflowId::parse("TEST_WORKFLOW")?,
                subject: None,
                local_id: None,
                file_name: None,
                content_type: None,
                compressed: false,
                encrypted: false,
                checksum: None,
                partner_id: None,
                total_chunks: chunks,
                created_at: now,
                expires_at: now.saturating_add(std::time::Duration::from_secs(5 * 86_400)),
                linked_message_id: None,
                report: None,
            })
        };
    let mut sent: Vec<(MessageId, &str)> = Vec::new();
    for i in 0..n {
        let to = if i % 2 == 0 { "X26ABC2" } else { "X26ABC3" };
        let env = envelope(to, 1, &mut ids)?;
        let id = env.message_id;
        let SendCheck::New(ev) = store.check_send(env, None)? else {
            anyhow::bail!("duplicate")
        };
        log(&mut wal, &mut store, ev, Bytes::from(vec![i as u8; 700]))?;
        sent.push((id, to));
    }
    for (id, to) in sent.iter().step_by(3) {
        if let AckCheck::Log(ev) = store.check_ack(&mb(to)?, id, now)? {
            log(&mut wal, &mut store, ev, Bytes::new())?;
        }
    }
    let env = envelope("X26ABC2", 3, &mut ids)?;
    let SendCheck::New(ev) = store.check_send(env, None)? else {
        anyhow::bail!("duplicate")
    };
    log(&mut wal, &mut store, ev, Bytes::from_static(b"chunk one"))?;
    let acked = sent.iter().step_by(3).count() as u64;
    Ok(Expected {
        records: n as u64 + acked + 1,
        messages: n as u64 + 1,
        in_inboxes: n as u64 - acked,
        mailboxes: 2,
        uploading: 1,
    })
}

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn recovered(log: &str) -> anyhow::Result<Expected> {
    let line = json_lines(log)
        .into_iter()
        .find(|v| v["message"] == "recovered the write-ahead log")
        .context("no recovery line in the log")?;
    let f = &line;
    let get = |k: &str| {
        f[k].as_u64()
            .with_context(|| format!("field {k} missing in {f}"))
    };
    Ok(Expected {
        records: get("records")?,
        messages: get("messages")?,
        in_inboxes: get("in_inboxes")?,
        mailboxes: get("mailboxes")?,
        uploading: get("uploading")?,
    })
}

fn serve_until_ready(dir: &Path) -> anyhow::Result<Spine> {
    Ok(serve_with(dir, &[])?.0)
}

/// A loopback port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Serves `dir` (JSON logs, `extra` flags) with metrics on a free loopback
/// port and the native protocol on a port the OS picks, until it is ready;
/// answers the node and its metrics port. A port taken between picking
/// and binding is retried with another.
fn serve_with(dir: &Path, extra: &[&str]) -> anyhow::Result<(Spine, u16)> {
    let dir = dir.to_str().context("utf-8 path")?;
    let mut last = None;
    for _ in 0..3 {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "serve",
            "--data-dir",
            dir,
            "--log-format",
            "json",
            "--metrics-listen",
            &listen,
            "--native-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut node = Spine::start(&args)?;
        match node.wait_for_log("ready; send SIGINT or SIGTERM to stop") {
            Ok(_) => return Ok((node, port)),
            Err(e) if format!("{e:#}").contains("METRICS_BIND_FAILED") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.context("no attempt made")?)
}

/// `GET path` over plain HTTP/1.1 on loopback; answers the whole response
/// (status line, headers, body). Every step is bounded.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut response = Vec::new();
    stream.take(16 << 20).read_to_end(&mut response)?;
    Ok(String::from_utf8(response)?)
}

/// `GET /metrics`, checked for status 200.
fn scrape(port: u16) -> anyhow::Result<String> {
    let response = http_get(port, "/metrics")?;
    anyhow::ensure!(
        response.starts_with("HTTP/1.1 200"),
        "not a 200 response:\n{response}"
    );
    Ok(response)
}

/// The value of `series` (name plus labels, exactly as exported).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrapes until `series` reaches `at_least` (bounded by [`WAIT`]).
fn wait_for_metric(port: u16, series: &str, at_least: f64) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(port)?;
        if metric(&text, series).is_some_and(|v| v >= at_least) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            anyhow::bail!("{series} did not reach {at_least} within {WAIT:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn segments(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    Ok(segs)
}

#[test]
fn a_fresh_node_starts_on_the_demo_directory_and_stops_cleanly_on_sigterm_and_sigint(
) -> anyhow::Result<()> {
    for signal in ["TERM", "INT"] {
        let data = tempfile::tempdir()?;
        let node = serve_until_ready(data.path())?;
        node.signal(signal)?;
        let out = node.wait()?;
        assert_eq!(
            out.code(),
            0,
            "exit after SIG{signal}; log:\n{}",
            out.stderr
        );
        let rec = recovered(&out.stderr)?;
        assert_eq!(
            rec,
            Expected {
                records: 0,
                messages: 0,
                in_inboxes: 0,
                mailboxes: 0,
                uploading: 0
            }
        );
        assert!(
            out.stderr.to_lowercase().contains("demo directory"),
            "says plainly it runs on the demo directory:\n{}",
            out.stderr
        );
        assert!(out.stderr.contains("stopped cleanly"));
    }
    Ok(())
}

#[test]
fn serve_recovers_exactly_the_state_that_was_written_and_again_after_a_restart(
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let expected = write_log(data.path(), 60)?;
    assert!(
        segments(data.path())?.len() > 2,
        "the log spans several segments"
    );
    for _ in 0..2 {
        let node = serve_until_ready(data.path())?;
        node.signal("TERM")?;
        let out = node.wait()?;
        assert_eq!(out.code(), 0, "{}", out.stderr);
        assert_eq!(recovered(&out.stderr)?, expected);
    }
    Ok(())
}

#[test]
fn a_torn_tail_is_truncated_logged_and_then_inspects_clean() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let expected = write_log(data.path(), 10)?;
    let last = segments(data.path())?.pop().context("a segment")?;
    let clean_len = std::fs::metadata(&last)?.len();
    // Half a record header: what a crash mid-write leaves behind.
    let mut bytes = std::fs::read(&last)?;
    bytes.extend_from_slice(&[0x2a, 0x01, 0, 0, 0x99, 0x42, 0x13, 0x07, 1, 0, 0, 0, 0, 0]);
    std::fs::write(&last, &bytes)?;
    let dir = data.path().to_str().context("utf-8")?;

    let inspect = run(&["wal", "inspect", dir, "--json"])?;
    assert_eq!(inspect.code(), 4, "torn tail only: {}", inspect.stdout);
    let report: Value = serde_json::from_str(inspect.stdout.trim())?;
    assert_eq!(report["verdict"], "torn_tail");
    assert_eq!(report["first_bad"]["offset"].as_u64(), Some(clean_len));
    assert_eq!(
        std::fs::read(&last)?.len(),
        bytes.len(),
        "inspect never modifies"
    );

    let node = serve_until_ready(data.path())?;
    node.signal("TERM")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(recovered(&out.stderr)?, expected);
    let warn = json_lines(&out.stderr)
        .into_iter()
        .find(|v| {
            v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("torn tail"))
        })
        .context("a warning about the torn tail")?;
    assert_eq!(warn["offset"].as_u64(), Some(clean_len));
    assert_eq!(
        std::fs::metadata(&last)?.len(),
        clean_len,
        "the tail was cut back to the last good record"
    );

    let inspect = run(&["wal", "inspect", dir, "--json"])?;
    assert_eq!(inspect.code(), 0, "{}", inspect.stdout);
    let report: Value = serde_json::from_str(inspect.stdout.trim())?;
    assert_eq!(report["total_records"].as_u64(), Some(expected.records));
    Ok(())
}

#[test]
fn corruption_inside_the_log_is_refused_with_the_file_and_offset() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    write_log(data.path(), 40)?;
    let segs = segments(data.path())?;
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim)?;
    let at = 32 + 32 + 50; // inside the first record's payload
    bytes[at] ^= 0x08;
    std::fs::write(victim, &bytes)?;
    let name = victim
        .file_name()
        .and_then(|n| n.to_str())
        .context("name")?;
    let dir = data.path().to_str().context("utf-8")?;

    let out = run(&["serve", "--data-dir", dir])?;
    assert_eq!(out.code(), 2, "storage refused; log:\n{}", out.stderr);
    assert!(out.stderr.contains("WAL_CORRUPT"), "{}", out.stderr);
    assert!(
        out.stderr.contains(name) && out.stderr.contains("offset 32"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(victim)?,
        bytes,
        "a refused start changes nothing"
    );

    let inspect = run(&["wal", "inspect", dir, "--json"])?;
    assert_eq!(inspect.code(), 2);
    let report: Value = serde_json::from_str(inspect.stdout.trim())?;
    assert_eq!(report["first_bad"]["file"], name);
    assert_eq!(report["first_bad"]["offset"].as_u64(), Some(32));
    let text = run(&["wal", "inspect", dir])?;
    assert!(text.stdout.contains("CORRUPT"), "{}", text.stdout);
    Ok(())
}

#[test]
fn a_second_node_on_the_same_data_directory_is_refused() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let first = serve_until_ready(data.path())?;
    let dir = data.path().to_str().context("utf-8")?;
    let second = run(&["serve", "--data-dir", dir])?;
    assert_eq!(second.code(), 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("NODE_DATA_DIR_LOCKED"),
        "{}",
        second.stderr
    );
    first.signal("TERM")?;
    assert_eq!(first.wait()?.code(), 0);
    Ok(())
}

#[test]
fn configuration_layers_flag_over_env_over_file_and_bad_keys_are_named() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("spine.toml");
    std::fs::write(
        &file,
        "[storage]\nsegment_bytes = 1048576\nmax_in_flight = 100\ninbox_expiry = 3600\n",
    )?;
    let file_s = file.to_str().context("utf-8")?;
    let out = run_env(
        &[
            "serve",
            "--config",
            file_s,
            "--max-in-flight",
            "300",
            "--print-config",
        ],
        &[
            ("SPINE_MAX_IN_FLIGHT", "200"),
            ("SPINE_SEGMENT_BYTES", "2097152"),
        ],
    )?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let printed: String = out
        .stdout
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string() + "\n")
        .collect();
    assert!(
        printed.contains("max_in_flight = 300"),
        "flag wins:\n{}",
        out.stdout
    );
    assert!(
        printed.contains("segment_bytes = 2097152"),
        "env beats file:\n{}",
        out.stdout
    );
    assert!(
        printed.contains("inbox_expiry = 3600"),
        "file beats default:\n{}",
        out.stdout
    );

    std::fs::write(
        &file,
        "[storage]\nsegment_bytes = 1048576\nmax_in_flite = 100\n",
    )?;
    let out = run(&["serve", "--config", file_s, "--print-config"])?;
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr.contains("max_in_flite") && out.stderr.contains("line 3"),
        "{}",
        out.stderr
    );

    let out = run(&["serve", "--segment-bytes", "12", "--print-config"])?;
    assert_eq!(out.code(), 1);
    assert!(out.stderr.contains("segment_bytes"), "{}", out.stderr);
    Ok(())
}

#[test]
fn inspect_lists_segments_and_counts_by_kind() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let expected = write_log(data.path(), 30)?;
    let dir = data.path().to_str().context("utf-8")?;
    let out = run(&["wal", "inspect", dir, "--json"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(out.stdout.trim())?;
    assert_eq!(report["verdict"], "ok");
    assert_eq!(report["total_records"].as_u64(), Some(expected.records));
    let segs = report["segments"].as_array().context("segments")?;
    assert_eq!(segs.len(), segments(data.path())?.len());
    let creates: u64 = segs
        .iter()
        .flat_map(|s| s["kinds"].as_array().cloned().unwrap_or_default())
        .filter(|k| k["name"] == "create")
        .filter_map(|k| k["records"].as_u64())
        .sum();
    assert_eq!(creates, expected.messages);
    let missing = run(&["wal", "inspect", "/nonexistent/spine-data"])?;
    assert_eq!(missing.code(), 1);
    Ok(())
}

#[test]
fn metrics_endpoint_serves_every_series_from_the_start_over_plain_http() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let (mut node, port) = serve_with(data.path(), &["--partitions", "3"])?;
    let response = scrape(port)?;
    for needle in [
        "\nspine_up 1\n",
        "\nspine_messages_accepted_total 0\n",
        "\nspine_messages_acknowledged_total 0\n",
        "\nspine_messages_expired_total 0\n",
        "\nspine_messages_purged_total 0\n",
        "\nspine_messages_delivered_total 0\n",
        "\nspine_subscriber_lagged_total 0\n",
        "\nspine_node_failures_total 0\n",
        "\nspine_wal_records_total 0\n",
        "\nspine_wal_fsyncs_total 0\n",
        "spine_actor_restarts_total{kind=\"partition\"} 0\n",
        "spine_actor_restarts_total{kind=\"service_router\"} 0\n",
        "spine_actor_restarts_total{kind=\"reference_services\"} 0\n",
        "# TYPE spine_wal_fsync_seconds histogram",
        "spine_wal_fsync_seconds_bucket{le=\"0.001\"} 0\n",
        "# TYPE spine_wal_batch_records histogram",
        "spine_partition_queue_depth{partition=\"0\"} 0\n",
        "spine_partition_queue_depth{partition=\"2\"} 0\n",
        "\nspine_wal_in_flight 0\n",
    ] {
        assert!(response.contains(needle), "{needle:?} missing:\n{response}");
    }
    assert!(
        !response.contains("partition=\"3\""),
        "one series per configured partition:\n{response}"
    );
    let line = node.wait_for_log("listen addresses")?;
    let logged: Value = serde_json::from_str(&line)?;
    assert_eq!(
        logged["metrics"].as_str(),
        Some(format!("http://127.0.0.1:{port}/metrics").as_str()),
        "{line}"
    );

    node.signal("TERM")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Duration::from_secs(5)
        )
        .is_err(),
        "the endpoint is gone with the process"
    );
    Ok(())
}

#[test]
fn a_metrics_port_in_use_is_a_startup_error_and_metrics_can_be_turned_off() -> anyhow::Result<()> {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let listen = taken.local_addr()?.to_string();
    let data = tempfile::tempdir()?;
    let dir = data.path().to_str().context("utf-8")?;
    let out = run(&["serve", "--data-dir", dir, "--metrics-listen", &listen])?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("spine: error [METRICS_BIND_FAILED]") && last.contains(&listen),
        "one clear line naming the address:\n{}",
        out.stderr
    );
    assert!(last.contains("--metrics-listen"), "{last}");

    // The node it had started was shut down again: the directory is free.
    let mut node = Spine::start(&[
        "serve",
        "--data-dir",
        dir,
        "--log-format",
        "json",
        "--metrics-enabled",
        "false",
        "--metrics-listen",
        &listen,
        "--native-listen",
        "127.0.0.1:0",
    ])?;
    let line = node.wait_for_log("listen addresses")?;
    let logged: Value = serde_json::from_str(&line)?;
    assert_eq!(logged["metrics"], "disabled", "{line}");
    node.wait_for_log("ready; send SIGINT or SIGTERM to stop")?;
    node.signal("INT")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    drop(taken);
    Ok(())
}

#[test]
fn print_config_shows_runtime_and_metrics_settings_flag_over_env_over_file() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("spine.toml");
    std::fs::write(
        &file,
        "[runtime]\npartitions = 2\nmax_restarts = 4\n\n[metrics]\nlisten = \"127.0.0.1:1111\"\n",
    )?;
    let file_s = file.to_str().context("utf-8")?;
    let env = [
        ("SPINE_PARTITIONS", "3"),
        ("SPINE_METRICS_LISTEN", "127.0.0.1:2222"),
    ];
    let print = |flags: &[&str], env: &[(&str, &str)]| -> anyhow::Result<String> {
        let mut args = vec!["serve", "--config", file_s, "--print-config"];
        args.extend_from_slice(flags);
        let out = run_env(&args, env)?;
        anyhow::ensure!(out.code() == 0, "exit {}: {}", out.code(), out.stderr);
        Ok(out.stdout)
    };

    let file_only = print(&[], &[])?;
    for line in [
        "partitions = 2  # config file",
        "max_restarts = 4  # config file",
        "listen = \"127.0.0.1:1111\"  # config file",
        "enabled = true  # built-in default",
        "shutdown_drain_ms = 30000  # built-in default",
    ] {
        assert!(file_only.contains(line), "{line}:\n{file_only}");
    }
    let with_env = print(&[], &env)?;
    for line in [
        "partitions = 3  # environment variable SPINE_PARTITIONS",
        "max_restarts = 4  # config file",
        "listen = \"127.0.0.1:2222\"  # environment variable SPINE_METRICS_LISTEN",
    ] {
        assert!(with_env.contains(line), "{line}:\n{with_env}");
    }
    let with_flags = print(
        &["--partitions", "5", "--metrics-listen", "127.0.0.1:3333"],
        &env,
    )?;
    for line in [
        "partitions = 5  # flag --partitions",
        "max_restarts = 4  # config file",
        "listen = \"127.0.0.1:3333\"  # flag --metrics-listen",
    ] {
        assert!(with_flags.contains(line), "{line}:\n{with_flags}");
    }

    // The printed configuration is itself a config file giving the same.
    let printed = tmp.path().join("printed.toml");
    std::fs::write(&printed, &with_flags)?;
    let out = run(&[
        "serve",
        "--config",
        printed.to_str().context("utf-8")?,
        "--print-config",
    ])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("partitions = 5  # config file"),
        "{}",
        out.stdout
    );

    // Out-of-range runtime values are refused, naming setting and source.
    let out = run_env(
        &["serve", "--print-config"],
        &[("SPINE_EXPIRY_INTERVAL_MS", "1")],
    )?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("runtime.expiry_interval_ms = 1")
            && out.stderr.contains("SPINE_EXPIRY_INTERVAL_MS")
            && out.stderr.contains("CONFIG_INVALID"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn a_non_loopback_metrics_address_is_refused_unless_allowed() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let dir = data.to_str().context("utf-8")?;
    for listen in ["0.0.0.0:9701", "[::]:9701", "192.0.2.10:9701"] {
        let out = run(&["serve", "--data-dir", dir, "--metrics-listen", listen])?;
        assert_eq!(out.code(), 1, "{listen}: {}", out.stderr);
        assert!(
            out.stderr.contains("CONFIG_INVALID")
                && out.stderr.contains("not a loopback address")
                && out.stderr.contains("--metrics-allow-remote"),
            "{listen}: {}",
            out.stderr
        );
        assert!(!data.exists(), "refused before touching anything");
    }
    let out = run_env(
        &["serve", "--data-dir", dir],
        &[("SPINE_METRICS_LISTEN", "0.0.0.0:9701")],
    )?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("environment variable SPINE_METRICS_LISTEN"),
        "{}",
        out.stderr
    );

    // Allowed by flag, environment or file (checked with --print-config:
    // these tests never listen beyond loopback).
    let allowed = run(&[
        "serve",
        "--metrics-listen",
        "0.0.0.0:9701",
        "--metrics-allow-remote",
        "--print-config",
    ])?;
    assert_eq!(allowed.code(), 0, "{}", allowed.stderr);
    assert!(
        allowed
            .stdout
            .contains("allow_remote = true  # flag --metrics-allow-remote"),
        "{}",
        allowed.stdout
    );
    let allowed = run_env(
        &[
            "serve",
            "--metrics-listen",
            "0.0.0.0:9701",
            "--print-config",
        ],
        &[("SPINE_METRICS_ALLOW_REMOTE", "true")],
    )?;
    assert_eq!(allowed.code(), 0, "{}", allowed.stderr);
    let file = tmp.path().join("spine.toml");
    std::fs::write(
        &file,
        "[metrics]\nlisten = \"0.0.0.0:9701\"\nallow_remote = true\n",
    )?;
    let allowed = run(&[
        "serve",
        "--config",
        file.to_str().context("utf-8")?,
        "--print-config",
    ])?;
    assert_eq!(allowed.code(), 0, "{}", allowed.stderr);
    // ...and a flag can take the file's permission back.
    let refused = run(&[
        "serve",
        "--config",
        file.to_str().context("utf-8")?,
        "--metrics-allow-remote",
        "false",
        "--print-config",
    ])?;
    assert_eq!(refused.code(), 1, "{}", refused.stderr);
    Ok(())
}

#[test]
fn sigterm_stops_the_actor_tree_cleanly_and_a_restart_with_other_partitions_recovers(
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let expected = write_log(data.path(), 40)?;
    for (partitions, signal) in [("3", "TERM"), ("5", "INT"), ("1", "TERM")] {
        let (node, port) = serve_with(data.path(), &["--partitions", partitions])?;
        let text = scrape(port)?;
        let last = format!(
            "spine_partition_queue_depth{{partition=\"{}\"}} 0",
            partitions.parse::<u32>()? - 1
        );
        assert!(text.contains(&last), "{last}:\n{text}");
        node.signal(signal)?;
        let out = node.wait()?;
        assert_eq!(out.code(), 0, "SIG{signal}: {}", out.stderr);
        assert_eq!(recovered(&out.stderr)?, expected, "{partitions} partitions");
        assert!(out.stderr.contains("stopped cleanly"), "{}", out.stderr);
    }
    let dir = data.path().to_str().context("utf-8")?;
    let inspect = run(&["wal", "inspect", dir, "--json"])?;
    assert_eq!(
        inspect.code(),
        0,
        "a clean shutdown leaves no torn tail: {}",
        inspect.stdout
    );
    let report: Value = serde_json::from_str(inspect.stdout.trim())?;
    assert_eq!(report["total_records"].as_u64(), Some(expected.records));
    Ok(())
}

#[test]
fn a_served_node_expires_overdue_messages_counts_them_and_a_restart_recovers_the_reports(
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    // Written six days ago: past the five-day inbox expiry, not yet purged.
    let six_days_ago = Timestamp::from_micros(
        SystemClock::new()
            .now()
            .as_micros()
            .saturating_sub(6 * 86_400 * 1_000_000),
    );
    let written = write_log_at(data.path(), 12, six_days_ago)?;
    let (node, port) = serve_with(data.path(), &["--expiry-interval-ms", "50"])?;
    // Every message waiting in an inbox expires, and each yields one
    // non-delivery report accepted into the sender's inbox.
    let waiting = written.in_inboxes as f64;
    wait_for_metric(port, "spine_messages_expired_total", waiting)?;
    let text = wait_for_metric(port, "spine_messages_accepted_total", waiting)?;
    assert!(
        metric(&text, "spine_wal_fsyncs_total").is_some_and(|v| v >= 1.0),
        "the reports were synced:\n{text}"
    );
    assert!(
        metric(&text, "spine_wal_fsync_seconds_count").is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "spine_messages_purged_total"),
        Some(0.0),
        "{text}"
    );
    node.signal("TERM")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);

    let (node, _) = serve_with(data.path(), &[])?;
    node.signal("TERM")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let after = recovered(&out.stderr)?;
    assert_eq!(
        after.in_inboxes, written.in_inboxes,
        "one report per expired message, now waiting for the sender"
    );
    assert_eq!(after.mailboxes, 1, "all reports go to the one sender");
    assert_eq!(after.messages, written.messages + written.in_inboxes);
    assert!(after.records > written.records, "{after:?}");
    Ok(())
}

/// The native protocol address a ready node logged (`tcp://IP:PORT`).
fn native_addr(node: &mut Spine) -> anyhow::Result<SocketAddr> {
    let line = node.wait_for_log("listen addresses")?;
    let logged: Value = serde_json::from_str(&line)?;
    let shown = logged["native"].as_str().context("no native field")?;
    Ok(shown
        .strip_prefix("tcp://")
        .with_context(|| format!("not plain TCP: {line}"))?
        .parse()?)
}

#[test]
fn the_native_transport_listens_before_ready_and_closes_on_sigterm() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let (mut node, _) = serve_with(data.path(), &[])?;
    let addr = native_addr(&mut node)?;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    // Ready was logged, so the listener is bound.
    TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    let line = node.wait_for_log("listen addresses")?;
    let logged: Value = serde_json::from_str(&line)?;
    assert_eq!(
        logged["quic"], "off (no TLS certificate)",
        "QUIC needs TLS: {line}"
    );
    node.signal("TERM")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let stopped = out
        .stderr
        .find("native protocol transports and MESH API stopped")
        .context("transports not stopped")?;
    let synced = out.stderr.find("stopped cleanly").context("not clean")?;
    assert!(stopped < synced, "transports stop first:\n{}", out.stderr);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_err(),
        "the listener is gone with the process"
    );

    // Turned off, nothing listens and the log says so.
    let (mut node, _) = serve_with(data.path(), &["--native-enabled", "false"])?;
    let line = node.wait_for_log("listen addresses")?;
    let logged: Value = serde_json::from_str(&line)?;
    assert_eq!(logged["native"], "disabled", "{line}");
    node.signal("INT")?;
    assert_eq!(node.wait()?.code(), 0);
    Ok(())
}

#[test]
fn a_native_port_in_use_is_a_startup_error_naming_the_setting() -> anyhow::Result<()> {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let listen = taken.local_addr()?.to_string();
    let data = tempfile::tempdir()?;
    let dir = data.path().to_str().context("utf-8")?;
    let out = run(&[
        "serve",
        "--data-dir",
        dir,
        "--metrics-enabled",
        "false",
        "--native-listen",
        &listen,
    ])?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("spine: error [NET_BIND_FAILED]")
            && last.contains(&listen)
            && last.contains("--native-listen"),
        "one clear line naming the address and the flag:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("ready; send SIGINT"),
        "never reported ready:\n{}",
        out.stderr
    );
    // The node it had started was shut down again: the directory is free.
    let (node, _) = serve_with(data.path(), &[])?;
    node.signal("TERM")?;
    assert_eq!(node.wait()?.code(), 0);
    drop(taken);
    Ok(())
}

#[test]
fn a_missing_tls_file_is_refused_before_recovery() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let missing = tmp.path().join("no-such-cert.pem");
    let key = tmp.path().join("no-such-key.pem");
    let out = run(&[
        "serve",
        "--data-dir",
        data.to_str().context("utf-8")?,
        "--metrics-enabled",
        "false",
        "--native-listen",
        "127.0.0.1:0",
        "--tls-cert",
        missing.to_str().context("utf-8")?,
        "--tls-key",
        key.to_str().context("utf-8")?,
    ])?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("spine: error [TLS_CERT_READ]") && last.contains("no-such-cert.pem"),
        "one clear line naming the file:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("recovered"),
        "refused before recovering the log:\n{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn a_non_loopback_native_address_is_refused_unless_allowed() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let dir = data.to_str().context("utf-8")?;
    let out = run(&[
        "serve",
        "--data-dir",
        dir,
        "--native-listen",
        "0.0.0.0:7701",
    ])?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("CONFIG_INVALID")
            && out.stderr.contains("network.native_listen")
            && out.stderr.contains("flag --native-listen")
            && out.stderr.contains("--network-allow-remote"),
        "{}",
        out.stderr
    );
    assert!(!data.exists(), "refused before touching anything");
    let allowed = run_env(
        &["serve", "--native-listen", "0.0.0.0:7701", "--print-config"],
        &[("SPINE_NETWORK_ALLOW_REMOTE", "true")],
    )?;
    assert_eq!(allowed.code(), 0, "{}", allowed.stderr);
    assert!(
        allowed
            .stdout
            .contains("allow_remote = true  # environment variable SPINE_NETWORK_ALLOW_REMOTE")
            && allowed
                .stdout
                .contains("native_listen = \"0.0.0.0:7701\"  # flag --native-listen"),
        "{}",
        allowed.stdout
    );
    Ok(())
}

/// `--max-inbox-depth 2`: a third message to one inbox is refused with
/// `MSG_LIMIT` (naming the setting), while another inbox still takes one;
/// collecting frees the inbox again.
#[test]
fn the_inbox_depth_limit_refuses_a_third_send_to_one_mailbox_only() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let (mut node, _) = serve_with(data.path(), &["--max-inbox-depth", "2"])?;
    let server = format!("native://{}", native_addr(&mut node)?);
    let as_mailbox = |mailbox: &'static str, command: &[&str]| -> anyhow::Result<_> {
        let mut args = command.to_vec();
        args.extend([
            "--server",
            server.as_str(),
            "--mailbox",
            mailbox,
            "--password",
            "password",
        ]);
        run(&args)
    };
    // TEST_WORKFLOW2: X26ABC1 sends to any demo mailbox.
    let send = |to: &str| {
        as_mailbox(
            "X26ABC1",
            &[
                "send",
                "--to",
                to,
                "--workflow",
                "TEST_WORKFLOW2",
                "--data",
                "x",
                "--json",
            ],
        )
    };
    let mut first = None;
    for n in 1..=2 {
        let out = send("X26ABC2")?;
        assert_eq!(out.code(), 0, "send {n}: {}", out.stderr);
        let sent: Value = serde_json::from_str(out.stdout.trim())?;
        first.get_or_insert(
            sent["message_id"]
                .as_str()
                .context("message_id")?
                .to_owned(),
        );
    }
    let out = send("X26ABC2")?;
    assert_eq!(out.code(), 5, "refused by the server: {out:?}");
    assert!(
        out.stderr.contains("spine: error [MSG_LIMIT]")
            && out.stderr.contains("inbox depth limit of 2")
            && out.stderr.contains("--max-inbox-depth"),
        "{}",
        out.stderr
    );
    let out = send("X26ABC3")?;
    assert_eq!(out.code(), 0, "another inbox is not full: {}", out.stderr);

    // Acknowledging one makes room for one more.
    let id = first.context("a message was sent")?;
    let out = as_mailbox("X26ABC2", &["ack", &id])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let out = send("X26ABC2")?;
    assert_eq!(out.code(), 0, "room again: {}", out.stderr);

    node.signal("TERM")?;
    let out = node.wait()?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    Ok(())
}
