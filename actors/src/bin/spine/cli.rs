//! The command line: subcommands, flags and the help texts.
//!
//! Setting flags are plain optional values here; parsing them into the
//! configuration (and the environment layer beneath them) happens in
//! `config`, so a bad value gets the same message whether it came from a
//! flag, a variable or the file. The tests check that every setting in
//! `config::Setting::ALL` has its flag here and that the flag's help names
//! its environment variable.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use spine_core::wal::WalConfig;

use crate::config::Setting;

const LONG_ABOUT: &str = "\
Spine: a message router speaking the NHS MESH mailbox protocol.

Exit status:
  0  success: `serve` stopped cleanly on SIGINT or SIGTERM (or printed its
     config); `wal inspect` verified every segment
  1  usage or configuration error: a bad flag, config file, environment
     variable or directory file, or a nonexistent directory to inspect
  2  storage refused: the write-ahead log is corrupt (error code
     WAL_CORRUPT and friends), or the data directory is locked by another
     running node; nothing was modified
  3  runtime failure: e.g. OS randomness unavailable, an I/O error while
     running or inspecting, or a failed shutdown
  4  `wal inspect` only: the log ends in a torn tail, which the next
     `serve` would truncate (an interrupted write that was never
     acknowledged)

Errors are printed to stderr as `spine: error [CODE]: message`, where CODE
is stable and greppable.";

const SERVE_ABOUT: &str = "\
Run a node: load the mailbox directory, open and recover the data
directory, then serve until SIGINT or SIGTERM, when it drains, syncs and
exits 0.

Every setting can come from four places; later ones win:
  built-in default < config file (--config / SPINE_CONFIG)
    < environment variable (SPINE_*; empty counts as unset) < flag

The config file is TOML with sections [storage], [directory] and [log];
unknown keys are errors. `--print-config` shows the effective settings and
where each came from. The directory is either the mesh-sandbox JSONL pair
(--mailboxes and --workflows) or a native TOML file (--directory); a layer
naming one form replaces the other form from lower layers. With neither,
the node runs on the embedded demo directory (development only).";

const INSPECT_ABOUT: &str = "\
Verify a data directory's write-ahead log without modifying it: every
segment's header, every record's checksums and the sequence numbering.
Takes no lock, so it may be run beside a live node (whose newest segment
may then show an in-flight write as a torn tail).

Exit status: 0 all verified, 4 only a torn tail (recovery would truncate
it), 2 corruption (recovery would refuse to start), 1 not a directory,
3 an I/O error while reading.";

/// `spine`.
#[derive(Debug, Parser)]
#[command(
    name = "spine",
    version,
    about = "Spine: a MESH-compatible message router for the NHS",
    long_about = LONG_ABOUT
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node until SIGINT or SIGTERM.
    #[command(long_about = SERVE_ABOUT)]
    Serve(Box<ServeArgs>),
    /// Write-ahead log tools.
    Wal {
        /// The WAL tool to run.
        #[command(subcommand)]
        command: WalCommand,
    },
}

/// `spine wal ...`.
#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Verify a log read-only and report each segment.
    #[command(long_about = INSPECT_ABOUT)]
    Inspect(InspectArgs),
}

/// `spine serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file [env: SPINE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<OsString>,
    /// Print the effective configuration as TOML (with where each value came from) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The settings.
    #[command(flatten)]
    pub settings: SettingFlags,
}

/// One flag per setting; each overrides its environment variable.
#[derive(Debug, Default, Args)]
pub struct SettingFlags {
    /// Data directory holding the log; created if missing [env: SPINE_DATA_DIR] [default: spine-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<OsString>,
    /// Segment size before rotation, 4096..=4294967296 [env: SPINE_SEGMENT_BYTES] [default: 134217728]
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes: Option<OsString>,
    /// Largest record, 1..=1073741824 [env: SPINE_MAX_RECORD_BYTES] [default: 16777216]
    #[arg(long, value_name = "BYTES")]
    pub max_record_bytes: Option<OsString>,
    /// Most records per group commit, 1..=1048576 [env: SPINE_MAX_BATCH_RECORDS] [default: 4096]
    #[arg(long, value_name = "N")]
    pub max_batch_records: Option<OsString>,
    /// Most bytes per group commit, 1..=1073741824 [env: SPINE_MAX_BATCH_BYTES] [default: 8388608]
    #[arg(long, value_name = "BYTES")]
    pub max_batch_bytes: Option<OsString>,
    /// Most appends queued or in flight before appenders wait, 1..=16777216 [env: SPINE_MAX_IN_FLIGHT] [default: 65536]
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<OsString>,
    /// Seconds an accepted message may wait in an inbox before it expires [env: SPINE_INBOX_EXPIRY_SECS] [default: 432000]
    #[arg(long, value_name = "SECS")]
    pub inbox_expiry_secs: Option<OsString>,
    /// Seconds after creation a message is purged; at least the inbox expiry [env: SPINE_PURGE_AFTER_SECS] [default: 2592000]
    #[arg(long, value_name = "SECS")]
    pub purge_after_secs: Option<OsString>,
    /// mesh-sandbox mailboxes.jsonl; needs --workflows [env: SPINE_MAILBOXES]
    #[arg(long, value_name = "FILE")]
    pub mailboxes: Option<OsString>,
    /// mesh-sandbox workflows.jsonl; needs --mailboxes [env: SPINE_WORKFLOWS]
    #[arg(long, value_name = "FILE")]
    pub workflows: Option<OsString>,
    /// Native TOML directory file (instead of --mailboxes/--workflows) [env: SPINE_DIRECTORY_TOML]
    #[arg(long, value_name = "FILE")]
    pub directory: Option<OsString>,
    /// PBKDF2 iterations for plaintext passwords in directory files, 1..=10000000 [env: SPINE_HASH_ITERATIONS] [default: 10000]
    #[arg(long, value_name = "N")]
    pub hash_iterations: Option<OsString>,
    /// Log line format [env: SPINE_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Log filter: a level or directives like "info,spine_actors=debug" [env: SPINE_LOG_LEVEL] [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<OsString>,
}

