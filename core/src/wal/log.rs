//! The log: open with recovery, append batches, reclaim old segments.
//!
//! [`Wal`] is synchronous and single-owner: the group-commit writer in
//! `spine-actors` owns one on a dedicated thread and feeds it batches. All
//! durability decisions live here so the simulator exercises the same code.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::error::WalError;
use super::record::{RecordHeader, RECORD_HEADER_LEN};
use super::recovery::{check_header, scan_segment, RecoveredRecord, RecoveryReport, ScanEnd};
use super::segment::{parse_segment_name, segment_name, SegmentHeader, SEGMENT_HEADER_LEN};
use super::storage::{SegmentFile, Storage};

/// Log configuration. Every limit is explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is sealed once it would grow past this size.
    pub segment_bytes: u64,
    /// Largest record payload accepted.
    pub max_record_bytes: u32,
    /// Most records in one batch (one write + one sync).
    pub max_batch_records: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 128 << 20,
            max_record_bytes: 128 << 20,
            max_batch_records: 4096,
        }
    }
}

impl WalConfig {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes < 4096 {
            return Err(WalError::Config(format!(
                "segment_bytes {} is below the minimum of 4096",
                self.segment_bytes
            )));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > (1 << 30) {
            return Err(WalError::Config(format!(
                "max_record_bytes {} must be between 1 and 1073741824",
                self.max_record_bytes
            )));
        }
        if self.max_batch_records == 0 || self.max_batch_records > 1 << 20 {
            return Err(WalError::Config(format!(
                "max_batch_records {} must be between 1 and 1048576",
                self.max_batch_records
            )));
        }
        Ok(())
    }
}

/// Where a record's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordLocation {
    /// The segment (its first sequence number).
    pub segment: u64,
    /// Byte offset of the payload within the segment file.
    pub offset: u64,
    /// Payload length.
    pub len: u32,
}

/// A record waiting to be appended: `head` then `body` form the payload.
/// Two parts let a small encoded header precede a large payload that is
/// written straight from its `Bytes` without copying.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// Kind byte for the layer above.
    pub kind: u8,
    /// First part of the payload (typically encoded metadata).
    pub head: Bytes,
    /// Second part of the payload (typically message bytes).
    pub body: Bytes,
}

impl PendingRecord {
    /// Payload length.
    pub fn payload_len(&self) -> u64 {
        (self.head.len() + self.body.len()) as u64
    }
}

/// A record that is now durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedRecord {
    /// Its sequence number.
    pub seq: u64,
    /// Where its payload is.
    pub location: RecordLocation,
}

/// Summary of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// First sequence number (also the name).
    pub first_seq: u64,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Number of records.
    pub records: u64,
}

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Batches written.
    pub batches: u64,
    /// Records written.
    pub records: u64,
    /// Bytes written (headers included).
    pub bytes: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments removed by compaction.
    pub segments_removed: u64,
}

struct Active<F: SegmentFile> {
    info: SegmentInfo,
    file: F,
    syncer: Arc<F::Syncer>,
}

/// A batch that has been written but is not yet known durable.
#[derive(Debug, Clone)]
pub struct WrittenBatch {
    /// The records, in order.
    pub records: Vec<AppendedRecord>,
    /// One past the last sequence number of the batch: once a sync of
    /// `segment` that started after this write returns, every record below
    /// `end_seq` is durable.
    pub end_seq: u64,
}

/// The write-ahead log over a [`Storage`].
pub struct Wal<S: Storage> {
    storage: S,
    config: WalConfig,
    sealed: VecDeque<SegmentInfo>,
    active: Option<Active<S::File>>,
    next_seq: u64,
    /// Every record below this is durable.
    synced_upto: u64,
    failed: Option<String>,
    scratch: Vec<u8>,
    stats: WalStats,
}

impl<S: Storage> std::fmt::Debug for Wal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("next_seq", &self.next_seq)
            .field("sealed", &self.sealed.len())
            .field("failed", &self.failed)
            .finish()
    }
}

struct Listed {
    seq: u64,
    name: String,
}

fn list_segments<S: Storage>(storage: &mut S) -> Result<Vec<Listed>, WalError> {
    let names = storage
        .list()
        .map_err(|e| WalError::io("list", "data directory", e))?;
    let mut segs: Vec<Listed> = names
        .into_iter()
        .filter_map(|name| parse_segment_name(&name).map(|seq| Listed { seq, name }))
        .collect();
    segs.sort_by_key(|s| s.seq);
    Ok(segs)
}

