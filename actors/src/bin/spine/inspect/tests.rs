//! Inspection of real directories written by the real log.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use spine_actors::wal::FileStorage;
use spine_core::wal::{PendingRecord, Wal, WalConfig};

use super::{inspect_dir, Verdict};
use crate::exit::Exit;

const MAX: u32 = 1 << 20;

/// Writes `batches` batches of `per` records (alternating kinds 1 and 2)
/// with small segments, so the log spans several files.
fn write_log(dir: &Path, batches: usize, per: usize) {
    let storage = FileStorage::open(dir).unwrap();
    let config = WalConfig {
        segment_bytes: 4096,
        max_record_bytes: MAX,
        max_batch_records: 64,
    };
    let (mut wal, _) = Wal::open(storage, config, |_| Ok(())).unwrap();
    for b in 0..batches {
        let batch: Vec<PendingRecord> = (0..per)
            .map(|i| PendingRecord {
                kind: if i % 2 == 0 { 1 } else { 2 },
                head: Bytes::from(vec![b as u8; 8]),
                body: Bytes::from(vec![i as u8; 500]),
            })
            .collect();
        wal.append_batch(&batch).unwrap();
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    segments(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn empty_directory_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, verdict) = inspect_dir(tmp.path(), MAX, false).unwrap();
    assert_eq!(verdict, Verdict::Ok);
    assert_eq!(verdict.exit(), Exit::Ok);
    assert!(text.contains("total (0 segments)"), "{text}");
    let (json, _) = inspect_dir(tmp.path(), MAX, true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["total_records"], 0);
    assert!(v["first_bad"].is_null());
}

#[test]
fn healthy_log_reports_every_segment_and_kind() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 6, 4);
    let files = segments(tmp.path());
    assert!(files.len() >= 3, "expected rotation, got {files:?}");
    let (text, verdict) = inspect_dir(tmp.path(), MAX, false).unwrap();
    assert_eq!(verdict, Verdict::Ok, "{text}");
    assert!(text.contains("00000000000000000001.wal"), "{text}");
    assert!(text.contains("create=12 chunk=12"), "{text}");
    assert!(text.contains("verdict: ok"), "{text}");
    for line in text.lines().skip(2).take(files.len()) {
        assert!(line.ends_with("ok"), "{line}");
    }

    let (json, _) = inspect_dir(tmp.path(), MAX, true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["total_records"], 24);
    assert_eq!(v["segments"].as_array().unwrap().len(), files.len());
    let total: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(v["total_bytes"], total);
    assert_eq!(v["segments"][0]["first_seq"], 1);
    assert_eq!(v["segments"][0]["status"], "ok");
    assert_eq!(v["segments"][0]["kinds"][0]["name"], "create");
    assert!(v["first_bad"].is_null());
}

#[test]
fn torn_tail_is_reported_not_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 3, 2);
    let last = segments(tmp.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    // Cut the last record in half, as a crash mid-write would.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let before = snapshot(tmp.path());
    let (text, verdict) = inspect_dir(tmp.path(), MAX, false).unwrap();
    assert_eq!(verdict, Verdict::TornTail, "{text}");
    assert_eq!(verdict.exit(), Exit::TornTail);
    assert!(text.contains("torn tail at offset"), "{text}");
    assert!(text.contains("will truncate"), "{text}");
    let (json, _) = inspect_dir(tmp.path(), MAX, true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["verdict"], "torn_tail");
    let name = last.file_name().unwrap().to_str().unwrap();
    assert_eq!(v["first_bad"]["file"], name);
    assert!(v["first_bad"]["offset"].as_u64().unwrap() < len);
    assert_eq!(snapshot(tmp.path()), before, "inspect modified the log");
}

#[test]
fn corruption_in_a_sealed_segment_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 6, 4);
    let first = segments(tmp.path()).remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let before = snapshot(tmp.path());
    let (text, verdict) = inspect_dir(tmp.path(), MAX, false).unwrap();
    assert_eq!(verdict, Verdict::Corrupt, "{text}");
    assert_eq!(verdict.exit(), Exit::StorageRefused);
    assert!(text.contains("CORRUPT at offset"), "{text}");
    assert!(text.contains("verdict: CORRUPT"), "{text}");
    let (json, _) = inspect_dir(tmp.path(), MAX, true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["verdict"], "corrupt");
    assert_eq!(v["segments"][0]["status"], "corrupt");
    assert_eq!(v["first_bad"]["file"], "00000000000000000001.wal");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn too_small_max_record_bytes_reads_as_damage() {
    // Inspecting with a smaller limit than the node used flags records as
    // oversize; the help says to use at least the node's setting.
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 1, 1);
    let (_, verdict) = inspect_dir(tmp.path(), 16, false).unwrap();
    assert_ne!(verdict, Verdict::Ok);
}

#[test]
fn missing_or_non_directory_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let e = inspect_dir(&missing, MAX, false).unwrap_err();
    assert_eq!(e.exit, Exit::Usage);
    assert_eq!(e.code, "INSPECT_DIR_NOT_FOUND");
    assert!(e.message.contains("does not exist"), "{}", e.message);
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = inspect_dir(&file, MAX, false).unwrap_err();
    assert_eq!(e.exit, Exit::Usage);
    assert_eq!(e.code, "INSPECT_NOT_A_DIRECTORY");
}

#[test]
fn foreign_files_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 1, 2);
    std::fs::write(tmp.path().join("notes.txt"), b"hello").unwrap();
    let (_, verdict) = inspect_dir(tmp.path(), MAX, false).unwrap();
    assert_eq!(verdict, Verdict::Ok);
}

#[test]
fn kind_names_come_from_the_message_layer() {
    assert_eq!(super::kind_name(1), "create");
    assert_eq!(super::kind_name(7), "carry-chunk");
    assert_eq!(super::kind_name(200), "kind-200");
}
