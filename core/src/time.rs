//! Time as data: [`Timestamp`], civil-calendar conversion, MESH time formats,
//! and the injected [`Clock`].
//!
//! Invariants and why:
//! - A [`Timestamp`] is a count of microseconds since 1970-01-01T00:00:00Z
//!   (UTC, no leap seconds). It is a plain `u64`, so it orders, hashes and
//!   archives exactly like the number, and the write-ahead log can store it
//!   as eight bytes.
//! - The *calendar* domain is 1970-01-01 ..= 9999-12-31 ([`Timestamp::MAX`]),
//!   because every MESH text format has a four-digit year. Arithmetic
//!   ([`Timestamp::checked_add`], [`Timestamp::saturating_add`]) never leaves
//!   that domain, and the parsers and [`Timestamp::from_civil`] only produce
//!   values inside it. [`Timestamp::from_micros`] accepts any `u64` (it is
//!   how stored values are read back); [`Timestamp::to_civil`] is total and
//!   reports years past 9999 as they are, so formatting such a value prints
//!   a longer year rather than a wrong one.
//! - Calendar maths is done by hand (Howard Hinnant's `days_from_civil` /
//!   `civil_from_days`), in unsigned integers, with no table lookups that
//!   could be indexed out of bounds, so nothing here can panic.
//! - Core never reads the wall clock: time enters through [`Clock`], so the
//!   simulator can drive the same code on virtual time. [`ManualClock`] is
//!   the deterministic implementation; the production clock lives outside
//!   core.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ErrorCode;

const MICROS_PER_SECOND: u64 = 1_000_000;
const SECONDS_PER_DAY: u64 = 86_400;
const MICROS_PER_DAY: u64 = MICROS_PER_SECOND * SECONDS_PER_DAY;
/// Days from 0000-03-01 (the proleptic era origin used by Hinnant) to 1970-01-01.
const DAYS_0000_03_01_TO_EPOCH: u64 = 719_468;
const DAYS_PER_ERA: u64 = 146_097;

/// First year of the calendar domain.
pub const MIN_YEAR: u32 = 1970;
/// Last year of the calendar domain (four-digit years only).
pub const MAX_YEAR: u32 = 9999;

/// Description of the 20-digit MESH timestamp format, used in error messages.
const MESH_FORMAT: &str = "YYYYMMDDHHMMSSffffff";
/// Description of the 14-digit MESH status timestamp format.
const SECONDS_FORMAT: &str = "YYYYMMDDHHMMSS";
/// Description of the 12-digit NHSMESH auth token timestamp format.
const TOKEN_FORMAT: &str = "yyyyMMddHHmm";

/// Microseconds since the Unix epoch (1970-01-01T00:00:00Z), UTC.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(transparent)]
#[rkyv(derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash))]
pub struct Timestamp(u64);

/// A broken-down UTC date and time.
///
/// Produced by [`Timestamp::to_civil`] (always valid) and consumed by
/// [`Timestamp::from_civil`] (validated there).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CivilTime {
    /// Year, 1970..=9999 for values accepted by [`Timestamp::from_civil`].
    pub year: u32,
    /// Month of the year, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=28/29/30/31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59 (UTC without leap seconds).
    pub second: u8,
    /// Microsecond within the second, 0..=999_999.
    pub micro: u32,
}

/// Why a time value could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeError {
    /// A calendar field is outside its fixed range.
    #[error("{field} {value} is out of range; use a value from {min} to {max}")]
    FieldOutOfRange {
        /// Which field: "year", "month", "hour", "minute", "second" or "microsecond".
        field: &'static str,
        /// The value given.
        value: u32,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// The day does not exist in the given month (e.g. 30 February, 29 February 2027).
    #[error(
        "day {day} does not exist in {year:04}-{month:02}, which has {days_in_month} days; \
         use a day from 1 to {days_in_month}"
    )]
    DayOutOfRange {
        /// Year of the date.
        year: u32,
        /// Month of the date.
        month: u8,
        /// The day given.
        day: u8,
        /// How many days that month has in that year.
        days_in_month: u8,
    },
    /// A time string has the wrong length.
    #[error(
        "time {input:?} is {len} characters long; expected exactly {expected} digits \
         in the form {format}"
    )]
    FormatLength {
        /// The input (truncated to 64 characters).
        input: String,
        /// Its length in characters.
        len: usize,
        /// The required number of digits.
        expected: usize,
        /// The expected format, e.g. `YYYYMMDDHHMMSSffffff`.
        format: &'static str,
    },
    /// A time string contains something other than an ASCII digit.
    #[error(
        "time {input:?} contains {found:?} at position {position}; use only digits 0-9 \
         in the form {format}"
    )]
    FormatDigit {
        /// The input (truncated to 64 characters).
        input: String,
        /// The offending character.
        found: char,
        /// Its 0-based character position.
        position: usize,
        /// The expected format.
        format: &'static str,
    },
    /// A time string has the right shape but names an impossible date or time.
    #[error("time {input:?} is not a valid UTC date-time: {source}")]
    FormatValue {
        /// The input (truncated to 64 characters).
        input: String,
        /// Which field was wrong.
        source: Box<TimeError>,
    },
    /// A microsecond count lies after 9999-12-31T23:59:59.999999Z.
    #[error(
        "timestamp {micros} microseconds is after 9999-12-31T23:59:59.999999Z; \
         use a time with a four-digit year"
    )]
    OutOfRange {
        /// The rejected microsecond count.
        micros: u64,
    },
}

