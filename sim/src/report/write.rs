//! Writing the report's files into an output directory.
//!
//! Invariants and why:
//! - The directory is created if missing (with its parents). Every failure
//!   is a [`ReportError`] naming the path and the OS's reason, with a
//!   stable code; nothing here panics, whatever the directory.
//! - Each file is written whole to a temporary name in the same directory
//!   and then renamed over the final name, so a reader (CI, a person
//!   refreshing a browser) sees the previous file or the new one, never
//!   half of one. A failed write removes its temporary file.
//! - `report.json` is written first and the charts last: if the disk fills
//!   up, the machine-readable verdict is what survives.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use spine_core::ErrorCode;
use thiserror::Error;

use super::json::Report;
use super::markdown;
use super::outcome::Outcome;
use super::recorder::Recorder;
use super::svg;

/// The machine-readable report.
pub const REPORT_JSON: &str = "report.json";
/// The readable report.
pub const REPORT_MD: &str = "report.md";
/// Throughput chart.
pub const THROUGHPUT_SVG: &str = "throughput.svg";
/// Latency chart.
pub const LATENCY_SVG: &str = "latency.svg";
/// Queue depth chart.
pub const QUEUE_DEPTH_SVG: &str = "queue_depth.svg";

/// Why the report could not be written.
#[derive(Debug, Error)]
pub enum ReportError {
    /// The output directory could not be created.
    #[error(
        "cannot create the report directory {}: {source}; choose a directory you can \
         write to with --out DIR",
        dir.display()
    )]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
    /// A report file could not be written.
    #[error(
        "cannot write the report file {}: {source}; check that the directory is writable \
         and the disk has space",
        path.display()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
    /// The report could not be encoded as JSON.
    #[error("cannot encode report.json: {source}")]
    Encode {
        /// The encoder's reason.
        source: serde_json::Error,
    },
}

impl ErrorCode for ReportError {
    fn code(&self) -> &'static str {
        match self {
            ReportError::CreateDir { .. } => "SIM_REPORT_CREATE_DIR",
            ReportError::Write { .. } => "SIM_REPORT_WRITE",
            ReportError::Encode { .. } => "SIM_REPORT_ENCODE",
        }
    }
}

/// The files written, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// The output directory.
    pub dir: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// The SVG charts.
    pub charts: Vec<PathBuf>,
}

/// Writes `contents` to `dir/name` via a temporary file and a rename.
fn write_file(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, ReportError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = fs::write(&tmp, contents).and_then(|()| fs::rename(&tmp, &path));
    match result {
        Ok(()) => Ok(path),
        Err(source) => {
            let _ = fs::remove_file(&tmp);
            Err(ReportError::Write { path, source })
        }
    }
}

/// Writes `report.json`, `report.md` and the three charts into `dir`,
/// creating it if needed.
pub fn write_report(dir: &Path, report: &Report) -> Result<ReportFiles, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let json = report
        .to_json()
        .map_err(|source| ReportError::Encode { source })?;
    let json = write_file(dir, REPORT_JSON, &(json + "\n"))?;
    let markdown = write_file(dir, REPORT_MD, &markdown::render(report))?;
    let charts = vec![
        write_file(dir, THROUGHPUT_SVG, &svg::throughput_svg(report))?,
        write_file(dir, LATENCY_SVG, &svg::latency_svg(report))?,
        write_file(dir, QUEUE_DEPTH_SVG, &svg::queue_depth_svg(report))?,
    ];
    Ok(ReportFiles {
        dir: dir.to_path_buf(),
        json,
        markdown,
        charts,
    })
}

/// Builds the report from `outcome` and `recorder` and writes it into
/// `dir`; returns the report too (e.g. for the exit status or a summary).
pub fn write_outcome(
    dir: &Path,
    outcome: &Outcome,
    recorder: &Recorder,
) -> Result<(Report, ReportFiles), ReportError> {
    let report = Report::build(outcome, recorder);
    let files = write_report(dir, &report)?;
    Ok((report, files))
}
