//! The human-readable inspection table.
//!
//! One row per segment, a total row, then a one-line verdict saying what
//! `spine serve` would do with this directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use spine_core::wal::SegmentReport;

use super::{kind_name, problem, Verdict};

const HEADERS: [&str; 6] = [
    "SEGMENT",
    "FIRST SEQ",
    "BYTES",
    "RECORDS",
    "KINDS",
    "STATUS",
];
/// Columns aligned to the right (numbers).
const RIGHT: [bool; 6] = [false, true, true, true, false, false];

fn kinds_text(kinds: &[(u8, u64)]) -> String {
    if kinds.is_empty() {
        return "-".into();
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{}={n}", kind_name(*k)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn status(report: &SegmentReport) -> String {
    match problem(report) {
        None => "ok".into(),
        Some((offset, detail)) if report.torn_tail => {
            format!("torn tail at offset {offset}: {detail}")
        }
        Some((offset, detail)) => format!("CORRUPT at offset {offset}: {detail}"),
    }
}

fn verdict_line(reports: &[SegmentReport], verdict: Verdict) -> String {
    let first_bad = reports.iter().find(|r| r.problem.is_some());
    match (verdict, first_bad.and_then(|r| problem(r).map(|p| (r, p)))) {
        (Verdict::Ok, _) | (_, None) => "verdict: ok, every segment verified".into(),
        (Verdict::TornTail, Some((r, (offset, _)))) => format!(
            "verdict: torn tail; the next `spine serve` will truncate {} bytes of {} from offset {offset} (an interrupted, never-acknowledged write)",
            r.bytes.saturating_sub(offset),
            r.name
        ),
        (Verdict::Corrupt, Some((r, (offset, _)))) => format!(
            "verdict: CORRUPT; first bad byte in {} at offset {offset}; `spine serve` will refuse to start: restore the segment from a replica or backup",
            r.name
        ),
    }
}

/// Renders the table for `reports` read from `dir`.
pub fn render(dir: &Path, reports: &[SegmentReport], verdict: Verdict) -> String {
    let mut rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.first_seq.to_string(),
                r.bytes.to_string(),
                r.records.to_string(),
                kinds_text(&r.kinds),
                status(r),
            ]
        })
        .collect();
    let mut kinds = BTreeMap::<u8, u64>::new();
    for (k, n) in reports.iter().flat_map(|r| r.kinds.iter()) {
        *kinds.entry(*k).or_default() += n;
    }
    let total_kinds: Vec<(u8, u64)> = kinds.into_iter().collect();
    let segments = reports.len();
    rows.push([
        format!(
            "total ({segments} segment{})",
            if segments == 1 { "" } else { "s" }
        ),
        String::new(),
        reports.iter().map(|r| r.bytes).sum::<u64>().to_string(),
        reports.iter().map(|r| r.records).sum::<u64>().to_string(),
        kinds_text(&total_kinds),
        match verdict {
            Verdict::Ok => "ok".into(),
            Verdict::TornTail => "torn tail".into(),
            Verdict::Corrupt => "CORRUPT".into(),
        },
    ]);
    let header = HEADERS.map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "write-ahead log in {}", dir.display());
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if RIGHT[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "{}", verdict_line(reports, verdict));
    out
}
