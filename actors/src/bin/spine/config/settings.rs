//! The table of settings: each one's file key, environment variable and
//! flag, and how a raw (environment or flag) value is parsed into the model.
//!
//! Invariant: this table is the single list of settings. Parsing here only
//! checks the *type* (a number, a path, a format name); ranges and
//! cross-setting rules are checked once, on the merged result, in
//! `validate`, so a value is judged the same wherever it came from.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{LogFormat, NodeConfig};

/// One configurable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// `storage.data_dir`.
    DataDir,
    /// `storage.segment_bytes`.
    SegmentBytes,
    /// `storage.max_record_bytes`.
    MaxRecordBytes,
    /// `storage.max_batch_records`.
    MaxBatchRecords,
    /// `storage.max_batch_bytes`.
    MaxBatchBytes,
    /// `storage.max_in_flight`.
    MaxInFlight,
    /// `storage.inbox_expiry` (seconds).
    InboxExpiry,
    /// `storage.purge_after` (seconds).
    PurgeAfter,
    /// `directory.mailboxes`.
    Mailboxes,
    /// `directory.workflows`.
    Workflows,
    /// `directory.toml`.
    DirectoryToml,
    /// `directory.hash_iterations`.
    HashIterations,
    /// `log.format`.
    LogFormat,
    /// `log.level`.
    LogLevel,
}

impl Setting {
    /// Every setting, in file order.
    pub const ALL: [Setting; 14] = [
        Setting::DataDir,
        Setting::SegmentBytes,
        Setting::MaxRecordBytes,
        Setting::MaxBatchRecords,
        Setting::MaxBatchBytes,
        Setting::MaxInFlight,
        Setting::InboxExpiry,
        Setting::PurgeAfter,
        Setting::Mailboxes,
        Setting::Workflows,
        Setting::DirectoryToml,
        Setting::HashIterations,
        Setting::LogFormat,
        Setting::LogLevel,
    ];

    /// The dotted file key, `section.field`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::DataDir => "storage.data_dir",
            Setting::SegmentBytes => "storage.segment_bytes",
            Setting::MaxRecordBytes => "storage.max_record_bytes",
            Setting::MaxBatchRecords => "storage.max_batch_records",
            Setting::MaxBatchBytes => "storage.max_batch_bytes",
            Setting::MaxInFlight => "storage.max_in_flight",
            Setting::InboxExpiry => "storage.inbox_expiry",
            Setting::PurgeAfter => "storage.purge_after",
            Setting::Mailboxes => "directory.mailboxes",
            Setting::Workflows => "directory.workflows",
            Setting::DirectoryToml => "directory.toml",
            Setting::HashIterations => "directory.hash_iterations",
            Setting::LogFormat => "log.format",
            Setting::LogLevel => "log.level",
        }
    }

    /// The file section and field name.
    pub fn section_and_field(self) -> (&'static str, &'static str) {
        self.key().split_once('.').unwrap_or(("", self.key()))
    }

    /// The environment variable.
    pub fn env(self) -> &'static str {
        match self {
            Setting::DataDir => "SPINE_DATA_DIR",
            Setting::SegmentBytes => "SPINE_SEGMENT_BYTES",
            Setting::MaxRecordBytes => "SPINE_MAX_RECORD_BYTES",
            Setting::MaxBatchRecords => "SPINE_MAX_BATCH_RECORDS",
            Setting::MaxBatchBytes => "SPINE_MAX_BATCH_BYTES",
            Setting::MaxInFlight => "SPINE_MAX_IN_FLIGHT",
            Setting::InboxExpiry => "SPINE_INBOX_EXPIRY_SECS",
            Setting::PurgeAfter => "SPINE_PURGE_AFTER_SECS",
            Setting::Mailboxes => "SPINE_MAILBOXES",
            Setting::Workflows => "SPINE_WORKFLOWS",
            Setting::DirectoryToml => "SPINE_DIRECTORY_TOML",
            Setting::HashIterations => "SPINE_HASH_ITERATIONS",
            Setting::LogFormat => "SPINE_LOG_FORMAT",
            Setting::LogLevel => "SPINE_LOG_LEVEL",
        }
    }

    /// The command-line flag, with its dashes.
    pub fn flag(self) -> &'static str {
        match self {
            Setting::DataDir => "--data-dir",
            Setting::SegmentBytes => "--segment-bytes",
            Setting::MaxRecordBytes => "--max-record-bytes",
            Setting::MaxBatchRecords => "--max-batch-records",
            Setting::MaxBatchBytes => "--max-batch-bytes",
            Setting::MaxInFlight => "--max-in-flight",
            Setting::InboxExpiry => "--inbox-expiry-secs",
            Setting::PurgeAfter => "--purge-after-secs",
            Setting::Mailboxes => "--mailboxes",
            Setting::Workflows => "--workflows",
            Setting::DirectoryToml => "--directory",
            Setting::HashIterations => "--hash-iterations",
            Setting::LogFormat => "--log-format",
            Setting::LogLevel => "--log-level",
        }
    }

    /// Parses `raw` and stores it. On failure returns what was expected.
    pub fn apply(self, config: &mut NodeConfig, raw: &OsStr) -> Result<(), String> {
        let storage = &mut config.storage;
        let directory = &mut config.directory;
        match self {
            Setting::DataDir => storage.data_dir = PathBuf::from(raw),
            Setting::SegmentBytes => storage.segment_bytes = number(raw, "a number of bytes")?,
            Setting::MaxRecordBytes => storage.max_record_bytes = number(raw, "a number of bytes")?,
            Setting::MaxBatchRecords => {
                storage.max_batch_records = number(raw, "a number of records")?
            }
            Setting::MaxBatchBytes => storage.max_batch_bytes = number(raw, "a number of bytes")?,
            Setting::MaxInFlight => storage.max_in_flight = number(raw, "a number of records")?,
            Setting::InboxExpiry => {
                storage.inbox_expiry = Duration::from_secs(number(raw, "a number of seconds")?)
            }
            Setting::PurgeAfter => {
                storage.purge_after = Duration::from_secs(number(raw, "a number of seconds")?)
            }
            Setting::Mailboxes => directory.mailboxes = Some(PathBuf::from(raw)),
            Setting::Workflows => directory.workflows = Some(PathBuf::from(raw)),
            Setting::DirectoryToml => directory.toml = Some(PathBuf::from(raw)),
            Setting::HashIterations => {
                directory.hash_iterations = number(raw, "a number of iterations")?
            }
            Setting::LogFormat => config.log.format = log_format(raw)?,
            Setting::LogLevel => config.log.level = text(raw)?.to_string(),
        }
        Ok(())
    }
}

