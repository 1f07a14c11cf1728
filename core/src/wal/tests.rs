//! Behavioural tests of the log over the fault-injecting [`MemStorage`].

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::ErrorCode;

fn cfg() -> WalConfig {
    WalConfig {
        segment_bytes: 4096,
        max_record_bytes: 1 << 16,
        max_batch_records: 64,
    }
}

fn rec(kind: u8, body: &[u8]) -> PendingRecord {
    PendingRecord {
        kind,
        head: Bytes::from_static(b"h:"),
        body: Bytes::copy_from_slice(body),
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-")
        .repeat((i % 7 + 1) as usize)
        .into_bytes()
}

type Opened = (Wal<MemStorage>, RecoveryReport, Vec<(u64, u8, Bytes)>);

fn open(storage: &MemStorage) -> Result<Opened, WalError> {
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(storage.clone(), cfg(), |r| {
        seen.push((r.seq, r.kind, r.payload));
        Ok(())
    })?;
    Ok((wal, report, seen))
}

/// Writes `n` records in batches of `batch`, returns expected payloads.
fn fill(wal: &mut Wal<MemStorage>, n: u64, batch: usize) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    let mut i = 0;
    while i < n {
        let recs: Vec<PendingRecord> = (i..(i + batch as u64).min(n))
            .map(|j| rec((j % 3) as u8, &payload(j)))
            .collect();
        for r in &recs {
            let mut p = r.head.to_vec();
            p.extend_from_slice(&r.body);
            all.push(p);
        }
        i += recs.len() as u64;
        wal.append_batch(&recs).expect("append");
    }
    all
}

#[test]
fn appends_are_recovered_in_order_across_segments() {
    let disk = MemStorage::new();
    let (mut wal, report, seen) = open(&disk).unwrap();
    assert!(seen.is_empty());
    assert_eq!(report.next_seq, 1);
    let expected = fill(&mut wal, 300, 5);
    assert!(wal.segments().len() > 3, "segments rotate at segment_bytes");
    let syncs = disk.sync_count();
    assert_eq!(wal.stats().batches, 60);
    assert!(syncs >= 60, "one fdatasync per batch at least");
    let read_back = wal
        .read(&wal.segments()[0].clone().into_first_location())
        .unwrap();
    assert_eq!(read_back.as_ref(), &expected[0][..]);
    drop(wal);

    let (wal, report, seen) = open(&disk).unwrap();
    assert_eq!(report.records, 300);
    assert_eq!(report.truncated, None);
    assert_eq!(wal.next_seq(), 301);
    let got: Vec<Vec<u8>> = seen.iter().map(|(_, _, p)| p.to_vec()).collect();
    assert_eq!(got, expected);
    assert!(seen
        .iter()
        .enumerate()
        .all(|(i, (seq, kind, _))| *seq == i as u64 + 1 && *kind == (i % 3) as u8));
}

impl SegmentInfo {
    fn into_first_location(self) -> RecordLocation {
        let len = (2 + payload(0).len()) as u32;
        RecordLocation {
            segment: self.first_seq,
            offset: (SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) as u64,
            len,
        }
    }
}

