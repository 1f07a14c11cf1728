//! The reference Personal Demographics Service: get a patient by NHS
//! number, search by demographics, and update with a version check.
//!
//! Invariants and why:
//! - The seeded population is a pure function of `(seed, count)`: patient 0
//!   is always 9000000009 (Jane Smith, as in NHS's PDS sandbox) and the rest
//!   take the following valid NHS numbers in order. Seeding is not logged —
//!   only updates are — so the node must restart with the same seed and
//!   count (both are settings; the defaults never change).
//! - An update names the version it was based on; a stale version is
//!   refused (`PDS_VERSION_CONFLICT`), so two clerks cannot silently
//!   overwrite each other. Each update writes the patient's full new state,
//!   so replay is "last record wins" and carrying a patient forward at
//!   compaction is re-logging it.
//! - `check_*` never mutates; `apply` only takes a durable record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{NhsNumber, OdsCode};
use crate::random::{RandomSource, SeededRandom};

use super::error::ServiceError;

/// A patient's demographic record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// The NHS number.
    pub nhs_number: NhsNumber,
    /// Given name.
    pub given: String,
    /// Family name.
    pub family: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: String,
    /// `female`, `male`, `other` or `unknown`.
    pub gender: String,
    /// First line of the address.
    pub address: String,
    /// Postcode.
    pub postcode: String,
    /// The registered GP practice.
    pub gp_ods: OdsCode,
    /// The nominated pharmacy, if any.
    pub nominated_pharmacy: Option<OdsCode>,
    /// Record version; 1 when seeded, +1 per update.
    pub version: u64,
}

/// Fields an update may change (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientChanges {
    /// New given name.
    pub given: Option<String>,
    /// New family name.
    pub family: Option<String>,
    /// New address line.
    pub address: Option<String>,
    /// New postcode.
    pub postcode: Option<String>,
    /// New registered practice.
    pub gp_ods: Option<OdsCode>,
    /// New nominated pharmacy.
    pub nominated_pharmacy: Option<OdsCode>,
}

/// Search criteria; at least one must be given, all given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Family name (case-insensitive, exact).
    pub family: Option<String>,
    /// Given name (case-insensitive, exact).
    pub given: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Postcode (case- and space-insensitive).
    pub postcode: Option<String>,
}

/// Longest text field accepted in an update.
pub const MAX_FIELD_BYTES: usize = 128;

const GIVEN: [&str; 16] = [
    "Jane", "John", "Amelia", "Oliver", "Isla", "Harry", "Ava", "George", "Mia", "Noah", "Grace",
    "Arthur", "Freya", "Leo", "Ivy", "Oscar",
];
const FAMILY: [&str; 16] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Khan",
];
const STREETS: [&str; 8] = [
    "High Street",
    "Station Road",
    "Church Lane",
    "Victoria Road",
    "Green Lane",
    "Manor Road",
    "Park Avenue",
    "Mill Lane",
];
const POSTCODES: [&str; 8] = [
    "LS1 4HY", "LS6 2QB", "M1 1AE", "B1 1BB", "NE1 7RU", "BS1 5TR", "LE1 6ZG", "NG1 5FW",
];

#[derive(Debug, Clone)]
struct Entry {
    patient: Patient,
    /// Segment of the latest durable record (None: as seeded, unlogged).
    segment: Option<u64>,
}

/// PDS state.
#[derive(Debug, Clone, Default)]
pub struct Pds {
    patients: BTreeMap<NhsNumber, Entry>,
}

/// The first `count` synthetic NHS numbers: 9000000009, 9000000017, ...
pub fn synthetic_numbers(count: usize) -> impl Iterator<Item = NhsNumber> {
    (900_000_000u64..999_999_999)
        .filter_map(|base| (0..=9).find_map(|d| NhsNumber::parse(&format!("{base}{d}")).ok()))
        .take(count)
}

