//! The reference Electronic Prescription Service: a prescriber creates a
//! prescription, the nominated pharmacy releases (downloads) it, dispenses
//! it and claims for it.
//!
//! ```text
//! create ──▶ Created ──release──▶ Released(to) ──dispense──▶ Dispensed ──claim──▶ Claimed
//! ```
//!
//! Invariants and why:
//! - Each prescription is released exactly once: release moves it out of
//!   `Created`, and the service checks and applies one request at a time, so
//!   two concurrent releases cannot both see it `Created`. Releasing by
//!   nominated pharmacy returns only `Created` prescriptions nominated to
//!   the caller's organisation, oldest first, at most `max_release`.
//! - Only the pharmacy it was released to may dispense it, and only the
//!   pharmacy that dispensed it may claim; every other transition is
//!   refused with `EPS_INVALID_TRANSITION` or `EPS_WRONG_PHARMACY`.
//! - Each change writes the prescription's full new state, so replay is
//!   "last record wins" and carrying forward is re-logging it.
//! - `check_*` never mutates; `apply` only takes a durable record.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{NhsNumber, OdsCode};
use crate::time::Timestamp;

use super::error::ServiceError;

/// Longest prescription id.
pub const MAX_PRESCRIPTION_ID: usize = 32;

/// Where a prescription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrescriptionStatus {
    /// Signed and waiting for a pharmacy.
    Created,
    /// Downloaded by a pharmacy.
    Released,
    /// Dispensed to the patient.
    Dispensed,
    /// Claimed for payment.
    Claimed,
}

impl PrescriptionStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrescriptionStatus::Created => "created",
            PrescriptionStatus::Released => "released",
            PrescriptionStatus::Dispensed => "dispensed",
            PrescriptionStatus::Claimed => "claimed",
        }
    }
}

/// A prescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prescription {
    /// Its id (chosen by the prescribing system, as in EPS).
    pub id: String,
    /// The patient.
    pub nhs_number: NhsNumber,
    /// The prescribing organisation.
    pub prescriber_ods: OdsCode,
    /// The nominated pharmacy.
    pub nominated_pharmacy: OdsCode,
    /// The items prescribed.
    pub items: Vec<String>,
    /// Status.
    pub status: PrescriptionStatus,
    /// The pharmacy it was released to.
    pub released_to: Option<OdsCode>,
    /// 1 at creation, +1 per transition.
    pub version: u64,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// What a prescriber sends to create a prescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPrescription {
    /// Its id.
    pub id: String,
    /// The patient.
    pub nhs_number: NhsNumber,
    /// The nominated pharmacy.
    pub nominated_pharmacy: OdsCode,
    /// Items (1..=max_items, each 1..=256 bytes).
    pub items: Vec<String>,
}

/// EPS limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpsLimits {
    /// Most prescriptions held.
    pub max_prescriptions: usize,
    /// Most items per prescription.
    pub max_items: usize,
    /// Most prescriptions one release returns.
    pub max_release: usize,
}

impl Default for EpsLimits {
    fn default() -> Self {
        EpsLimits {
            max_prescriptions: 1_000_000,
            max_items: 32,
            max_release: 25,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    prescription: Prescription,
    segment: u64,
}

/// EPS state.
#[derive(Debug, Clone, Default)]
pub struct Eps {
    prescriptions: BTreeMap<String, Entry>,
    /// `Created` prescriptions per nominated pharmacy, oldest first (by
    /// creation time, then id: a key that replay rebuilds exactly, even
    /// after compaction re-logged some of them).
    waiting: BTreeMap<OdsCode, BTreeSet<(Timestamp, String)>>,
}

fn check_id(id: &str) -> Result<(), ServiceError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_PRESCRIPTION_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadRequest {
            why: format!(
                "prescription id must be 1 to {MAX_PRESCRIPTION_ID} letters, digits or '-'"
            ),
        })
    }
}

impl Eps {
    /// The prescription with this id.
    pub fn get(&self, id: &str) -> Result<&Prescription, ServiceError> {
        self.prescriptions
            .get(id)
            .map(|e| &e.prescription)
            .ok_or_else(|| ServiceError::PrescriptionNotFound {
                id: id.chars().take(MAX_PRESCRIPTION_ID).collect(),
            })
    }

    /// Number of prescriptions.
    pub fn len(&self) -> usize {
        self.prescriptions.len()
    }

    /// True with none.
    pub fn is_empty(&self) -> bool {
        self.prescriptions.is_empty()
    }

