//! `spine wal inspect DIR`: read-only verification of a data directory.
//!
//! Invariants:
//! - Nothing is modified: the directory is opened through
//!   `FileStorage::open_read_only` (every mutating call fails) and no lock
//!   is taken.
//! - The verdict, the exit status and the output agree: exit 0 only when
//!   every segment verified, 4 when the only problem is a torn tail (what
//!   `serve` would truncate), 2 when anything is corrupt (what `serve` would
//!   refuse). Errors before a verdict exit 1 (no such directory) or 3 (I/O).

mod json;
mod table;

#[cfg(test)]
mod tests;

use std::path::Path;

use spine_actors::wal::FileStorage;
use spine_core::message::event;
use spine_core::wal::{inspect, SegmentReport};

use crate::cli::InspectArgs;
use crate::exit::{write_stdout, Exit, Failure};

/// The overall finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every segment verified.
    Ok,
    /// Only a torn tail, which recovery would truncate.
    TornTail,
    /// Corruption, which recovery would refuse.
    Corrupt,
}

impl Verdict {
    /// The verdict over all segments.
    pub fn of(reports: &[SegmentReport]) -> Verdict {
        let mut verdict = Verdict::Ok;
        for r in reports.iter().filter(|r| r.problem.is_some()) {
            if !r.torn_tail {
                return Verdict::Corrupt;
            }
            verdict = Verdict::TornTail;
        }
        verdict
    }

    /// The exit status it maps to.
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Ok => Exit::Ok,
            Verdict::TornTail => Exit::TornTail,
            Verdict::Corrupt => Exit::StorageRefused,
        }
    }

    /// Lower-case name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::TornTail => "torn_tail",
            Verdict::Corrupt => "corrupt",
        }
    }
}

/// A segment's problem: offset and the detail without the "torn tail: "
/// prefix the scanner adds.
pub fn problem(report: &SegmentReport) -> Option<(u64, &str)> {
    report.problem.as_ref().map(|(offset, detail)| {
        (
            *offset,
            detail
                .strip_prefix("torn tail: ")
                .unwrap_or(detail.as_str()),
        )
    })
}

/// A readable name for a record kind byte; unknown kinds show their number.
pub fn kind_name(kind: u8) -> String {
    match event::kind_name(kind) {
        "unknown" => format!("kind-{kind}"),
        name => name.to_string(),
    }
}

/// Runs the inspection and renders it; returns the output and verdict.
pub fn inspect_dir(
    dir: &Path,
    max_record_bytes: u32,
    as_json: bool,
) -> Result<(String, Verdict), Failure> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Failure::plain(
                Exit::Usage,
                "INSPECT_NOT_A_DIRECTORY",
                format!("{} is not a directory; give a node's data directory", dir.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::plain(
                Exit::Usage,
                "INSPECT_DIR_NOT_FOUND",
                format!(
                    "data directory {} does not exist; give the directory a node was run with (its --data-dir)",
                    dir.display()
                ),
            ))
        }
        Err(e) => {
            return Err(Failure::plain(
                Exit::Usage,
                "INSPECT_DIR_UNREADABLE",
                format!("cannot open {}: {e}; check the path and its permissions", dir.display()),
            ))
        }
    }
    let mut storage = FileStorage::open_read_only(dir).map_err(|e| {
        Failure::plain(
            Exit::Usage,
            "INSPECT_DIR_UNREADABLE",
            format!("cannot open {}: {e}", dir.display()),
        )
    })?;
    let reports =
        inspect(&mut storage, max_record_bytes).map_err(|e| Failure::new(Exit::Runtime, &e))?;
    let verdict = Verdict::of(&reports);
    let output = if as_json {
        json::render(dir, &reports, verdict)
    } else {
        table::render(dir, &reports, verdict)
    };
    Ok((output, verdict))
}

/// Runs `spine wal inspect`.
pub fn run(args: &InspectArgs) -> Result<Exit, Failure> {
    let (output, verdict) = inspect_dir(&args.dir, args.max_record_bytes, args.json)?;
    write_stdout(&output)?;
    Ok(verdict.exit())
}