impl Pds {
    /// A PDS seeded with `count` synthetic patients drawn from `seed`.
    pub fn seeded(seed: u64, count: usize) -> Result<Pds, ServiceError> {
        let practice = OdsCode::parse("X26").map_err(ServiceError::Id)?;
        let pharmacy = OdsCode::parse("X27").map_err(ServiceError::Id)?;
        let mut rng = SeededRandom::new(seed);
        let mut patients = BTreeMap::new();
        for (i, nhs_number) in synthetic_numbers(count).enumerate() {
            let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
            let patient = if i == 0 {
                Patient {
                    nhs_number: nhs_number.clone(),
                    given: "Jane".into(),
                    family: "Smith".into(),
                    birth_date: "2010-10-22".into(),
                    gender: "female".into(),
                    address: "1 Trevelyan Square".into(),
                    postcode: "LS1 6AE".into(),
                    gp_ods: practice.clone(),
                    nominated_pharmacy: Some(pharmacy.clone()),
                    version: 1,
                }
            } else {
                let year = 1930 + pick(94);
                let month = 1 + pick(12);
                let day = 1 + pick(28);
                let gender = if pick(2) == 0 { "female" } else { "male" };
                Patient {
                    nhs_number: nhs_number.clone(),
                    given: GIVEN[pick(GIVEN.len())].into(),
                    family: FAMILY[pick(FAMILY.len())].into(),
                    birth_date: format!("{year:04}-{month:02}-{day:02}"),
                    gender: gender.into(),
                    address: format!("{} {}", 1 + pick(200), STREETS[pick(STREETS.len())]),
                    postcode: POSTCODES[pick(POSTCODES.len())].into(),
                    gp_ods: practice.clone(),
                    nominated_pharmacy: (pick(4) != 0).then(|| pharmacy.clone()),
                    version: 1,
                }
            };
            patients.insert(
                nhs_number,
                Entry {
                    patient,
                    segment: None,
                },
            );
        }
        Ok(Pds { patients })
    }

    /// Number of patients.
    pub fn len(&self) -> usize {
        self.patients.len()
    }

    /// True with no patients.
    pub fn is_empty(&self) -> bool {
        self.patients.is_empty()
    }

    /// The patient with this number.
    pub fn get(&self, nhs_number: &NhsNumber) -> Result<&Patient, ServiceError> {
        self.patients
            .get(nhs_number)
            .map(|e| &e.patient)
            .ok_or_else(|| ServiceError::PatientNotFound {
                nhs_number: nhs_number.to_string(),
            })
    }

    /// Patients matching every given criterion, in NHS-number order, at
    /// most `max`.
    pub fn search(&self, query: &SearchQuery, max: usize) -> Result<Vec<&Patient>, ServiceError> {
        if query.family.is_none()
            && query.given.is_none()
            && query.birth_date.is_none()
            && query.postcode.is_none()
        {
            return Err(ServiceError::BadRequest {
                why: "give at least one of family, given, birth_date, postcode".into(),
            });
        }
        let norm = |s: &str| s.replace(' ', "").to_ascii_lowercase();
        let matches = |p: &Patient| {
            query
                .family
                .as_ref()
                .is_none_or(|f| f.eq_ignore_ascii_case(&p.family))
                && query
                    .given
                    .as_ref()
                    .is_none_or(|g| g.eq_ignore_ascii_case(&p.given))
                && query.birth_date.as_ref().is_none_or(|b| *b == p.birth_date)
                && query
                    .postcode
                    .as_ref()
                    .is_none_or(|c| norm(c) == norm(&p.postcode))
        };
        Ok(self
            .patients
            .values()
            .map(|e| &e.patient)
            .filter(|p| matches(p))
            .take(max)
            .collect())
    }

    /// Checks an update and returns the patient's new state (to be logged).
    pub fn check_update(
        &self,
        nhs_number: &NhsNumber,
        expected_version: u64,
        changes: &PatientChanges,
    ) -> Result<Patient, ServiceError> {
        let current = self.get(nhs_number)?;
        if current.version != expected_version {
            return Err(ServiceError::VersionConflict {
                nhs_number: nhs_number.to_string(),
                expected: expected_version,
                current: current.version,
            });
        }
        let mut next = current.clone();
        let text = |field: &str, v: &Option<String>, into: &mut String| {
            if let Some(v) = v {
                if v.trim().is_empty()
                    || v.len() > MAX_FIELD_BYTES
                    || v.chars().any(char::is_control)
                {
                    return Err(ServiceError::BadRequest {
                        why: format!("{field} must be 1 to {MAX_FIELD_BYTES} bytes of text without control characters"),
                    });
                }
                *into = v.clone();
            }
            Ok(())
        };
        text("given", &changes.given, &mut next.given)?;
        text("family", &changes.family, &mut next.family)?;
        text("address", &changes.address, &mut next.address)?;
        text("postcode", &changes.postcode, &mut next.postcode)?;
        if let Some(gp) = &changes.gp_ods {
            next.gp_ods = gp.clone();
        }
        if let Some(pharmacy) = &changes.nominated_pharmacy {
            next.nominated_pharmacy = Some(pharmacy.clone());
        }
        next.version = current.version.saturating_add(1);
        Ok(next)
    }

    /// Applies a durable patient record logged in `segment`.
    pub fn apply(&mut self, patient: Patient, segment: u64) {
        self.patients.insert(
            patient.nhs_number.clone(),
            Entry {
                patient,
                segment: Some(segment),
            },
        );
    }

    /// Patients whose latest record lies in a segment at or below `upto`.
    pub fn referencing(&self, upto: u64) -> impl Iterator<Item = &Patient> {
        self.patients
            .values()
            .filter(move |e| e.segment.is_some_and(|s| s <= upto))
            .map(|e| &e.patient)
    }
}