fn read_all<F: SegmentFile>(file: &F, name: &str) -> Result<Bytes, WalError> {
    let len = file.len().map_err(|e| WalError::io("stat", name, e))?;
    let len = usize::try_from(len).map_err(|_| WalError::Corrupt {
        file: name.to_string(),
        offset: 0,
        detail: format!("segment of {len} bytes is too large for this platform"),
    })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(0, &mut buf)
        .map_err(|e| WalError::io("read", name, e))?;
    Ok(Bytes::from(buf))
}

impl<S: Storage> Wal<S> {
    /// Opens the log, replaying every record into `visit` in order.
    ///
    /// A torn tail is truncated (and the truncation synced); anything else
    /// wrong is refused with [`WalError::Corrupt`]. If `visit` refuses a
    /// record, opening fails with [`WalError::Replay`].
    pub fn open(
        mut storage: S,
        config: WalConfig,
        mut visit: impl FnMut(RecoveredRecord) -> Result<(), String>,
    ) -> Result<(Wal<S>, RecoveryReport), WalError> {
        config.validate()?;
        let listed = list_segments(&mut storage)?;
        let mut report = RecoveryReport::default();
        let mut sealed = VecDeque::new();
        let mut active = None;
        let mut expected: Option<u64> = None;
        let count = listed.len();
        for (i, seg) in listed.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let mut file = storage
                .open(&seg.name)
                .map_err(|e| WalError::io("open", &seg.name, e))?;
            let buf = read_all(&file, &seg.name)?;
            if is_last && buf.len() <= SEGMENT_HEADER_LEN && SegmentHeader::decode(&buf).is_err() {
                // Crash while creating the segment: it never held a record.
                drop(file);
                storage
                    .remove(&seg.name)
                    .map_err(|e| WalError::io("remove", &seg.name, e))?;
                storage
                    .sync_dir()
                    .map_err(|e| WalError::io("sync directory", "data directory", e))?;
                report.removed_torn_segment = Some(seg.name);
                expected.get_or_insert(seg.seq);
                continue;
            }
            let header = check_header(&buf, &seg.name, seg.seq, expected)?;
            let scan = scan_segment(&buf, header.first_seq, is_last, config.max_record_bytes);
            match &scan.end {
                ScanEnd::Corrupt { offset, detail } => {
                    return Err(WalError::Corrupt {
                        file: seg.name,
                        offset: *offset,
                        detail: detail.clone(),
                    })
                }
                ScanEnd::TornTail { offset, .. } => {
                    let removed = buf.len() as u64 - offset;
                    file.truncate(*offset)
                        .map_err(|e| WalError::io("truncate", &seg.name, e))?;
                    file.sync_data()
                        .map_err(|e| WalError::io("fdatasync", &seg.name, e))?;
                    report.truncated = Some((seg.name.clone(), *offset, removed));
                }
                ScanEnd::Clean => {}
            }
            for (h, at) in &scan.records {
                let start = *at as usize + RECORD_HEADER_LEN;
                let location = RecordLocation {
                    segment: header.first_seq,
                    offset: start as u64,
                    len: h.len,
                };
                let payload = buf.slice(start..start + h.len as usize);
                visit(RecoveredRecord {
                    seq: h.seq,
                    kind: h.kind,
                    payload,
                    location,
                })
                .map_err(|detail| WalError::Replay {
                    seq: h.seq,
                    file: seg.name.clone(),
                    offset: *at,
                    detail,
                })?;
            }
            if i == 0 {
                report.first_seq = header.first_seq;
            }
            report.segments += 1;
            report.records += scan.records.len() as u64;
            report.bytes += scan.valid_len;
            let next = header.first_seq + scan.records.len() as u64;
            expected = Some(next);
            let info = SegmentInfo {
                first_seq: header.first_seq,
                name: seg.name,
                bytes: scan.valid_len,
                records: scan.records.len() as u64,
            };
            if is_last {
                let syncer = Arc::new(
                    file.syncer()
                        .map_err(|e| WalError::io("open", &info.name, e))?,
                );
                active = Some(Active { info, file, syncer });
            } else {
                sealed.push_back(info);
            }
        }
        let next_seq = expected.unwrap_or(1);
        if report.segments == 0 {
            report.first_seq = next_seq;
        }
        report.next_seq = next_seq;
        let wal = Wal {
            storage,
            config,
            sealed,
            active,
            next_seq,
            synced_upto: next_seq,
            failed: None,
            scratch: Vec::new(),
            stats: WalStats::default(),
        };
        Ok((wal, report))
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The configuration.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// Whether a fatal error has failed the log.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// All segments, oldest first (the last is the active one).
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let mut all: Vec<SegmentInfo> = self.sealed.iter().cloned().collect();
        if let Some(a) = &self.active {
            all.push(a.info.clone());
        }
        all
    }

    /// Total bytes in all segments.
    pub fn total_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.bytes).sum::<u64>()
            + self.active.as_ref().map_or(0, |a| a.info.bytes)
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.failed {
            Some(reason) => Err(WalError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, err: WalError) -> WalError {
        if self.failed.is_none() {
            self.failed = Some(err.to_string());
        }
        err
    }

    /// Validates a batch without writing: sizes and counts.
    pub fn check_batch(&self, batch: &[PendingRecord]) -> Result<(), WalError> {
        if batch.is_empty() {
            return Err(WalError::InvalidBatch(
                "a batch needs at least one record".into(),
            ));
        }
        if batch.len() > self.config.max_batch_records {
            return Err(WalError::InvalidBatch(format!(
                "{} records exceed max_batch_records {}",
                batch.len(),
                self.config.max_batch_records
            )));
        }
        for r in batch {
            if r.payload_len() > u64::from(self.config.max_record_bytes) {
                return Err(WalError::RecordTooLarge {
                    len: r.payload_len(),
                    max: self.config.max_record_bytes,
                });
            }
        }
        Ok(())
    }

    /// Appends a batch with one vectored write and one `fdatasync`.
    ///
    /// Returns only after the sync succeeded. Any I/O error fails the log
    /// permanently. Size errors reject the batch without failing the log.
    pub fn append_batch(
        &mut self,
        batch: &[PendingRecord],
    ) -> Result<Vec<AppendedRecord>, WalError> {
        let written = self.write_batch(batch)?;
        self.sync()?;
        Ok(written.records)
    }

    /// Writes a batch with one vectored write, without syncing it.
    ///
    /// The records are NOT durable until a sync that starts after this call
    /// returns Ok: either [`Wal::sync`], or [`Wal::active_syncer`] from
    /// another thread followed by [`Wal::mark_synced`]. This is what lets a
    /// writer overlap writing batch N+1 with syncing batch N.
    pub fn write_batch(&mut self, batch: &[PendingRecord]) -> Result<WrittenBatch, WalError> {
        self.check_usable()?;
        self.check_batch(batch)?;
        let batch_bytes: u64 = batch
            .iter()
            .map(|r| RECORD_HEADER_LEN as u64 + r.payload_len())
            .sum();
        let needs_new = match &self.active {
            None => true,
            Some(a) => {
                a.info.bytes > SEGMENT_HEADER_LEN as u64
                    && a.info.bytes + batch_bytes > self.config.segment_bytes
            }
        };
        if needs_new {
            self.rotate().map_err(|e| self.fail(e))?;
        }
        let synced_upto = self.synced_upto;
        let Some(active) = self.active.as_mut() else {
            return Err(self.fail(WalError::Failed {
                reason: "no active segment after rotation".into(),
            }));
        };

        // Encode every header (and small head) into one scratch buffer, then
        // point the iovecs at it and at the bodies: bodies are never copied.
        self.scratch.clear();
        let mut spans = Vec::with_capacity(batch.len());
        let mut out = Vec::with_capacity(batch.len());
        let mut offset = active.info.bytes;
        for (i, r) in batch.iter().enumerate() {
            let header = RecordHeader {
                len: r.payload_len() as u32,
                seq: self.next_seq + i as u64,
                synced_upto,
                kind: r.kind,
            };
            let start = self.scratch.len();
            self.scratch
                .extend_from_slice(&header.encode(&[&r.head, &r.body]));
            self.scratch.extend_from_slice(&r.head);
            spans.push(start..self.scratch.len());
            out.push(AppendedRecord {
                seq: header.seq,
                location: RecordLocation {
                    segment: active.info.first_seq,
                    offset: offset + RECORD_HEADER_LEN as u64,
                    len: header.len,
                },
            });
            offset += RECORD_HEADER_LEN as u64 + r.payload_len();
        }
        let mut parts: Vec<&[u8]> = Vec::with_capacity(batch.len() * 2);
        for (span, r) in spans.into_iter().zip(batch) {
            parts.push(&self.scratch[span]);
            if !r.body.is_empty() {
                parts.push(&r.body);
            }
        }
        if let Err(e) = active.file.append(&parts) {
            let name = active.info.name.clone();
            return Err(self.fail(WalError::io("write", name, e)));
        }
        active.info.bytes = offset;
        active.info.records += batch.len() as u64;
        self.next_seq += batch.len() as u64;
        self.stats.batches += 1;
        self.stats.records += batch.len() as u64;
        self.stats.bytes += batch_bytes;
        Ok(WrittenBatch {
            records: out,
            end_seq: self.next_seq,
        })
    }

    /// Syncs the active segment: everything written so far becomes durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if let Some(active) = self.active.as_mut() {
            if let Err(e) = active.file.sync_data() {
                let name = active.info.name.clone();
                return Err(self.fail(WalError::io("fdatasync", name, e)));
            }
        }
        self.synced_upto = self.next_seq;
        Ok(())
    }

    /// A handle that syncs the active segment from another thread.
    pub fn active_syncer(&self) -> Option<Arc<<S::File as SegmentFile>::Syncer>> {
        self.active.as_ref().map(|a| Arc::clone(&a.syncer))
    }

    /// Records that a sync through [`Wal::active_syncer`] made everything
    /// below `upto` durable.
    pub fn mark_synced(&mut self, upto: u64) {
        self.synced_upto = self.synced_upto.max(upto.min(self.next_seq));
    }

    /// Every record below this sequence number is known durable.
    pub fn synced_upto(&self) -> u64 {
        self.synced_upto
    }

    /// Fails the log because of an error seen outside it (a sync on another
    /// thread). Every later call returns [`WalError::Failed`].
    pub fn fail_external(&mut self, reason: String) {
        if self.failed.is_none() {
            self.failed = Some(reason);
        }
    }

    fn rotate(&mut self) -> Result<(), WalError> {
        // Seal the old segment only once all of it is durable: recovery
        // treats any damage in a sealed segment as corruption.
        if let Some(old) = self.active.as_mut() {
            if self.synced_upto < self.next_seq {
                old.file
                    .sync_data()
                    .map_err(|e| WalError::io("fdatasync", &old.info.name, e))?;
                self.synced_upto = self.next_seq;
            }
        }
        let name = segment_name(self.next_seq);
        let mut file = self
            .storage
            .create(&name)
            .map_err(|e| WalError::io("create", &name, e))?;
        let header = SegmentHeader {
            first_seq: self.next_seq,
        }
        .encode();
        file.append(&[&header])
            .map_err(|e| WalError::io("write", &name, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("fdatasync", &name, e))?;
        self.storage
            .sync_dir()
            .map_err(|e| WalError::io("sync directory", "data directory", e))?;
        let info = SegmentInfo {
            first_seq: self.next_seq,
            name,
            bytes: SEGMENT_HEADER_LEN as u64,
            records: 0,
        };
        let syncer = Arc::new(
            file.syncer()
                .map_err(|e| WalError::io("open", &info.name, e))?,
        );
        if let Some(old) = self.active.replace(Active { info, file, syncer }) {
            self.sealed.push_back(old.info);
        }
        self.stats.segments_created += 1;
        Ok(())
    }

    /// Seals the active segment so that the next append opens a new one.
    /// Compaction uses this to make every existing record reclaimable.
    pub fn seal_active(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        match &self.active {
            Some(a) if a.info.records > 0 => self.rotate().map_err(|e| self.fail(e)),
            _ => Ok(()),
        }
    }

    /// The oldest sealed segment, if any.
    pub fn oldest_sealed(&self) -> Option<&SegmentInfo> {
        self.sealed.front()
    }

    /// Removes the oldest sealed segment and syncs the directory. The caller
    /// must have made sure nothing live refers to it.
    pub fn remove_oldest_sealed(&mut self) -> Result<Option<SegmentInfo>, WalError> {
        self.check_usable()?;
        let Some(info) = self.sealed.pop_front() else {
            return Ok(None);
        };
        if let Err(e) = self.storage.remove(&info.name) {
            return Err(self.fail(WalError::io("remove", info.name, e)));
        }
        if let Err(e) = self.storage.sync_dir() {
            return Err(self.fail(WalError::io("sync directory", "data directory", e)));
        }
        self.stats.segments_removed += 1;
        Ok(Some(info))
    }

    /// Reads a payload back from disk.
    pub fn read(&mut self, loc: &RecordLocation) -> Result<Bytes, WalError> {
        let name = segment_name(loc.segment);
        let file = self
            .storage
            .open(&name)
            .map_err(|e| WalError::io("open", &name, e))?;
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(loc.offset, &mut buf)
            .map_err(|e| WalError::io("read", &name, e))?;
        Ok(Bytes::from(buf))
    }
}