fn text(raw: &OsStr) -> Result<&str, String> {
    raw.to_str()
        .ok_or_else(|| "UTF-8 text (the value contains invalid UTF-8)".to_string())
}

/// A non-negative whole number that fits `T`.
fn number<T: TryFrom<u64>>(raw: &OsStr, what: &str) -> Result<T, String> {
    let max = max_of::<T>();
    let expected = || format!("{what}: a whole number from 0 to {max}, digits only");
    let s = text(raw).map_err(|_| expected())?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let n: u64 = s.parse().map_err(|_| expected())?;
    T::try_from(n).map_err(|_| expected())
}

/// The largest `u64` that converts into `T`.
fn max_of<T: TryFrom<u64>>() -> u64 {
    // The candidates are the maxima of u64, usize and u32, largest first.
    [u64::MAX, usize::MAX as u64, u64::from(u32::MAX)]
        .into_iter()
        .find(|&m| T::try_from(m).is_ok())
        .unwrap_or(0)
}

fn log_format(raw: &OsStr) -> Result<LogFormat, String> {
    match raw.to_str() {
        Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        _ => Err("a log format: \"text\" or \"json\"".to_string()),
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The config file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut keys = BTreeSet::new();
        let mut envs = BTreeSet::new();
        let mut flags = BTreeSet::new();
        for s in Setting::ALL {
            assert!(keys.insert(s.key()), "{s:?}");
            assert!(envs.insert(s.env()), "{s:?}");
            assert!(flags.insert(s.flag()), "{s:?}");
            assert!(s.env().starts_with("SPINE_"));
            assert!(s.flag().starts_with("--"));
            let (section, field) = s.section_and_field();
            assert!(["storage", "directory", "log"].contains(&section));
            assert!(!field.is_empty());
        }
    }

    #[test]
    fn numbers_are_strict_and_say_what_they_want() {
        let mut c = NodeConfig::default();
        Setting::SegmentBytes
            .apply(&mut c, OsStr::new("8192"))
            .unwrap();
        assert_eq!(c.storage.segment_bytes, 8192);
        for bad in ["", "-1", "+5", " 5", "5 ", "1e6", "12MiB", "0x10"] {
            let e = Setting::SegmentBytes
                .apply(&mut c, OsStr::new(bad))
                .unwrap_err();
            assert!(e.contains("whole number"), "{bad:?}: {e}");
        }
        let e = Setting::MaxRecordBytes
            .apply(&mut c, OsStr::new("4294967296"))
            .unwrap_err();
        assert!(e.contains("0 to 4294967295"), "{e}");
        let e = Setting::SegmentBytes
            .apply(&mut c, OsStr::new("99999999999999999999999"))
            .unwrap_err();
        assert!(e.contains("18446744073709551615"), "{e}");
    }

    #[test]
    fn durations_are_seconds() {
        let mut c = NodeConfig::default();
        Setting::InboxExpiry
            .apply(&mut c, OsStr::new("60"))
            .unwrap();
        assert_eq!(c.storage.inbox_expiry, Duration::from_secs(60));
    }

    #[test]
    fn log_format_names() {
        let mut c = NodeConfig::default();
        Setting::LogFormat
            .apply(&mut c, OsStr::new("json"))
            .unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let e = Setting::LogFormat
            .apply(&mut c, OsStr::new("JSON"))
            .unwrap_err();
        assert!(e.contains("\"text\" or \"json\""));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_an_error_for_text_but_fine_for_paths() {
        use std::os::unix::ffi::OsStrExt;
        let raw = OsStr::from_bytes(b"/tmp/\xff");
        let mut c = NodeConfig::default();
        Setting::DataDir.apply(&mut c, raw).unwrap();
        assert_eq!(c.storage.data_dir, PathBuf::from(raw));
        assert!(Setting::LogLevel.apply(&mut c, raw).is_err());
        assert!(Setting::SegmentBytes.apply(&mut c, raw).is_err());
    }
}
