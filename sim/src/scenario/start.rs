//! The scenario's virtual start time: RFC 3339 text (`2026-03-02T08:00:00Z`,
//! `2026-03-02T09:00:00+01:00`, fractions of a second to microseconds) or a
//! native TOML offset date-time (`start = 2026-03-02T08:00:00Z`).
//!
//! A local date-time (no `Z` or offset) is refused: virtual time is UTC and
//! the diurnal curve is indexed by UTC hour, so the offset must be explicit.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::Deserializer;
use spine_core::time::{CivilTime, Timestamp};

const FORMAT_HELP: &str = "write it as RFC 3339 in UTC, e.g. \"2026-03-02T00:00:00Z\"";

/// Parses an RFC 3339 date-time into a UTC [`Timestamp`].
pub fn parse_rfc3339(input: &str) -> Result<Timestamp, String> {
    let bytes = input.as_bytes();
    let bad = |why: &str| format!("start time {input:?} {why}; {FORMAT_HELP}");
    if bytes.len() < 19 {
        return Err(bad("is too short"));
    }
    let digits = |from: usize, to: usize| -> Result<u32, String> {
        let part = bytes.get(from..to).ok_or_else(|| bad("is too short"))?;
        part.iter().try_fold(0u32, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + u32::from(b - b'0'))
            } else {
                Err(bad("has a non-digit where a digit belongs"))
            }
        })
    };
    let separator = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match bytes.get(at) {
            Some(b) if allowed.contains(b) => Ok(()),
            _ => Err(bad("is not in the form YYYY-MM-DDTHH:MM:SS")),
        }
    };
    separator(4, b"-")?;
    separator(7, b"-")?;
    separator(10, b"Tt ")?;
    separator(13, b":")?;
    separator(16, b":")?;
    let year = digits(0, 4)?;
    let month = digits(5, 7)?;
    let day = digits(8, 10)?;
    let hour = digits(11, 13)?;
    let minute = digits(14, 16)?;
    let second = digits(17, 19)?;
    let mut rest = bytes.get(19..).unwrap_or_default();
    let mut micro = 0u32;
    if let Some((b'.', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return Err(bad("has a '.' without fraction digits"));
        }
        for (i, b) in tail.iter().take(n).enumerate() {
            if i < 6 {
                micro = micro * 10 + u32::from(b - b'0');
            }
        }
        for _ in n..6 {
            micro *= 10;
        }
        rest = tail.get(n..).unwrap_or_default();
    }
    let offset_secs: i64 = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Result<i64, String> {
                if a.is_ascii_digit() && b.is_ascii_digit() {
                    Ok(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
                } else {
                    Err(bad("has a malformed UTC offset"))
                }
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return Err(bad("has a UTC offset out of range"));
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        [] => return Err(bad("has no UTC offset (local times are ambiguous)")),
        _ => return Err(bad("has unexpected characters after the time")),
    };
    let narrow = |v: u32| u8::try_from(v).map_err(|_| bad("has a field out of range"));
    let civil = CivilTime {
        year,
        month: narrow(month)?,
        day: narrow(day)?,
        hour: narrow(hour)?,
        minute: narrow(minute)?,
        second: narrow(second)?,
        micro,
    };
    let local =
        Timestamp::from_civil(&civil).map_err(|e| bad(&format!("is not a valid time ({e})")))?;
    let offset_micros = offset_secs.unsigned_abs() * 1_000_000;
    let utc = if offset_secs >= 0 {
        local.as_micros().checked_sub(offset_micros)
    } else {
        local.as_micros().checked_add(offset_micros)
    };
    utc.and_then(|m| Timestamp::try_from_micros(m).ok())
        .ok_or_else(|| bad("is outside 1970-01-01 to 9999-12-31 in UTC"))
}

/// Deserialises `start` from a string or a native TOML date-time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
    deserializer.deserialize_any(StartVisitor)
}

struct StartVisitor;

impl<'de> Visitor<'de> for StartVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 date-time in UTC such as 2026-03-02T00:00:00Z")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        parse_rfc3339(v).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Timestamp, A::Error> {
        // toml hands a native date-time over as a one-entry map whose value
        // is the date-time's text.
        let Some((_, text)) = map.next_entry::<String, String>()? else {
            return Err(de::Error::custom(format!(
                "expected a date-time; {FORMAT_HELP}"
            )));
        };
        parse_rfc3339(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_utc_offsets_and_fractions() {
        let base = parse_rfc3339("2026-03-02T00:00:00Z").unwrap();
        assert_eq!(base.to_rfc3339(), "2026-03-02T00:00:00.000000Z");
        assert_eq!(parse_rfc3339("2026-03-02t00:00:00z").unwrap(), base);
        assert_eq!(parse_rfc3339("2026-03-02 01:00:00+01:00").unwrap(), base);
        assert_eq!(parse_rfc3339("2026-03-01T23:30:00-00:30").unwrap(), base);
        let frac = parse_rfc3339("2026-03-02T00:00:00.25Z").unwrap();
        assert_eq!(frac.as_micros() - base.as_micros(), 250_000);
        let long = parse_rfc3339("2026-03-02T00:00:00.123456789Z").unwrap();
        assert_eq!(long.as_micros() - base.as_micros(), 123_456);
    }

    #[test]
    fn refuses_with_a_reason() {
        for (bad, why) in [
            ("2026-03-02", "too short"),
            ("2026-03-02T00:00:00", "no UTC offset"),
            ("2026-02-30T00:00:00Z", "not a valid time"),
            ("2026-03-02T24:00:00Z", "not a valid time"),
            ("2026/03/02T00:00:00Z", "form"),
            ("2026-03-02T00:00:00.Z", "fraction"),
            ("2026-03-02T00:00:00+25:00", "offset out of range"),
            ("2026-03-02T00:00:00Zjunk", "unexpected"),
            ("1970-01-01T00:00:00+01:00", "outside"),
            ("2026-0x-02T00:00:00Z", "non-digit"),
        ] {
            let e = parse_rfc3339(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("RFC 3339"), "{e}");
        }
    }
}