#[test]
fn truncating_the_last_record_at_every_offset_recovers_exactly_the_records_before_it() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    let expected = fill(&mut wal, 6, 1);
    wal.append_batch(&[rec(9, b"the last record, cut at every byte")])
        .unwrap();
    drop(wal);
    let name = disk.file_names().pop().unwrap();
    let full = disk.file_bytes(&name).unwrap();
    let last_len = RECORD_HEADER_LEN + 2 + 34;
    let last_start = full.len() - last_len;
    for cut in last_start..full.len() {
        let d = MemStorage::new();
        for n in disk.file_names() {
            d.put_file(&n, disk.file_bytes(&n).unwrap());
        }
        d.put_file(&name, full[..cut].to_vec());
        let (mut wal, report, seen) = open(&d).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let got: Vec<Vec<u8>> = seen.iter().map(|(_, _, p)| p.to_vec()).collect();
        assert_eq!(got, expected, "cut at {cut}");
        if cut > last_start {
            assert_eq!(
                report.truncated,
                Some((name.clone(), last_start as u64, (cut - last_start) as u64))
            );
        }
        assert_eq!(
            d.file_bytes(&name).unwrap().len(),
            last_start,
            "tail truncated on disk"
        );
        // The log continues cleanly after truncation.
        wal.append_batch(&[rec(1, b"after")]).unwrap();
        assert_eq!(wal.next_seq(), 8);
        drop(wal);
        assert_eq!(open(&d).unwrap().1.records, 7);
    }
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_refused_with_file_and_offset() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 200, 4);
    drop(wal);
    let names = disk.file_names();
    assert!(names.len() >= 3);
    let victim = &names[1];
    let mut bytes = disk.file_bytes(victim).unwrap();
    let at = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 1;
    bytes[at] ^= 0x40;
    disk.put_file(victim, bytes);
    let err = open(&disk).unwrap_err();
    assert_eq!(err.code(), "WAL_CORRUPT");
    match err {
        WalError::Corrupt { file, offset, .. } => {
            assert_eq!(&file, victim);
            assert_eq!(offset, SEGMENT_HEADER_LEN as u64);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn damage_to_an_earlier_batch_of_the_last_segment_is_refused() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 4, 2); // two synced batches in one segment
    drop(wal);
    let name = disk.file_names().pop().unwrap();
    let mut bytes = disk.file_bytes(&name).unwrap();
    bytes[SEGMENT_HEADER_LEN + RECORD_HEADER_LEN] ^= 1; // first batch's first payload byte
    disk.put_file(&name, bytes);
    let err = open(&disk).unwrap_err();
    assert!(
        matches!(err, WalError::Corrupt { offset, .. } if offset == SEGMENT_HEADER_LEN as u64),
        "{err}"
    );
}

#[test]
fn a_torn_final_batch_is_truncated_even_if_later_records_of_it_survived() {
    // Power loss during an unsynced batch can persist later pages of the
    // write but not earlier ones; that batch was never acknowledged.
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    let expected = fill(&mut wal, 3, 3);
    disk.set_fail_sync(true);
    let torn: Vec<PendingRecord> = (0..4).map(|i| rec(1, &payload(100 + i))).collect();
    let err = wal.append_batch(&torn).unwrap_err();
    assert!(err.is_fatal());
    drop(wal);
    disk.crash(|_, unsynced| unsynced); // every unsynced byte reached the disk...
    let name = disk.file_names().pop().unwrap();
    let mut bytes = disk.file_bytes(&name).unwrap();
    let first_torn = bytes.len()
        - torn
            .iter()
            .map(|r| RECORD_HEADER_LEN + r.payload_len() as usize)
            .sum::<usize>();
    bytes[first_torn + RECORD_HEADER_LEN] ^= 0xff; // ...but its first record's page did not
    disk.put_file(&name, bytes);
    let (_, report, seen) = open(&disk).unwrap();
    assert_eq!(
        seen.iter().map(|(_, _, p)| p.to_vec()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(report.truncated.map(|t| t.1), Some(first_torn as u64));
}

#[test]
fn pipelined_unsynced_batches_torn_together_are_truncated() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    let expected = fill(&mut wal, 2, 2); // synced
    let b = wal
        .write_batch(&[rec(1, b"unsynced-b1"), rec(1, b"unsynced-b2")])
        .unwrap();
    wal.write_batch(&[rec(1, b"unsynced-c1")]).unwrap(); // written while B "syncs"
    drop(wal);
    disk.crash(|_, unsynced| unsynced);
    let name = disk.file_names().pop().unwrap();
    let mut bytes = disk.file_bytes(&name).unwrap();
    let b_at = b.records[0].location.offset as usize;
    bytes[b_at] ^= 0x10; // B's first record damaged, C intact
    disk.put_file(&name, bytes);
    let (_, report, seen) = open(&disk).unwrap();
    assert_eq!(
        seen.iter().map(|(_, _, p)| p.to_vec()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        report.truncated.map(|t| t.1),
        Some((b_at - RECORD_HEADER_LEN) as u64)
    );
}

#[test]
fn damage_that_a_later_watermark_proves_was_synced_is_refused() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 2, 2);
    let b = wal.write_batch(&[rec(1, b"synced-b")]).unwrap();
    let syncer = wal.active_syncer().unwrap();
    SyncData::sync_data(&*syncer).unwrap();
    wal.mark_synced(b.end_seq);
    assert_eq!(wal.synced_upto(), b.end_seq);
    wal.write_batch(&[rec(1, b"unsynced-c")]).unwrap();
    drop(wal);
    let name = disk.file_names().pop().unwrap();
    let mut bytes = disk.file_bytes(&name).unwrap();
    let b_at = b.records[0].location.offset as usize;
    bytes[b_at + 3] ^= 0x01;
    disk.put_file(&name, bytes);
    let err = open(&disk).unwrap_err();
    assert!(
        matches!(err, WalError::Corrupt { offset, .. } if offset == (b_at - RECORD_HEADER_LEN) as u64),
        "{err}"
    );
    assert!(err.to_string().contains("acknowledged"), "{err}");
}

