//! Messaging patterns and reliability settings, as SDS publishes them per
//! interaction (`nhsMHSRetries`, `nhsMHSRetryInterval`,
//! `nhsMHSPersistDuration`, `nhsMHSDuplicateElimination`,
//! `nhsMHSSyncReplyMode`).
//!
//! Invariants and why:
//! - A synchronous or express interaction is never retried and has no
//!   duplicate elimination: the pattern says the caller, not Spine, decides
//!   what to do after a failure. [`Reliability::new`] refuses settings that
//!   contradict the pattern instead of silently ignoring them.
//! - Every duration is positive and bounded ([`MAX_DURATION`]), so deadline
//!   arithmetic cannot overflow and nothing is remembered forever.
//! - Durations are written as ISO-8601 (`PT1M`, `PT30S`, `PT1H30M`), as SDS
//!   writes them.

use std::time::Duration;

/// Longest retry interval or persist duration accepted (one day).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Most retries accepted.
pub const MAX_RETRIES: u32 = 10;

/// The messaging pattern of an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Request and response on one connection; no retries.
    Synchronous,
    /// No acknowledgement, no duplicate elimination, no retries.
    AsyncExpress,
    /// Duplicate elimination and retries per the settings.
    AsyncReliable,
}

impl Pattern {
    /// Parses the directory spelling: `sync`, `async-express`, `async-reliable`.
    pub fn parse(input: &str) -> Option<Pattern> {
        match input {
            "sync" | "synchronous" => Some(Pattern::Synchronous),
            "async-express" => Some(Pattern::AsyncExpress),
            "async-reliable" => Some(Pattern::AsyncReliable),
            _ => None,
        }
    }

    /// The directory spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Synchronous => "sync",
            Pattern::AsyncExpress => "async-express",
            Pattern::AsyncReliable => "async-reliable",
        }
    }
}

/// How an interaction's requests are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reliability {
    /// The pattern.
    pub pattern: Pattern,
    /// Further attempts after the first (reliable only; else 0).
    pub retries: u32,
    /// Wait for a response before the next attempt (reliable), or the
    /// whole request's timeout (sync and express).
    pub retry_interval: Duration,
    /// How long a message id is remembered for duplicate elimination.
    pub persist_duration: Duration,
    /// Whether repeated message ids are answered from memory rather than
    /// delivered again.
    pub duplicate_elimination: bool,
}

impl Reliability {
    /// Checks the settings against the pattern and bounds.
    pub fn new(
        pattern: Pattern,
        retries: u32,
        retry_interval: Duration,
        persist_duration: Duration,
        duplicate_elimination: bool,
    ) -> Result<Reliability, String> {
        if retry_interval.is_zero() || retry_interval > MAX_DURATION {
            return Err(format!(
                "retry_interval must be positive and at most {}s",
                MAX_DURATION.as_secs()
            ));
        }
        if persist_duration > MAX_DURATION {
            return Err(format!(
                "persist_duration must be at most {}s",
                MAX_DURATION.as_secs()
            ));
        }
        if retries > MAX_RETRIES {
            return Err(format!("retries must be at most {MAX_RETRIES}"));
        }
        if pattern != Pattern::AsyncReliable && (retries > 0 || duplicate_elimination) {
            return Err(format!(
                "a {} interaction has no retries or duplicate elimination; use async-reliable",
                pattern.as_str()
            ));
        }
        if duplicate_elimination && persist_duration.is_zero() {
            return Err("duplicate elimination needs a positive persist_duration".into());
        }
        Ok(Reliability {
            pattern,
            retries,
            retry_interval,
            persist_duration,
            duplicate_elimination,
        })
    }

    /// Total attempts allowed (first plus retries).
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }
}

/// Parses an ISO-8601 duration of days, hours, minutes and whole seconds
/// (`P1D`, `PT1M`, `PT1H30M`, `PT45S`).
pub fn parse_iso_duration(input: &str) -> Option<Duration> {
    let rest = input.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut secs: u64 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let (_, scale) = allowed.by_ref().find(|(u, _)| *u == c)?;
            let value: u64 = number.parse().ok()?;
            secs = secs.checked_add(value.checked_mul(*scale)?)?;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('D', 86_400)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        take(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    any.then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iso_durations_parse_as_sds_writes_them() {
        assert_eq!(parse_iso_duration("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_iso_duration("PT5M"), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_iso_duration("PT1H30M"),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_iso_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_iso_duration("PT0S"), Some(Duration::ZERO));
        for bad in ["", "P", "PT", "1M", "PT1", "PTM", "PT1M1H", "PT1X", "P1H"] {
            assert_eq!(parse_iso_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn settings_that_contradict_the_pattern_are_refused() {
        let s = Duration::from_secs(1);
        assert!(Reliability::new(Pattern::Synchronous, 1, s, s, false).is_err());
        assert!(Reliability::new(Pattern::AsyncExpress, 0, s, s, true).is_err());
        assert!(Reliability::new(Pattern::AsyncReliable, 2, s, s, true).is_ok());
        assert!(Reliability::new(Pattern::AsyncReliable, 2, s, Duration::ZERO, true).is_err());
        assert!(Reliability::new(Pattern::Synchronous, 0, Duration::ZERO, s, false).is_err());
    }

    proptest! {
        #[test]
        fn iso_duration_round_trips(h in 0u64..24, m in 0u64..60, s in 0u64..60) {
            let text = format!("PT{h}H{m}M{s}S");
            prop_assert_eq!(parse_iso_duration(&text), Some(Duration::from_secs(h * 3600 + m * 60 + s)));
        }

        #[test]
        fn iso_duration_never_panics(input in ".{0,24}") {
            let _ = parse_iso_duration(&input);
        }
    }
}
