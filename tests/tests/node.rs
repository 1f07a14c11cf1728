//! Black-box tests of `spine serve` and `spine wal inspect` on real data
//! directories: recovery, torn tails, corruption, locking, configuration
//! and clean shutdown on signals.

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;
use spine_actors::wal::FileStorage;
use spine_core::envelope::{Envelope, MessageType};
use spine_core::ids::{MailboxId, MessageId, MessageIdGenerator, WorkflowId};
use spine_core::message::{AckCheck, ChunkLoc, Event, MessageStore, SendCheck, StoreConfig};
use spine_core::random::SeededRandom;
use spine_core::time::Timestamp;
use spine_core::wal::{Wal, WalConfig};
use spine_tests::{run, run_env, Spine};

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

/// Writes messages through the real log and store: `n` sends to two
/// mailboxes, every third acknowledged, plus one chunked upload left
/// incomplete. Small segments so the log spans several files.
fn write_log(dir: &Path, n: usize) -> anyhow::Result<Expected> {
    let storage = FileStorage::open(dir)?;
    let config = WalConfig {
        segment_bytes: 16 * 1024,
        ..WalConfig::default()
    };
    let (mut wal, _) = Wal::open(storage, config, |_| Ok(()))?;
    let mut store = MessageStore::new(StoreConfig::default());
    let mut ids = MessageIdGenerator::new();
    let mut rng = SeededRandom::new(42);
    let now = Timestamp::from_unix_seconds(1_780_000_000);
    let log = |wal: &mut Wal<FileStorage>,
               store: &mut MessageStore,
               ev: Event,
               body: Bytes|
     -> anyhow::Result<()> {
        let rec = ev.to_record(body.clone()).map_err(anyhow::Error::msg)?;
        let head = rec.head.len() as u64;
        let app = wal.append_batch(&[rec])?.pop().context("appended")?;
        let loc = ChunkLoc {
            segment: app.location.segment,
            offset: app.location.offset + head,
            len: body.len() as u32,
        };
        store.apply(app.seq, app.location, &ev, &body, loc)?;
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
        let id = env.message_id.clone();
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
    let dir = dir.to_str().context("utf-8 path")?;
    let mut node = Spine::start(&["serve", "--data-dir", dir, "--log-format", "json"])?;
    node.wait_for_log("ready; send SIGINT or SIGTERM to stop")?;
    Ok(node)
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