#[test]
fn an_injected_fsync_failure_fails_the_pending_append_and_every_later_one() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 2, 1);
    disk.set_fail_sync(true);
    let err = wal.append_batch(&[rec(1, b"pending")]).unwrap_err();
    assert_eq!(err.code(), "WAL_IO");
    disk.set_fail_sync(false); // even if the disk "recovers", the log stays failed
    for _ in 0..3 {
        let err = wal.append_batch(&[rec(1, b"later")]).unwrap_err();
        assert_eq!(err.code(), "WAL_FAILED");
        assert!(err.to_string().contains("fdatasync"), "{err}");
    }
    assert!(wal.failure().is_some());
    assert_eq!(wal.remove_oldest_sealed().unwrap_err().code(), "WAL_FAILED");
}

#[test]
fn a_full_disk_fails_the_log() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 2, 1);
    disk.set_capacity(Some(
        disk.file_bytes(&disk.file_names()[0]).unwrap().len() + 10,
    ));
    let err = wal.append_batch(&[rec(1, &[7u8; 100])]).unwrap_err();
    assert!(err.to_string().contains("write"), "{err}");
    assert_eq!(
        wal.append_batch(&[rec(1, b"x")]).unwrap_err().code(),
        "WAL_FAILED"
    );
    disk.set_capacity(None);
    drop(wal);
    assert_eq!(
        open(&disk).unwrap().1.records,
        2,
        "nothing half-written survives as a record"
    );
}

#[test]
fn a_missing_middle_segment_is_a_sequence_gap() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 200, 4);
    drop(wal);
    let names = disk.file_names();
    let mut d = disk.clone();
    Storage::remove(&mut d, &names[1]).unwrap();
    let err = open(&disk).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { file, .. } if file == &names[2]),
        "{err}"
    );
    assert!(err.to_string().contains("gap"), "{err}");
}

#[test]
fn a_torn_segment_creation_is_removed() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 3, 1);
    drop(wal);
    let name = super::segment::segment_name(4);
    disk.put_file(
        &name,
        SegmentHeader { first_seq: 4 }.encode()[..10].to_vec(),
    );
    let (mut wal, report, seen) = open(&disk).unwrap();
    assert_eq!(report.removed_torn_segment, Some(name.clone()));
    assert_eq!(seen.len(), 3);
    wal.append_batch(&[rec(1, b"next")]).unwrap();
    assert_eq!(wal.next_seq(), 5);
}

#[test]
fn unsynced_segment_creation_vanishes_in_a_crash_and_recovery_copes() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 3, 1);
    disk.set_fail_sync(true);
    assert!(wal.seal_active().is_err());
    drop(wal);
    disk.crash(|_, _| 0);
    let (_, report, _) = open(&disk).unwrap();
    assert_eq!(report.records, 3);
}

