//! Traffic (`[[flow]]`, `[[peak]]`): who sends what to whom, how often, and
//! how big.
//!
//! A flow's rate at virtual offset `t` (seconds from `start`) is
//! `rate × scale × diurnal[UTC hour of start + t] × Π multiplier` over the
//! peaks (global `[[peak]]` and the flow's own `[[flow.peak]]`) active at
//! `t`. That is piecewise constant: it changes only on the hour and where a
//! peak starts or ends, so [`super::Scenario::flow_segment`] gives the rate
//! and where it next changes, and arrivals can be drawn exactly (no
//! thinning) by spending exponential variates across segments.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use spine_core::ids::WorkflowId;

/// Largest message the simulator generates, in bytes (20 GiB, MESH's
/// largest chunked transfer).
pub const MAX_MESSAGE_BYTES: u64 = 20 << 30;
/// Largest chunk, in bytes: the native protocol's largest frame payload.
pub const MAX_CHUNK_BYTES: u64 = 16 << 20;
/// Default chunk size, in bytes.
pub const DEFAULT_CHUNK_BYTES: u64 = 10 << 20;
/// Default message size, in bytes.
pub const DEFAULT_MESSAGE_BYTES: u64 = 4096;
/// Highest national rate of one flow, messages per second (before scale).
pub const MAX_RATE: f64 = 10_000_000.0;
/// Highest peak multiplier.
pub const MAX_MULTIPLIER: f64 = 1000.0;

/// One stream of traffic (`[[flow]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Unique name (for reports and error messages).
    pub name: String,
    /// The MESH workflow id its messages carry.
    pub workflow: WorkflowId,
    /// Register the workflow in the directory, with every mailbox of the
    /// `from` classes as a sender and every mailbox of the `to` classes as
    /// a receiver (default true). Flows sharing a workflow id must agree.
    #[serde(default = "yes")]
    pub registered: bool,
    /// National rate in messages per second: the daily mean (the diurnal
    /// curve is normalised to mean 1), before `scale` and peaks.
    pub rate: f64,
    /// Who sends.
    pub from: Targets,
    /// Who receives.
    pub to: Targets,
    /// How the rate varies over the day (default `"flat"`).
    #[serde(default)]
    pub diurnal: Diurnal,
    /// Message sizes (default a fixed 4 KiB).
    #[serde(default)]
    pub size: SizeDist,
    /// Messages larger than this are sent in `ceil(bytes / chunk_bytes)`
    /// chunks (default 10 MiB, at most 16 MiB).
    #[serde(default = "default_chunk")]
    pub chunk_bytes: u64,
    /// Peaks of this flow only (`[[flow.peak]]`).
    #[serde(default, rename = "peak")]
    pub peaks: Vec<Peak>,
}

fn yes() -> bool {
    true
}

fn default_chunk() -> u64 {
    DEFAULT_CHUNK_BYTES
}

impl Flow {
    /// Chunks a message of `bytes` is sent in (at least 1).
    pub fn chunks_for(&self, bytes: u64) -> u32 {
        let chunks = bytes.div_ceil(self.chunk_bytes.max(1)).max(1);
        u32::try_from(chunks).unwrap_or(u32::MAX)
    }
}

/// A set of senders or recipients.
///
/// In the file: `"any"` (every class), a class name, a list of class names,
/// or a table of class names to shares (`{ hub = 0.7, practice = 0.3 }`).
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Every class, each weighted by its number of mailboxes.
    Any,
    /// These classes, each weighted by its number of mailboxes.
    Classes(Vec<String>),
    /// These classes with explicit shares (normalised to sum to 1), in file
    /// order.
    Weighted(Vec<(String, f64)>),
}

