//! Mailbox classes (`[[class]]`): groups of organisations that look alike
//! (a few hubs with huge inboxes, thousands of small GP practices) and how
//! their mailboxes collect mail.

use serde::Deserialize;

/// How many digits the organisation number in an ODS code has at least.
pub const MIN_ODS_DIGITS: usize = 3;
/// Longest `ods_prefix`.
pub const MAX_ODS_PREFIX: usize = 4;

/// One class of organisations (`[[class]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxClass {
    /// Unique name, referred to by flows' `from` and `to` (lower-case
    /// letters, digits, `_` and `-`; not `any`).
    pub name: String,
    /// Hubs come first in the population and are marked as hubs.
    #[serde(default)]
    pub hub: bool,
    /// How many organisations (1..=1,000,000).
    pub organisations: u32,
    /// Mailboxes per organisation (1..=999).
    #[serde(default = "one")]
    pub mailboxes_per_organisation: u32,
    /// Letters starting this class's ODS codes (1..=4 of A-Z; the default
    /// is the first three letters of the name). Codes are the prefix and a
    /// zero-padded organisation number (`PRA00042`); mailbox ids add
    /// `OT` and a three-digit mailbox number (`PRA00042OT001`).
    #[serde(default)]
    pub ods_prefix: Option<String>,
    /// Zipf exponent for picking a mailbox of this class as a sender or a
    /// recipient: mailbox `r` (0-based, in id order) has weight
    /// `1 / (r + 1)^skew`. 0 (the default) is uniform; around 1 makes the
    /// first few mailboxes of the class take most of its traffic.
    #[serde(default)]
    pub skew: f64,
    /// How its mailboxes collect their messages.
    #[serde(default)]
    pub consumer: Consumer,
}

fn one() -> u32 {
    1
}

impl MailboxClass {
    /// Mailboxes in the class.
    pub fn mailboxes(&self) -> u64 {
        u64::from(self.organisations) * u64::from(self.mailboxes_per_organisation)
    }

    /// The ODS prefix in use: `ods_prefix`, or the first three letters of
    /// the name, upper case (`X` if the name has none).
    pub fn prefix(&self) -> String {
        match &self.ods_prefix {
            Some(p) => p.to_ascii_uppercase(),
            None => {
                let letters: String = self
                    .name
                    .chars()
                    .filter(char::is_ascii_alphabetic)
                    .take(3)
                    .collect::<String>()
                    .to_ascii_uppercase();
                if letters.is_empty() {
                    "X".to_owned()
                } else {
                    letters
                }
            }
        }
    }

    /// Digits of the organisation number in this class's ODS codes.
    pub fn ods_digits(&self) -> usize {
        decimal_digits(u64::from(self.organisations)).max(MIN_ODS_DIGITS)
    }
}

/// Number of decimal digits of `n` (1 for 0).
pub(crate) fn decimal_digits(n: u64) -> usize {
    let mut digits = 1;
    let mut n = n / 10;
    while n > 0 {
        digits += 1;
        n /= 10;
    }
    digits
}

/// How a consumer collects its mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerKind {
    /// Lists its inbox every `interval` seconds.
    #[default]
    Poll,
    /// Subscribed: collects each message `delay_ms` after acceptance.
    Push,
    /// Never collects: its messages expire.
    Absent,
}

/// Consumer behaviour of a class (`[class.consumer]`).
///
/// Each mailbox of the class is, by a seeded draw of exact counts, absent
/// (`absent_fraction`), slow (`slow_fraction`: its poll interval or push
/// delay multiplied by `slow_factor`) or normal.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Consumer {
    /// `poll`, `push` or `absent`.
    pub mode: ConsumerKind,
    /// Poll: seconds between polls (1..=86400).
    pub interval: u64,
    /// Poll: when set, each mailbox draws its interval uniformly from
    /// `interval..=interval_max` (seeded), so polls spread out.
    pub interval_max: Option<u64>,
    /// Poll: most messages collected per poll (1..=5000).
    pub batch: usize,
    /// Poll: poll on every interval even with nothing waiting. Off (the
    /// default): the schedule only emits a poll when, by its own count of
    /// what it sent, something may be waiting (a message, or a predicted
    /// non-delivery report), which keeps 26,000 mostly idle mailboxes from
    /// dominating the event count. On: faithful load from empty polls.
    pub idle_polls: bool,
    /// Push: milliseconds from acceptance to collection (0..=86,400,000).
    pub delay_ms: u64,
    /// Fraction (0..=1) of the class's mailboxes that are slow.
    pub slow_fraction: f64,
    /// How much slower a slow consumer is (1..=1000).
    pub slow_factor: u64,
    /// Fraction (0..=1) of the class's mailboxes that never collect.
    pub absent_fraction: f64,
}

impl Default for Consumer {
    fn default() -> Self {
        Consumer {
            mode: ConsumerKind::Poll,
            interval: 600,
            interval_max: None,
            batch: 100,
            idle_polls: false,
            delay_ms: 100,
            slow_fraction: 0.0,
            slow_factor: 10,
            absent_fraction: 0.0,
        }
    }
}

impl Consumer {
    /// The longest poll interval a normal mailbox draws.
    pub fn interval_max(&self) -> u64 {
        self.interval_max
            .unwrap_or(self.interval)
            .max(self.interval)
    }

    /// How many of `n` mailboxes are absent and how many slow (exact: the
    /// fractions rounded to the nearest count, slow capped by what is left).
    pub fn split(&self, n: u64) -> (u64, u64) {
        if self.mode == ConsumerKind::Absent {
            return (n, 0);
        }
        let count = |f: f64| {
            let c = (f.clamp(0.0, 1.0) * n as f64).round();
            (c as u64).min(n)
        };
        let absent = count(self.absent_fraction);
        let slow = count(self.slow_fraction).min(n - absent);
        (absent, slow)
    }
}