#[test]
fn oversize_records_and_bad_batches_are_rejected_without_failing_the_log() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    let err = wal
        .append_batch(&[rec(1, &vec![0u8; 1 << 16])])
        .unwrap_err();
    assert_eq!(err.code(), "WAL_RECORD_TOO_LARGE");
    assert_eq!(
        wal.append_batch(&[]).unwrap_err().code(),
        "WAL_INVALID_BATCH"
    );
    let too_many: Vec<PendingRecord> = (0..65).map(|_| rec(1, b"x")).collect();
    assert_eq!(
        wal.append_batch(&too_many).unwrap_err().code(),
        "WAL_INVALID_BATCH"
    );
    wal.append_batch(&[rec(1, b"fine")]).unwrap();
    assert!(wal.failure().is_none());
}

#[test]
fn removing_sealed_segments_keeps_the_rest_recoverable() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 200, 4);
    let first = wal.oldest_sealed().unwrap().clone();
    let removed = wal.remove_oldest_sealed().unwrap().unwrap();
    assert_eq!(removed, first);
    let second_first = wal.oldest_sealed().unwrap().first_seq;
    drop(wal);
    let (wal, report, seen) = open(&disk).unwrap();
    assert_eq!(report.first_seq, second_first);
    assert_eq!(seen.first().map(|s| s.0), Some(second_first));
    assert_eq!(wal.next_seq(), 201);
}

#[test]
fn replay_refusal_names_the_record() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 3, 1);
    drop(wal);
    let err = Wal::open(disk.clone(), cfg(), |r| {
        if r.seq == 2 {
            Err("bad event".into())
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(matches!(err, WalError::Replay { seq: 2, .. }), "{err}");
}

#[test]
fn inspect_reports_without_modifying() {
    let disk = MemStorage::new();
    let (mut wal, _, _) = open(&disk).unwrap();
    fill(&mut wal, 50, 5);
    drop(wal);
    let names = disk.file_names();
    let last = names.last().unwrap().clone();
    let mut bytes = disk.file_bytes(&last).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    disk.put_file(&last, bytes.clone());
    let reports = inspect(&mut disk.clone(), 1 << 16).unwrap();
    assert_eq!(reports.iter().map(|r| r.records).sum::<u64>(), 50);
    let tail = reports.last().unwrap();
    assert!(tail.torn_tail);
    assert_eq!(
        tail.problem.as_ref().map(|p| p.0),
        Some(bytes.len() as u64 - 3)
    );
    assert_eq!(
        disk.file_bytes(&last).unwrap(),
        bytes,
        "inspect never truncates"
    );
    assert!(reports[..reports.len() - 1]
        .iter()
        .all(|r| r.problem.is_none()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn crash_at_any_point_keeps_every_acknowledged_record(
        batches in proptest::collection::vec(1usize..6, 1..20),
        keep_frac in 0.0f64..1.0,
        fail_at in 0usize..20,
    ) {
        let disk = MemStorage::new();
        let (mut wal, _, _) = open(&disk).unwrap();
        let mut acked = Vec::new();
        for (b, n) in batches.iter().enumerate() {
            if b == fail_at { disk.set_fail_sync(true); }
            let recs: Vec<PendingRecord> = (0..*n).map(|i| rec(1, &payload((b * 10 + i) as u64))).collect();
            if wal.append_batch(&recs).is_ok() {
                acked.extend(recs.iter().map(|r| r.body.clone()));
            }
        }
        drop(wal);
        disk.crash(|_, unsynced| (unsynced as f64 * keep_frac) as usize);
        let (_, _, seen) = open(&disk).unwrap();
        let bodies: Vec<Bytes> = seen.iter().map(|(_, _, p)| p.slice(2..)).collect();
        prop_assert!(bodies.len() >= acked.len());
        prop_assert_eq!(&bodies[..acked.len()], &acked[..]);
    }
}