impl Targets {
    /// The class names mentioned (none for `Any`).
    pub fn names(&self) -> Vec<&str> {
        match self {
            Targets::Any => Vec::new(),
            Targets::Classes(names) => names.iter().map(String::as_str).collect(),
            Targets::Weighted(pairs) => pairs.iter().map(|(n, _)| n.as_str()).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Targets, D::Error> {
        deserializer.deserialize_any(TargetsVisitor)
    }
}

struct TargetsVisitor;

impl<'de> Visitor<'de> for TargetsVisitor {
    type Value = Targets;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "\"any\", a class name, a list of class names, or a table of class names to \
             shares such as { hub = 0.7, practice = 0.3 }",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Targets, E> {
        Ok(if v == "any" {
            Targets::Any
        } else {
            Targets::Classes(vec![v.to_owned()])
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = seq.next_element::<String>()? {
            names.push(name);
        }
        Ok(Targets::Classes(names))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Targets, A::Error> {
        let mut pairs = Vec::new();
        while let Some((name, share)) = map.next_entry::<String, f64>()? {
            pairs.push((name, share));
        }
        Ok(Targets::Weighted(pairs))
    }
}

/// Named diurnal curves.
pub const DIURNAL_NAMES: [&str; 2] = ["flat", "uk-working-hours"];

/// Relative traffic per UTC hour on a UK working day: quiet overnight apart
/// from batch runs around 02:00, a ramp from 07:00, peaks late morning and
/// mid-afternoon, a lunchtime dip, tailing off in the evening.
const UK_WORKING_HOURS: [f64; 24] = [
    0.20, 0.30, 0.45, 0.30, 0.15, 0.20, 0.40, 0.90, 1.80, 2.40, 2.50, 2.40, 1.90, 2.10, 2.30, 2.20,
    1.90, 1.30, 0.80, 0.60, 0.50, 0.40, 0.30, 0.20,
];

/// How a flow's rate varies with the UTC hour of virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Diurnal {
    /// A named curve: `"flat"` or `"uk-working-hours"`.
    Named(String),
    /// 24 relative weights, hour 0 to hour 23 (UTC).
    Hourly(Vec<f64>),
}

impl Default for Diurnal {
    fn default() -> Self {
        Diurnal::Named("flat".to_owned())
    }
}

impl Diurnal {
    /// The 24 multipliers, normalised to mean 1 (so a flow's `rate` is its
    /// daily mean). `None` for an unknown name, a wrong length, a negative
    /// or non-finite weight, or all zeros.
    pub fn multipliers(&self) -> Option<[f64; 24]> {
        let raw: [f64; 24] = match self {
            Diurnal::Named(name) if name == "flat" => [1.0; 24],
            Diurnal::Named(name) if name == "uk-working-hours" => UK_WORKING_HOURS,
            Diurnal::Named(_) => return None,
            Diurnal::Hourly(values) => values.as_slice().try_into().ok()?,
        };
        if raw.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return None;
        }
        let sum: f64 = raw.iter().sum();
        if sum <= 0.0 || !sum.is_finite() {
            return None;
        }
        Some(raw.map(|v| v * 24.0 / sum))
    }
}

impl<'de> Deserialize<'de> for Diurnal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Diurnal, D::Error> {
        deserializer.deserialize_any(DiurnalVisitor)
    }
}

struct DiurnalVisitor;

impl<'de> Visitor<'de> for DiurnalVisitor {
    type Value = Diurnal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"flat\", \"uk-working-hours\", or a list of 24 hourly weights")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Diurnal, E> {
        Ok(Diurnal::Named(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Diurnal, A::Error> {
        let mut values = Vec::new();
        while let Some(v) = seq.next_element::<f64>()? {
            values.push(v);
        }
        Ok(Diurnal::Hourly(values))
    }
}

/// A window of raised (or lowered) traffic (`[[peak]]` or `[[flow.peak]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peak {
    /// Optional label for reports.
    #[serde(default)]
    pub name: String,
    /// Start, seconds from the scenario start.
    pub at: u64,
    /// Length in seconds.
    pub duration: u64,
    /// Rate multiplier while active (0..=1000; overlapping peaks multiply).
    pub multiplier: f64,
}

impl Peak {
    /// End offset, seconds.
    pub fn end(&self) -> u64 {
        self.at.saturating_add(self.duration)
    }
}

/// A message size distribution, in bytes.
///
/// In the file: `{ fixed = 2048 }`, `{ uniform = { min = 1024, max = 8192 } }`,
/// `{ lognormal = { median = 8192, sigma = 1.0, min = 512, max = 1048576 } }`
/// or `{ mix = [ { weight = 0.9, size = { fixed = 2048 } }, ... ] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SizeDist {
    /// Always this many bytes.
    Fixed(u64),
    /// Uniform integer in `min..=max`.
    Uniform {
        /// Smallest size.
        min: u64,
        /// Largest size.
        max: u64,
    },
    /// `median × e^(sigma × Z)`, `Z` standard normal, rounded and clamped
    /// to `min..=max` (defaults 1 and `100 × median`).
    #[serde(rename = "lognormal")]
    LogNormal {
        /// Median size.
        median: u64,
        /// Spread (0..=4).
        sigma: f64,
        /// Smallest size (default 1).
        #[serde(default)]
        min: Option<u64>,
        /// Largest size (default 100 × median).
        #[serde(default)]
        max: Option<u64>,
    },
    /// One of several distributions, chosen by weight (not nested).
    Mix(Vec<WeightedSize>),
}

impl Default for SizeDist {
    fn default() -> Self {
        SizeDist::Fixed(DEFAULT_MESSAGE_BYTES)
    }
}

/// One part of a [`SizeDist::Mix`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedSize {
    /// Relative weight (> 0).
    pub weight: f64,
    /// The distribution.
    pub size: SizeDist,
}

impl SizeDist {
    /// The bounds `(min, max)` a sample is clamped to.
    pub fn bounds(&self) -> (u64, u64) {
        match self {
            SizeDist::Fixed(n) => (*n, *n),
            SizeDist::Uniform { min, max } => (*min, *max),
            SizeDist::LogNormal {
                median, min, max, ..
            } => (
                min.unwrap_or(1),
                max.unwrap_or_else(|| median.saturating_mul(100)),
            ),
            SizeDist::Mix(parts) => parts.iter().fold((u64::MAX, 0), |(lo, hi), p| {
                let (a, b) = p.size.bounds();
                (lo.min(a), hi.max(b))
            }),
        }
    }

    /// Approximate mean size in bytes (the log-normal's mean ignores the
    /// clamp).
    pub fn mean_bytes(&self) -> f64 {
        match self {
            SizeDist::Fixed(n) => *n as f64,
            SizeDist::Uniform { min, max } => (*min as f64 + *max as f64) / 2.0,
            SizeDist::LogNormal { median, sigma, .. } => {
                let (lo, hi) = self.bounds();
                (*median as f64 * crate::model::sampling::exp(sigma * sigma / 2.0))
                    .clamp(lo as f64, hi.max(lo) as f64)
            }
            SizeDist::Mix(parts) => {
                let total: f64 = parts.iter().map(|p| p.weight.max(0.0)).sum();
                if total <= 0.0 {
                    return 0.0;
                }
                parts
                    .iter()
                    .map(|p| p.weight.max(0.0) / total * p.size.mean_bytes())
                    .sum()
            }
        }
    }
}
