//! The `--json` inspection report: one object, one line.
//!
//! Shape (stable; fields are only ever added):
//! `{dir, segments: [{name, first_seq, bytes, records, kinds: [{kind, name,
//! records}], status: "ok"|"torn_tail"|"corrupt", problem: {offset, detail}
//! | null}], total_segments, total_records, total_bytes, ok, verdict,
//! first_bad: {file, offset, detail} | null}`.

use std::path::Path;

use serde_json::{json, Value};
use spine_core::wal::SegmentReport;

use super::{kind_name, problem, Verdict};

fn segment(r: &SegmentReport) -> Value {
    let status = match (&r.problem, r.torn_tail) {
        (None, _) => "ok",
        (Some(_), true) => "torn_tail",
        (Some(_), false) => "corrupt",
    };
    let kinds: Vec<Value> = r
        .kinds
        .iter()
        .map(|(k, n)| json!({"kind": k, "name": kind_name(*k), "records": n}))
        .collect();
    json!({
        "name": r.name,
        "first_seq": r.first_seq,
        "bytes": r.bytes,
        "records": r.records,
        "kinds": kinds,
        "status": status,
        "problem": problem(r).map(|(offset, detail)| json!({"offset": offset, "detail": detail})),
    })
}

/// Renders the report as one JSON line.
pub fn render(dir: &Path, reports: &[SegmentReport], verdict: Verdict) -> String {
    let first_bad = reports.iter().find_map(|r| {
        problem(r)
            .map(|(offset, detail)| json!({"file": r.name, "offset": offset, "detail": detail}))
    });
    let value = json!({
        "dir": dir.display().to_string(),
        "segments": reports.iter().map(segment).collect::<Vec<_>>(),
        "total_segments": reports.len(),
        "total_records": reports.iter().map(|r| r.records).sum::<u64>(),
        "total_bytes": reports.iter().map(|r| r.bytes).sum::<u64>(),
        "ok": verdict == Verdict::Ok,
        "verdict": verdict.name(),
        "first_bad": first_bad,
    });
    format!("{value}\n")
}