    /// Checks a creation; returns the new prescription.
    pub fn check_create(
        &self,
        new: NewPrescription,
        prescriber: &OdsCode,
        now: Timestamp,
        limits: &EpsLimits,
    ) -> Result<Prescription, ServiceError> {
        check_id(&new.id)?;
        if self.prescriptions.contains_key(&new.id) {
            return Err(ServiceError::PrescriptionExists { id: new.id });
        }
        if self.prescriptions.len() >= limits.max_prescriptions {
            return Err(ServiceError::StateLimit {
                what: "prescription",
                limit: limits.max_prescriptions,
            });
        }
        if new.items.is_empty()
            || new.items.len() > limits.max_items
            || new
                .items
                .iter()
                .any(|i| i.trim().is_empty() || i.len() > 256 || i.chars().any(char::is_control))
        {
            return Err(ServiceError::BadRequest {
                why: format!(
                    "items must be 1 to {} texts of 1 to 256 bytes without control characters",
                    limits.max_items
                ),
            });
        }
        Ok(Prescription {
            id: new.id,
            nhs_number: new.nhs_number,
            prescriber_ods: prescriber.clone(),
            nominated_pharmacy: new.nominated_pharmacy,
            items: new.items,
            status: PrescriptionStatus::Created,
            released_to: None,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// Checks a release: by `id` (any pharmacy may download a named
    /// prescription) or, without one, every `Created` prescription
    /// nominated to `pharmacy`, oldest first, at most `max_release`.
    /// Returns the released states (to be logged).
    pub fn check_release(
        &self,
        id: Option<&str>,
        pharmacy: &OdsCode,
        now: Timestamp,
        limits: &EpsLimits,
    ) -> Result<Vec<Prescription>, ServiceError> {
        let release = |p: &Prescription| {
            let mut next = p.clone();
            next.status = PrescriptionStatus::Released;
            next.released_to = Some(pharmacy.clone());
            next.version = p.version.saturating_add(1);
            next.updated_at = now;
            next
        };
        match id {
            Some(id) => {
                let p = self.get(id)?;
                if p.status != PrescriptionStatus::Created {
                    return Err(invalid(p, "release"));
                }
                Ok(vec![release(p)])
            }
            None => Ok(self
                .waiting
                .get(pharmacy)
                .into_iter()
                .flatten()
                .filter_map(|(_, id)| self.prescriptions.get(id))
                .take(limits.max_release)
                .map(|e| release(&e.prescription))
                .collect()),
        }
    }

    /// Checks a dispense notification from `pharmacy`.
    pub fn check_dispense(
        &self,
        id: &str,
        pharmacy: &OdsCode,
        now: Timestamp,
    ) -> Result<Prescription, ServiceError> {
        self.advance(
            id,
            pharmacy,
            now,
            PrescriptionStatus::Released,
            PrescriptionStatus::Dispensed,
            "dispense",
        )
    }

    /// Checks a claim from `pharmacy`.
    pub fn check_claim(
        &self,
        id: &str,
        pharmacy: &OdsCode,
        now: Timestamp,
    ) -> Result<Prescription, ServiceError> {
        self.advance(
            id,
            pharmacy,
            now,
            PrescriptionStatus::Dispensed,
            PrescriptionStatus::Claimed,
            "claim",
        )
    }

    fn advance(
        &self,
        id: &str,
        pharmacy: &OdsCode,
        now: Timestamp,
        from: PrescriptionStatus,
        to: PrescriptionStatus,
        action: &str,
    ) -> Result<Prescription, ServiceError> {
        let p = self.get(id)?;
        if p.status != from {
            return Err(invalid(p, action));
        }
        if p.released_to.as_ref() != Some(pharmacy) {
            return Err(ServiceError::WrongPharmacy {
                id: p.id.clone(),
                pharmacy: pharmacy.to_string(),
            });
        }
        let mut next = p.clone();
        next.status = to;
        next.version = p.version.saturating_add(1);
        next.updated_at = now;
        Ok(next)
    }

    /// Applies a durable prescription record logged in `segment`.
    pub fn apply(&mut self, prescription: Prescription, segment: u64) {
        if let Some(old) = self.prescriptions.remove(&prescription.id) {
            let pharmacy = &old.prescription.nominated_pharmacy;
            if let Some(set) = self.waiting.get_mut(pharmacy) {
                set.remove(&(old.prescription.created_at, old.prescription.id.clone()));
                if set.is_empty() {
                    self.waiting.remove(pharmacy);
                }
            }
        }
        if prescription.status == PrescriptionStatus::Created {
            self.waiting
                .entry(prescription.nominated_pharmacy.clone())
                .or_default()
                .insert((prescription.created_at, prescription.id.clone()));
        }
        self.prescriptions.insert(
            prescription.id.clone(),
            Entry {
                prescription,
                segment,
            },
        );
    }

    /// Prescriptions whose latest record lies at or below segment `upto`.
    pub fn referencing(&self, upto: u64) -> impl Iterator<Item = &Prescription> {
        self.prescriptions
            .values()
            .filter(move |e| e.segment <= upto)
            .map(|e| &e.prescription)
    }
}

fn invalid(p: &Prescription, action: &str) -> ServiceError {
    ServiceError::InvalidTransition {
        id: p.id.clone(),
        status: p.status.as_str().into(),
        action: action.into(),
    }
}
