//! [`EventLog`]: what happened in a run, in order, as canonical text lines
//! folded into a SHA-256 hash (`event_log_hash` in report.json).
//!
//! Invariants and why:
//! - Only deterministic facts are logged: virtual times, scenario seq
//!   numbers, mailbox ids, message ids (issued from the seeded RNG and the
//!   virtual clock), outcomes and stable error codes. Wall-clock times,
//!   latencies and batch sizes never enter the hash, so the same scenario
//!   and seed give the same hash on any machine, however loaded.
//! - Lines are `<virtual µs> <kind> <details>\n`; the hash covers every
//!   byte of every line, in order.
//! - The last [`TAIL`] lines are kept so a violated invariant can show the
//!   events that led to it; memory stays bounded however long the run.

use std::collections::VecDeque;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use spine_core::time::Timestamp;

/// Lines kept for diagnostics.
pub const TAIL: usize = 64;

/// The run's event log.
#[derive(Debug, Default)]
pub struct EventLog {
    hasher: Sha256,
    lines: u64,
    tail: VecDeque<String>,
    line: String,
    copy: Option<std::io::BufWriter<std::fs::File>>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// A log that also writes every line to `path` (for diffing two runs).
    pub fn to_file(path: &std::path::Path) -> std::io::Result<EventLog> {
        Ok(EventLog {
            copy: Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
            ..EventLog::default()
        })
    }

    /// Appends one event.
    pub fn record(&mut self, at: Timestamp, kind: &str, details: std::fmt::Arguments<'_>) {
        self.line.clear();
        let _ = writeln!(self.line, "{} {kind} {details}", at.as_micros());
        self.hasher.update(self.line.as_bytes());
        if let Some(copy) = &mut self.copy {
            use std::io::Write as _;
            if copy.write_all(self.line.as_bytes()).is_err() {
                self.copy = None;
            }
        }
        self.lines += 1;
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(self.line.trim_end().to_string());
    }

    /// Events recorded.
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The most recent lines, oldest first.
    pub fn tail(&self) -> impl Iterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }

    /// The last line recorded.
    pub fn last(&self) -> Option<&str> {
        self.tail.back().map(String::as_str)
    }

    /// The hash so far (hex).
    pub fn hash(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// Records a line: `log_event!(log, at, "kind", "fmt", args...)`.
#[macro_export]
macro_rules! log_event {
    ($log:expr, $at:expr, $kind:expr, $($arg:tt)*) => {
        $log.record($at, $kind, format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_line_in_order() {
        let t = Timestamp::from_micros(5);
        let mut a = EventLog::new();
        log_event!(a, t, "send", "{} {}", 1, 2);
        log_event!(a, t, "ack", "x");
        let mut b = EventLog::new();
        log_event!(b, t, "send", "{} {}", 1, 2);
        log_event!(b, t, "ack", "x");
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.len(), 2);
        let mut c = EventLog::new();
        log_event!(c, t, "ack", "x");
        log_event!(c, t, "send", "{} {}", 1, 2);
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.last(), Some("5 ack x"));
    }

    #[test]
    fn the_tail_is_bounded() {
        let mut log = EventLog::new();
        for i in 0..1000 {
            log_event!(log, Timestamp::from_micros(i), "e", "{i}");
        }
        assert_eq!(log.tail().count(), TAIL);
        assert_eq!(log.tail().next(), Some("936 e 936"));
    }
}
