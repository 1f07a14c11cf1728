//! The reference Summary Care Record: a GP system uploads a replacement
//! summary for a patient; clinicians retrieve the latest.
//!
//! Invariants and why:
//! - An upload replaces the whole summary (as SCR's `REPC_IN150016UK05`
//!   does) and bumps its version, so the latest record is the whole truth:
//!   replay is "last record wins", and carrying forward is re-logging it.
//! - Summaries are bounded in size and in number ([`ScrLimits`]).
//! - `check_upload` never mutates; `apply` only takes a durable record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{NhsNumber, OdsCode};
use crate::time::Timestamp;

use super::error::ServiceError;

/// One patient's summary care record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The patient.
    pub nhs_number: NhsNumber,
    /// 1 for the first upload, +1 per replacement.
    pub version: u64,
    /// The uploading organisation.
    pub author_ods: OdsCode,
    /// When it was uploaded (µs since the epoch).
    pub uploaded_at: Timestamp,
    /// The summary itself (medications, allergies, adverse reactions), as
    /// the uploader sent it (JSON text).
    pub content: String,
}

/// SCR limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrLimits {
    /// Most summaries held.
    pub max_summaries: usize,
    /// Largest summary content in bytes.
    pub max_content_bytes: usize,
}

impl Default for ScrLimits {
    fn default() -> Self {
        ScrLimits {
            max_summaries: 1_000_000,
            max_content_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    summary: Summary,
    segment: u64,
}

/// SCR state.
#[derive(Debug, Clone, Default)]
pub struct Scr {
    summaries: BTreeMap<NhsNumber, Entry>,
}

impl Scr {
    /// The latest summary for a patient.
    pub fn get(&self, nhs_number: &NhsNumber) -> Result<&Summary, ServiceError> {
        self.summaries
            .get(nhs_number)
            .map(|e| &e.summary)
            .ok_or_else(|| ServiceError::SummaryNotFound {
                nhs_number: nhs_number.to_string(),
            })
    }

    /// Number of summaries.
    pub fn len(&self) -> usize {
        self.summaries.len()
    }

    /// True with none.
    pub fn is_empty(&self) -> bool {
        self.summaries.is_empty()
    }

    /// Checks a replacement upload and returns the new summary (to be logged).
    pub fn check_upload(
        &self,
        nhs_number: NhsNumber,
        author_ods: OdsCode,
        content: String,
        now: Timestamp,
        limits: &ScrLimits,
    ) -> Result<Summary, ServiceError> {
        if content.len() > limits.max_content_bytes {
            return Err(ServiceError::BodyTooLarge {
                len: content.len(),
                max: limits.max_content_bytes,
            });
        }
        let version = match self.summaries.get(&nhs_number) {
            Some(e) => e.summary.version.saturating_add(1),
            None if self.summaries.len() >= limits.max_summaries => {
                return Err(ServiceError::StateLimit {
                    what: "summary care record",
                    limit: limits.max_summaries,
                })
            }
            None => 1,
        };
        Ok(Summary {
            nhs_number,
            version,
            author_ods,
            uploaded_at: now,
            content,
        })
    }

    /// Applies a durable summary record logged in `segment`.
    pub fn apply(&mut self, summary: Summary, segment: u64) {
        self.summaries
            .insert(summary.nhs_number.clone(), Entry { summary, segment });
    }

    /// Summaries whose latest record lies at or below segment `upto`.
    pub fn referencing(&self, upto: u64) -> impl Iterator<Item = &Summary> {
        self.summaries
            .values()
            .filter(move |e| e.segment <= upto)
            .map(|e| &e.summary)
    }
}