impl SettingFlags {
    /// The flags given, as (setting, raw value) pairs.
    pub fn given(&self) -> Vec<(Setting, OsString)> {
        let all: [(Setting, Option<OsString>); 14] = [
            (Setting::DataDir, self.data_dir.clone()),
            (Setting::SegmentBytes, self.segment_bytes.clone()),
            (Setting::MaxRecordBytes, self.max_record_bytes.clone()),
            (Setting::MaxBatchRecords, self.max_batch_records.clone()),
            (Setting::MaxBatchBytes, self.max_batch_bytes.clone()),
            (Setting::MaxInFlight, self.max_in_flight.clone()),
            (Setting::InboxExpiry, self.inbox_expiry_secs.clone()),
            (Setting::PurgeAfter, self.purge_after_secs.clone()),
            (Setting::Mailboxes, self.mailboxes.clone()),
            (Setting::Workflows, self.workflows.clone()),
            (Setting::DirectoryToml, self.directory.clone()),
            (Setting::HashIterations, self.hash_iterations.clone()),
            (
                Setting::LogFormat,
                self.log_format.clone().map(OsString::from),
            ),
            (Setting::LogLevel, self.log_level.clone()),
        ];
        all.into_iter()
            .filter_map(|(s, v)| v.map(|v| (s, v)))
            .collect()
    }
}

/// `spine wal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The data directory to inspect.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Largest record accepted as valid; use at least the node's setting (1..=1073741824).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = WalConfig::default().max_record_bytes,
        value_parser = clap::value_parser!(u32).range(1..=(1 << 30)),
    )]
    pub max_record_bytes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_setting_has_a_flag_naming_its_env_var() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        for setting in Setting::ALL {
            let long = setting.flag().trim_start_matches("--");
            let arg = serve
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .unwrap_or_else(|| panic!("no flag {} for {setting:?}", setting.flag()));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                help.contains(&format!("[env: {}]", setting.env())),
                "{}: {help}",
                setting.flag()
            );
        }
    }

    #[test]
    fn given_maps_each_flag_to_its_setting() {
        let cli = Cli::try_parse_from([
            "spine",
            "serve",
            "--data-dir",
            "d",
            "--segment-bytes",
            "1",
            "--max-record-bytes",
            "2",
            "--max-batch-records",
            "3",
            "--max-batch-bytes",
            "4",
            "--max-in-flight",
            "5",
            "--inbox-expiry-secs",
            "6",
            "--purge-after-secs",
            "7",
            "--mailboxes",
            "m",
            "--workflows",
            "w",
            "--directory",
            "t",
            "--hash-iterations",
            "8",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let given = args.settings.given();
        assert_eq!(given.len(), Setting::ALL.len());
        for (setting, raw) in given {
            let expected = match setting {
                Setting::DataDir => "d",
                Setting::SegmentBytes => "1",
                Setting::MaxRecordBytes => "2",
                Setting::MaxBatchRecords => "3",
                Setting::MaxBatchBytes => "4",
                Setting::MaxInFlight => "5",
                Setting::InboxExpiry => "6",
                Setting::PurgeAfter => "7",
                Setting::Mailboxes => "m",
                Setting::Workflows => "w",
                Setting::DirectoryToml => "t",
                Setting::HashIterations => "8",
                Setting::LogFormat => "json",
                Setting::LogLevel => "debug",
            };
            assert_eq!(raw, expected, "{setting:?}");
        }
    }

    #[test]
    fn inspect_validates_max_record_bytes() {
        assert!(Cli::try_parse_from(["spine", "wal", "inspect", "d"]).is_ok());
        assert!(
            Cli::try_parse_from(["spine", "wal", "inspect", "d", "--max-record-bytes", "0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["spine", "wal", "inspect"]).is_err());
    }

    #[test]
    fn log_format_is_restricted() {
        assert!(Cli::try_parse_from(["spine", "serve", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "0  success",
            "1  usage",
            "2  storage refused",
            "3  runtime",
            "4  ",
        ] {
            assert!(help.contains(needle), "{needle}: {help}");
        }
    }
}
