//! Text formatting shared by the report's writers: clock labels of virtual
//! time, durations, latencies, counts, and escaping for XML and Markdown.
//!
//! Invariants: every function is total (any input gives some text, never a
//! panic), and the escapers make any input safe to embed: XML text and
//! attribute values, and single Markdown table cells.

use std::fmt::Write as _;
use std::time::Duration;

use spine_core::time::Timestamp;

/// `HH:MM` (or `HH:MM:SS`) of a virtual time, UTC.
pub(crate) fn clock(at: Timestamp, seconds: bool) -> String {
    let c = at.to_civil();
    if seconds {
        format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second)
    } else {
        format!("{:02}:{:02}", c.hour, c.minute)
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a virtual time, UTC.
pub(crate) fn date_time(at: Timestamp) -> String {
    let c = at.to_civil();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// A span as `HH:MM:SS`, with a day count in front past 24 hours
/// (`2d 03:04:05`), and milliseconds when under a minute (`00:00:12.345`).
pub(crate) fn hms(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let mut out = String::new();
    if days > 0 {
        let _ = write!(out, "{days}d ");
    }
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
    if secs < 60 {
        let _ = write!(out, ".{:03}", d.subsec_millis());
    }
    out
}

/// A latency in microseconds, in the unit that reads best: `850 µs`,
/// `12.3 ms`, `4.56 s`, `3.2 min`, `1.5 h`.
pub(crate) fn latency_us(us: u64) -> String {
    let v = us as f64;
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", v / 1e3)
    } else if us < 60_000_000 {
        format!("{:.2} s", v / 1e6)
    } else if us < 3_600_000_000 {
        format!("{:.1} min", v / 6e7)
    } else {
        format!("{:.1} h", v / 3.6e9)
    }
}

/// A wall duration in seconds with millisecond precision.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// An integer with thousands separators: `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A float for humans: thousands separators, at most `decimals` places,
/// `-` for non-finite values.
pub(crate) fn number(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "-".to_owned();
    }
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::new();
    if x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('-');
    }
    match int.parse::<u64>() {
        Ok(n) => out.push_str(&thousands(n)),
        Err(_) => out.push_str(int),
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A short axis label: `0`, `0.25`, `12`, `1.5k`, `2M`, `3.2G`.
pub(crate) fn si(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_owned();
    }
    let a = x.abs();
    let (v, suffix) = if a >= 1e9 {
        (x / 1e9, "G")
    } else if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let mut text = format!("{v:.2}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text.push_str(suffix);
    text
}

/// Escapes text for XML character data and attribute values.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for one Markdown table cell: no pipes, no line breaks, no
/// raw HTML.
pub(crate) fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push_str("\\`"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_labels() {
        // 2025-06-15T15:06:40Z
        let t = Timestamp::from_unix_seconds(1_750_000_000);
        assert_eq!(clock(t, false), "15:06");
        assert_eq!(clock(t, true), "15:06:40");
        assert_eq!(date_time(t), "2025-06-15 15:06:40");
    }

    #[test]
    fn durations() {
        assert_eq!(hms(Duration::from_millis(12_345)), "00:00:12.345");
        assert_eq!(hms(Duration::from_secs(3_723)), "01:02:03");
        assert_eq!(hms(Duration::from_secs(2 * 86_400 + 61)), "2d 00:01:01");
        assert_eq!(latency_us(850), "850 µs");
        assert_eq!(latency_us(12_300), "12.30 ms");
        assert_eq!(latency_us(4_560_000), "4.56 s");
        assert_eq!(latency_us(5_400_000_000), "1.5 h");
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(number(1234.5, 1), "1,234.5");
        assert_eq!(number(-0.0001, 2), "0.00");
        assert_eq!(number(f64::NAN, 2), "-");
        assert_eq!(si(0.0), "0");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(2_000_000.0), "2M");
    }

    #[test]
    fn escaping() {
        assert_eq!(xml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(xml("x\u{1}y"), "x\u{FFFD}y");
        assert_eq!(md_cell("a|b\nc"), "a\\|b<br>c");
    }
}