impl ErrorCode for TimeError {
    fn code(&self) -> &'static str {
        match self {
            TimeError::FieldOutOfRange { .. } => "TIME_FIELD_OUT_OF_RANGE",
            TimeError::DayOutOfRange { .. } => "TIME_DAY_OUT_OF_RANGE",
            TimeError::FormatLength { .. } => "TIME_FORMAT_LENGTH",
            TimeError::FormatDigit { .. } => "TIME_FORMAT_DIGIT",
            TimeError::FormatValue { .. } => "TIME_FORMAT_VALUE",
            TimeError::OutOfRange { .. } => "TIME_OUT_OF_RANGE",
        }
    }
}

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The last representable calendar instant, 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// Wraps a raw microsecond count. Any `u64` is accepted (this is how
    /// stored values come back); see [`Timestamp::try_from_micros`] to insist
    /// on the calendar domain.
    pub const fn from_micros(micros: u64) -> Timestamp {
        Timestamp(micros)
    }

    /// Wraps a microsecond count, refusing values after [`Timestamp::MAX`].
    pub const fn try_from_micros(micros: u64) -> Result<Timestamp, TimeError> {
        if micros > Timestamp::MAX.0 {
            Err(TimeError::OutOfRange { micros })
        } else {
            Ok(Timestamp(micros))
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn as_unix_seconds(self) -> u64 {
        self.0 / MICROS_PER_SECOND
    }

    /// A timestamp at a whole number of seconds since the Unix epoch.
    /// Saturates at `u64::MAX` microseconds for absurdly large inputs.
    pub const fn from_unix_seconds(seconds: u64) -> Timestamp {
        Timestamp(seconds.saturating_mul(MICROS_PER_SECOND))
    }

    /// `self + duration`, or `None` if that would pass [`Timestamp::MAX`].
    /// Sub-microsecond parts of `duration` are dropped.
    pub fn checked_add(self, duration: Duration) -> Option<Timestamp> {
        let add = u64::try_from(duration.as_micros()).ok()?;
        let sum = self.0.checked_add(add)?;
        if sum > Timestamp::MAX.0 {
            None
        } else {
            Some(Timestamp(sum))
        }
    }

    /// `self + duration`, clamped to [`Timestamp::MAX`] (or to `self` if
    /// `self` already lies beyond it).
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        self.checked_add(duration)
            .unwrap_or(Timestamp(self.0.max(Timestamp::MAX.0)))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_sub(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// Breaks the timestamp into UTC calendar fields. Total: years past 9999
    /// are reported as they are.
    pub fn to_civil(self) -> CivilTime {
        let days = self.0 / MICROS_PER_DAY;
        let micros_of_day = self.0 % MICROS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        let seconds_of_day = micros_of_day / MICROS_PER_SECOND;
        // Each narrowing below is of a value already reduced below its bound
        // (< 24, < 60, < 1_000_000), so the conversions are lossless.
        CivilTime {
            year,
            month,
            day,
            hour: (seconds_of_day / 3_600) as u8,
            minute: (seconds_of_day / 60 % 60) as u8,
            second: (seconds_of_day % 60) as u8,
            micro: (micros_of_day % MICROS_PER_SECOND) as u32,
        }
    }

    /// Builds a timestamp from UTC calendar fields, checking every field
    /// (including month lengths and leap years) and the 1970..=9999 year range.
    pub fn from_civil(civil: &CivilTime) -> Result<Timestamp, TimeError> {
        check_field("year", civil.year, MIN_YEAR, MAX_YEAR)?;
        check_field("month", u32::from(civil.month), 1, 12)?;
        let days_in_month = days_in_month(civil.year, civil.month);
        if civil.day < 1 || civil.day > days_in_month {
            return Err(TimeError::DayOutOfRange {
                year: civil.year,
                month: civil.month,
                day: civil.day,
                days_in_month,
            });
        }
        check_field("hour", u32::from(civil.hour), 0, 23)?;
        check_field("minute", u32::from(civil.minute), 0, 59)?;
        check_field("second", u32::from(civil.second), 0, 59)?;
        check_field("microsecond", civil.micro, 0, 999_999)?;

        let days = days_from_civil(civil.year, civil.month, civil.day);
        let seconds = days * SECONDS_PER_DAY
            + u64::from(civil.hour) * 3_600
            + u64::from(civil.minute) * 60
            + u64::from(civil.second);
        Ok(Timestamp(
            seconds * MICROS_PER_SECOND + u64::from(civil.micro),
        ))
    }

    /// `YYYYMMDDHHMMSSffffff`: the 20-digit form used in MESH message ids.
    pub fn format_mesh(self) -> String {
        let c = self.to_civil();
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}{:06}",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.micro
        )
    }

    /// `YYYYMMDDHHMMSS`: the MESH `Mex-StatusTimestamp` form (seconds dropped
    /// below, not rounded).
    pub fn format_seconds(self) -> String {
        let c = self.to_civil();
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-24T00:36:09.123456Z`.
    pub fn to_rfc3339(self) -> String {
        let c = self.to_civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.micro
        )
    }

    /// Parses the 20-digit `YYYYMMDDHHMMSSffffff` form.
    pub fn parse_mesh(input: &str) -> Result<Timestamp, TimeError> {
        let d = fixed_digits(input, 20, MESH_FORMAT)?;
        let civil = CivilTime {
            micro: d.get(14..20).map_or(0, number),
            ..date_time_prefix(&d, true)
        };
        Timestamp::from_civil(&civil).map_err(|e| value_error(input, e))
    }

    /// Parses the 14-digit `YYYYMMDDHHMMSS` form (see [`Timestamp::format_seconds`]).
    pub fn parse_seconds(input: &str) -> Result<Timestamp, TimeError> {
        let d = fixed_digits(input, 14, SECONDS_FORMAT)?;
        Timestamp::from_civil(&date_time_prefix(&d, true)).map_err(|e| value_error(input, e))
    }

    /// Parses the 12-digit `yyyyMMddHHmm` timestamp of an NHSMESH auth token
    /// (seconds and microseconds are zero).
    pub fn parse_mesh_token_time(input: &str) -> Result<Timestamp, TimeError> {
        let d = fixed_digits(input, 12, TOKEN_FORMAT)?;
        Timestamp::from_civil(&date_time_prefix(&d, false)).map_err(|e| value_error(input, e))
    }
}

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 (see [`Timestamp::to_rfc3339`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A source of the current time. Core code asks a `Clock`; it never reads
/// the system clock itself.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to. Deterministic; used by tests and
/// the simulator.
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicU64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            micros: AtomicU64::new(start.as_micros()),
        }
    }

    /// Sets the time (it may go backwards, as real clocks sometimes do).
    pub fn set(&self, to: Timestamp) {
        self.micros.store(to.as_micros(), Ordering::SeqCst);
    }

    /// Moves the time forward by `by`, saturating at [`Timestamp::MAX`].
    pub fn advance(&self, by: Duration) {
        // The closure always returns `Some`, so `fetch_update` cannot fail.
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(Timestamp(m).saturating_add(by).as_micros())
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

/// Whether `year` is a Gregorian leap year.
pub const fn is_leap_year(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Number of days in `month` (1..=12) of `year`; 0 for an invalid month.
pub const fn days_in_month(year: u32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn check_field(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), TimeError> {
    if value < min || value > max {
        Err(TimeError::FieldOutOfRange {
            field,
            value,
            min,
            max,
        })
    } else {
        Ok(())
    }
}

/// Days since 1970-01-01 of a valid date with `year >= 1970` (Hinnant's
/// `days_from_civil`, specialised to non-negative results).
fn days_from_civil(year: u32, month: u8, day: u8) -> u64 {
    let month = u64::from(month);
    // Years start in March so the leap day is the last day of the year.
    let y = u64::from(year) - u64::from(month <= 2);
    let era = y / 400;
    let yoe = y - era * 400; // [0, 399]
    let mp = if month > 2 { month - 3 } else { month + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + u64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * DAYS_PER_ERA + doe - DAYS_0000_03_01_TO_EPOCH
}

/// Calendar date of a day count since 1970-01-01 (Hinnant's
/// `civil_from_days`, specialised to non-negative inputs).
fn civil_from_days(days: u64) -> (u32, u8, u8) {
    let z = days + DAYS_0000_03_01_TO_EPOCH;
    let era = z / DAYS_PER_ERA;
    let doe = z - era * DAYS_PER_ERA; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + u64::from(month <= 2);
    // `days` < 2^64 / 86_400_000_000 keeps `year` far below u32::MAX, and
    // `month`/`day` are bounded above, so these narrowings are lossless.
    (year as u32, month as u8, day as u8)
}

/// Most digits a fixed-width form has (`YYYYMMDDHHMMSSffffff`).
const MAX_DIGITS: usize = 20;

/// The digit values of `input`, which must be exactly `len` (at most
/// [`MAX_DIGITS`]) ASCII digits; positions from `len` on are 0. No
/// allocation: message ids are parsed on every request that names one.
fn fixed_digits(
    input: &str,
    len: usize,
    format: &'static str,
) -> Result<[u8; MAX_DIGITS], TimeError> {
    let mut d = [0u8; MAX_DIGITS];
    let bytes = input.as_bytes();
    if bytes.len() == len && len <= MAX_DIGITS && bytes.iter().all(u8::is_ascii_digit) {
        for (slot, b) in d.iter_mut().zip(bytes) {
            *slot = b - b'0';
        }
        return Ok(d);
    }
    // Not `len` digits: say which character or what length is wrong.
    if let Some((position, found)) = input.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(TimeError::FormatDigit {
            input: bounded(input),
            found,
            position,
            format,
        });
    }
    Err(TimeError::FormatLength {
        input: bounded(input),
        len: input.len(),
        expected: len,
        format,
    })
}

/// Decimal value of a run of digit values (at most 9 digits in practice).
fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u32::from(d))
    })
}

/// Reads `YYYYMMDDHHMM` and, if `with_seconds`, `SS` from the front of
/// `d`, which the caller has checked is long enough.
fn date_time_prefix(d: &[u8], with_seconds: bool) -> CivilTime {
    let field = |from: usize, to: usize| d.get(from..to).map_or(0, number);
    // Two-digit fields are < 100, so the narrowing to u8 is lossless.
    CivilTime {
        year: field(0, 4),
        month: field(4, 6) as u8,
        day: field(6, 8) as u8,
        hour: field(8, 10) as u8,
        minute: field(10, 12) as u8,
        second: if with_seconds { field(12, 14) as u8 } else { 0 },
        micro: 0,
    }
}

fn value_error(input: &str, source: TimeError) -> TimeError {
    TimeError::FormatValue {
        input: bounded(input),
        source: Box::new(source),
    }
}

fn bounded(input: &str) -> String {
    crate::ids::bounded_input(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn civil(
        year: u32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    ) -> CivilTime {
        CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        }
    }

    #[test]
    fn known_vectors() {
        let cases: &[(u64, CivilTime)] = &[
            (0, civil(1970, 1, 1, 0, 0, 0, 0)),
            (951_782_400_000_000, civil(2000, 2, 29, 0, 0, 0, 0)),
            (1_709_251_199_000_001, civil(2024, 2, 29, 23, 59, 59, 1)),
            (
                1_795_480_569_123_456,
                civil(2026, 11, 24, 0, 36, 9, 123_456),
            ),
            (
                Timestamp::MAX.as_micros(),
                civil(9999, 12, 31, 23, 59, 59, 999_999),
            ),
        ];
        for (micros, expected) in cases {
            let ts = Timestamp::from_micros(*micros);
            assert_eq!(ts.to_civil(), *expected, "to_civil({micros})");
            assert_eq!(
                Timestamp::from_civil(expected),
                Ok(ts),
                "from_civil({expected:?})"
            );
        }
    }

    #[test]
    fn formats() {
        let ts = Timestamp::from_micros(1_795_480_569_123_456);
        assert_eq!(ts.format_mesh(), "20261124003609123456");
        assert_eq!(ts.format_seconds(), "20261124003609");
        assert_eq!(ts.to_rfc3339(), "2026-11-24T00:36:09.123456Z");
        assert_eq!(ts.to_string(), "2026-11-24T00:36:09.123456Z");
        assert_eq!(Timestamp::ZERO.format_mesh(), "19700101000000000000");
        assert_eq!(Timestamp::MAX.format_mesh(), "99991231235959999999");
    }

    #[test]
    fn parses() {
        assert_eq!(
            Timestamp::parse_mesh("20261124003609123456"),
            Ok(Timestamp::from_micros(1_795_480_569_123_456))
        );
        assert_eq!(
            Timestamp::parse_seconds("20261124003609"),
            Ok(Timestamp::from_unix_seconds(1_795_480_569))
        );
        assert_eq!(
            Timestamp::parse_mesh_token_time("202611240036"),
            Ok(Timestamp::from_unix_seconds(1_795_480_560))
        );
    }

    #[test]
    fn parse_errors_are_specific() {
        let e = Timestamp::parse_mesh("2026112400360912345").unwrap_err();
        assert_eq!(e.code(), "TIME_FORMAT_LENGTH");
        assert!(e.to_string().contains("19 characters long"), "{e}");

        let e = Timestamp::parse_mesh_token_time("2026-11-24 00").unwrap_err();
        assert_eq!(e.code(), "TIME_FORMAT_DIGIT");
        assert!(e.to_string().contains("'-' at position 4"), "{e}");

        let e = Timestamp::parse_mesh_token_time("202713010000").unwrap_err();
        assert_eq!(e.code(), "TIME_FORMAT_VALUE");
        assert!(e.to_string().contains("month 13 is out of range"), "{e}");

        let e = Timestamp::parse_mesh_token_time("202702290000").unwrap_err();
        assert!(
            e.to_string().contains("day 29 does not exist in 2027-02"),
            "{e}"
        );
        assert!(Timestamp::parse_mesh_token_time("202802290000").is_ok());
        assert!(Timestamp::parse_mesh_token_time("210002290000").is_err());
        assert!(Timestamp::parse_mesh_token_time("200002290000").is_ok());

        let e = Timestamp::parse_mesh("19691231235959999999").unwrap_err();
        assert!(e.to_string().contains("year 1969 is out of range"), "{e}");
        assert!(Timestamp::parse_seconds("20261124246000").is_err());
        assert!(Timestamp::parse_seconds("20261124236000").is_err());
        assert!(Timestamp::parse_seconds("20261124235960").is_err());
        assert!(Timestamp::parse_mesh("").is_err());
        assert!(Timestamp::parse_mesh("２０２６１１２４００３６０９１２３４５６").is_err());
    }

    #[test]
    fn from_civil_rejects_each_bad_field() {
        let ok = civil(2024, 2, 29, 23, 59, 59, 999_999);
        assert!(Timestamp::from_civil(&ok).is_ok());
        let bad = [
            CivilTime { year: 1969, ..ok },
            CivilTime { year: 10_000, ..ok },
            CivilTime { month: 0, ..ok },
            CivilTime { month: 13, ..ok },
            CivilTime { day: 0, ..ok },
            CivilTime { day: 30, ..ok },
            CivilTime { year: 2023, ..ok },
            CivilTime { hour: 24, ..ok },
            CivilTime { minute: 60, ..ok },
            CivilTime { second: 60, ..ok },
            CivilTime {
                micro: 1_000_000,
                ..ok
            },
        ];
        for c in bad {
            assert!(
                Timestamp::from_civil(&c).is_err(),
                "{c:?} should be rejected"
            );
        }
    }

    #[test]
    fn arithmetic_stays_in_calendar_domain() {
        let t = Timestamp::from_micros(10);
        assert_eq!(
            t.checked_add(Duration::from_micros(5)),
            Some(Timestamp::from_micros(15))
        );
        assert_eq!(t.checked_add(Duration::from_nanos(999)), Some(t));
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(t.saturating_add(Duration::MAX), Timestamp::MAX);
        let beyond = Timestamp::from_micros(u64::MAX);
        assert_eq!(beyond.saturating_add(Duration::from_secs(1)), beyond);
        assert_eq!(
            t.saturating_sub(Timestamp::from_micros(4)),
            Duration::from_micros(6)
        );
        assert_eq!(t.saturating_sub(Timestamp::from_micros(40)), Duration::ZERO);
        assert_eq!(Timestamp::from_unix_seconds(u64::MAX).as_micros(), u64::MAX);
        assert_eq!(Timestamp::from_unix_seconds(3).as_unix_seconds(), 3);
        assert!(Timestamp::try_from_micros(Timestamp::MAX.as_micros()).is_ok());
        let e = Timestamp::try_from_micros(Timestamp::MAX.as_micros() + 1).unwrap_err();
        assert_eq!(e.code(), "TIME_OUT_OF_RANGE");
    }

    #[test]
    fn to_civil_is_total() {
        let c = Timestamp::from_micros(u64::MAX).to_civil();
        assert!(c.year > MAX_YEAR);
        assert!((1..=12).contains(&c.month));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_micros(100));
        assert_eq!(clock.now(), Timestamp::from_micros(100));
        clock.advance(Duration::from_micros(50));
        assert_eq!(clock.now(), Timestamp::from_micros(150));
        clock.set(Timestamp::from_micros(7));
        assert_eq!(clock.now(), Timestamp::from_micros(7));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Timestamp::MAX);
        let dyn_clock: &dyn Clock = &clock;
        assert_eq!(dyn_clock.now(), Timestamp::MAX);
    }

    #[test]
    fn serde_is_transparent_and_rkyv_round_trips() {
        let ts = Timestamp::from_micros(1_795_480_569_123_456);
        assert_eq!(serde_json::to_string(&ts).unwrap(), "1795480569123456");
        assert_eq!(
            serde_json::from_str::<Timestamp>("1795480569123456").unwrap(),
            ts
        );
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&ts).unwrap();
        let back = rkyv::from_bytes::<Timestamp, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back, ts);
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2100, 13), 0);
    }

    /// Day-by-day walk: consecutive day numbers give consecutive dates.
    #[test]
    fn civil_from_days_walks_the_calendar() {
        let (mut y, mut m, mut d) = (1970u32, 1u8, 1u8);
        for days in 0..(400 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            assert_eq!(days_from_civil(y, m, d), days);
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    proptest! {
        #[test]
        fn civil_round_trip(micros in 0..=Timestamp::MAX.as_micros()) {
            let ts = Timestamp::from_micros(micros);
            let c = ts.to_civil();
            prop_assert_eq!(Timestamp::from_civil(&c), Ok(ts));
        }

        #[test]
        fn mesh_format_round_trip(micros in 0..=Timestamp::MAX.as_micros()) {
            let ts = Timestamp::from_micros(micros);
            let text = ts.format_mesh();
            prop_assert_eq!(text.len(), 20);
            prop_assert_eq!(Timestamp::parse_mesh(&text), Ok(ts));
            let secs = Timestamp::from_unix_seconds(ts.as_unix_seconds());
            prop_assert_eq!(Timestamp::parse_seconds(&ts.format_seconds()), Ok(secs));
            let minute = Timestamp::from_unix_seconds(ts.as_unix_seconds() / 60 * 60);
            prop_assert_eq!(Timestamp::parse_mesh_token_time(&text[..12]), Ok(minute));
        }

        /// Lexicographic order of the formatted text is time order.
        #[test]
        fn mesh_format_sorts_like_time(a in 0..=Timestamp::MAX.as_micros(), b in 0..=Timestamp::MAX.as_micros()) {
            let (ta, tb) = (Timestamp::from_micros(a), Timestamp::from_micros(b));
            prop_assert_eq!(ta.cmp(&tb), ta.format_mesh().cmp(&tb.format_mesh()));
        }

        #[test]
        fn parsers_never_panic(s in ".{0,30}") {
            let _ = Timestamp::parse_mesh(&s);
            let _ = Timestamp::parse_seconds(&s);
            let _ = Timestamp::parse_mesh_token_time(&s);
        }

        #[test]
        fn digit_strings_never_panic(s in "[0-9]{12}|[0-9]{14}|[0-9]{20}") {
            let _ = Timestamp::parse_mesh(&s);
            let _ = Timestamp::parse_seconds(&s);
            let _ = Timestamp::parse_mesh_token_time(&s);
        }

        #[test]
        fn from_civil_never_panics(year: u32, month: u8, day: u8, hour: u8, minute: u8, second: u8, micro: u32) {
            let c = civil(year, month, day, hour, minute, second, micro);
            if let Ok(ts) = Timestamp::from_civil(&c) {
                prop_assert_eq!(ts.to_civil(), c);
            }
        }

        #[test]
        fn to_civil_total(micros: u64) {
            let c = Timestamp::from_micros(micros).to_civil();
            prop_assert!((1..=12).contains(&c.month));
            prop_assert!(c.day >= 1 && c.day <= days_in_month(c.year, c.month));
        }
    }
}
