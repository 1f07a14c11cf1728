//! The built-in reference services (PDS, SCR, EPS) behind one sans-IO
//! front: a request (operation name, caller, JSON body) is checked against
//! current state and yields a response plus the records that make it true;
//! the caller logs the records and only then applies them
//! (check → log → apply, as for messages).
//!
//! Invariants and why:
//! - [`ReferenceServices::handle`] never mutates: a request whose records
//!   never become durable leaves no trace. Reads yield no records.
//! - Requests are handled one at a time against applied state (the actor
//!   awaits durability before the next check), which is what makes EPS
//!   release exactly-once under concurrency.
//! - Replay applies every service record in log order; since records are
//!   full states, the result equals the state before the restart.
//! - NHS numbers in bodies are parsed explicitly so a bad one is refused
//!   with its own code (`ID_NHS_NUMBER_CHECK_DIGIT`), not a generic one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{NhsNumber, OdsCode};
use crate::time::Timestamp;
use crate::wal::RecoveredRecord;

use super::directory::Builtin;
use super::eps::{Eps, EpsLimits, NewPrescription};
use super::error::ServiceError;
use super::names::Asid;
use super::pds::{PatientChanges, Pds, SearchQuery};
use super::record::ServiceRecord;
use super::scr::{Scr, ScrLimits};

/// Settings of the reference services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceConfig {
    /// Seed of the synthetic patients.
    pub seed: u64,
    /// Number of synthetic patients (0..=[`MAX_SEED_PATIENTS`]).
    pub patients: usize,
    /// SCR limits.
    pub scr: ScrLimits,
    /// EPS limits.
    pub eps: EpsLimits,
    /// Most patients one search returns.
    pub max_search_results: usize,
}

/// Most synthetic patients.
pub const MAX_SEED_PATIENTS: usize = 1_000_000;

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            seed: 1,
            patients: 1_000,
            scr: ScrLimits::default(),
            eps: EpsLimits::default(),
            max_search_results: 50,
        }
    }
}

/// Who is asking: the accredited system and its organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The system's ASID.
    pub asid: Asid,
    /// Its organisation.
    pub ods: OdsCode,
}

/// The outcome of a request: the response and the records to log first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The response body (JSON).
    pub response: Bytes,
    /// Records that must be durable before the response is given.
    pub records: Vec<ServiceRecord>,
}

/// The reference services' state.
#[derive(Debug, Clone)]
pub struct ReferenceServices {
    config: ReferenceConfig,
    /// PDS.
    pub pds: Pds,
    /// SCR.
    pub scr: Scr,
    /// EPS.
    pub eps: Eps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByNumber {
    nhs_number: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    nhs_number: String,
    version: u64,
    #[serde(default)]
    changes: PatientChanges,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    nhs_number: String,
    summary: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    id: String,
    nhs_number: String,
    nominated_pharmacy: Option<OdsCode>,
    items: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ById {
    id: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Release {
    id: Option<String>,
}

#[derive(Serialize)]
struct Patients<'a> {
    patients: Vec<&'a super::pds::Patient>,
}

#[derive(Serialize)]
struct Released {
    released: Vec<super::eps::Prescription>,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(body).map_err(|e| ServiceError::bad_json(&e))
}

fn nhs(text: &str) -> Result<NhsNumber, ServiceError> {
    NhsNumber::parse(text).map_err(ServiceError::NhsNumber)
}

fn json<T: Serialize>(value: &T) -> Result<Bytes, ServiceError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ServiceError::Unavailable { why: e.to_string() })
}

fn read(response: Bytes) -> Handled {
    Handled {
        response,
        records: Vec::new(),
    }
}

impl ReferenceServices {
    /// Fresh state: PDS seeded, SCR and EPS empty.
    pub fn new(config: ReferenceConfig) -> Result<ReferenceServices, ServiceError> {
        let pds = Pds::seeded(config.seed, config.patients.min(MAX_SEED_PATIENTS))?;
        Ok(ReferenceServices {
            config,
            pds,
            scr: Scr::default(),
            eps: Eps::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ReferenceConfig {
        &self.config
    }

    /// Checks a request against current state (never mutates).
    pub fn handle(
        &self,
        service: Builtin,
        operation: &str,
        caller: &Caller,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Handled, ServiceError> {
        match (service, operation) {
            (Builtin::Pds, "get") => {
                let q: ByNumber = parse(body)?;
                Ok(read(json(self.pds.get(&nhs(&q.nhs_number)?)?)?))
            }
            (Builtin::Pds, "search") => {
                let q: SearchQuery = parse(body)?;
                let patients = self.pds.search(&q, self.config.max_search_results)?;
                Ok(read(json(&Patients { patients })?))
            }
            (Builtin::Pds, "update") => {
                let u: Update = parse(body)?;
                let next = self
                    .pds
                    .check_update(&nhs(&u.nhs_number)?, u.version, &u.changes)?;
                Ok(Handled {
                    response: json(&next)?,
                    records: vec![ServiceRecord::Patient(next)],
                })
            }
            (Builtin::Scr, "upload") => {
                let u: Upload = parse(body)?;
                let content =
                    serde_json::to_string(&u.summary).map_err(|e| ServiceError::bad_json(&e))?;
                let next = self.scr.check_upload(
                    nhs(&u.nhs_number)?,
                    caller.ods.clone(),
                    content,
                    now,
                    &self.config.scr,
                )?;
                Ok(Handled {
                    response: json(&next)?,
                    records: vec![ServiceRecord::Summary(next)],
                })
            }
            (Builtin::Scr, "get") => {
                let q: ByNumber = parse(body)?;
                Ok(read(json(self.scr.get(&nhs(&q.nhs_number)?)?)?))
            }
            (Builtin::Eps, "create") => {
                let c: Create = parse(body)?;
                let nhs_number = nhs(&c.nhs_number)?;
                // Default nomination: the patient's nominated pharmacy in PDS.
                let nominated_pharmacy = match c.nominated_pharmacy {
                    Some(p) => p,
                    None => self
                        .pds
                        .get(&nhs_number)?
                        .nominated_pharmacy
                        .clone()
                        .ok_or_else(|| ServiceError::BadRequest {
                            why: "the patient has no nominated pharmacy; give nominated_pharmacy"
                                .into(),
                        })?,
                };
                let next = self.eps.check_create(
                    NewPrescription {
                        id: c.id,
                        nhs_number,
                        nominated_pharmacy,
                        items: c.items,
                    },
                    &caller.ods,
                    now,
                    &self.config.eps,
                )?;
                Ok(Handled {
                    response: json(&next)?,
                    records: vec![ServiceRecord::Prescription(next)],
                })
            }
            (Builtin::Eps, "release") => {
                let r: Release = if body.iter().all(u8::is_ascii_whitespace) {
                    Release::default()
                } else {
                    parse(body)?
                };
                let released =
                    self.eps
                        .check_release(r.id.as_deref(), &caller.ods, now, &self.config.eps)?;
                Ok(Handled {
                    response: json(&Released {
                        released: released.clone(),
                    })?,
                    records: released
                        .into_iter()
                        .map(ServiceRecord::Prescription)
                        .collect(),
                })
            }
            (Builtin::Eps, "dispense") => {
                let q: ById = parse(body)?;
                let next = self.eps.check_dispense(&q.id, &caller.ods, now)?;
                Ok(Handled {
                    response: json(&next)?,
                    records: vec![ServiceRecord::Prescription(next)],
                })
            }
            (Builtin::Eps, "claim") => {
                let q: ById = parse(body)?;
                let next = self.eps.check_claim(&q.id, &caller.ods, now)?;
                Ok(Handled {
                    response: json(&next)?,
                    records: vec![ServiceRecord::Prescription(next)],
                })
            }
            (Builtin::Eps, "get") => {
                let q: ById = parse(body)?;
                Ok(read(json(self.eps.get(&q.id)?)?))
            }
            (service, operation) => Err(ServiceError::UnknownOperation {
                service: service.as_str().into(),
                operation: operation.chars().take(32).collect(),
            }),
        }
    }

    /// Applies a durable record logged in `segment`.
    pub fn apply(&mut self, record: ServiceRecord, segment: u64) {
        match record {
            ServiceRecord::Patient(p) => self.pds.apply(p, segment),
            ServiceRecord::Summary(s) => self.scr.apply(s, segment),
            ServiceRecord::Prescription(p) => self.eps.apply(p, segment),
        }
    }

    /// Replays a recovered record (other kinds are skipped).
    pub fn replay(&mut self, record: &RecoveredRecord) -> Result<(), String> {
        if let Some(r) = ServiceRecord::from_record(record.kind, &record.payload)? {
            self.apply(r, record.location.segment);
        }
        Ok(())
    }

    /// Records that carry forward every entity whose latest record lies in
    /// a segment at or below `upto`, so that segment can be removed.
    pub fn carry(&self, upto: u64) -> Vec<ServiceRecord> {
        let patients = self
            .pds
            .referencing(upto)
            .cloned()
            .map(ServiceRecord::Patient);
        let summaries = self
            .scr
            .referencing(upto)
            .cloned()
            .map(ServiceRecord::Summary);
        let prescriptions = self
            .eps
            .referencing(upto)
            .cloned()
            .map(ServiceRecord::Prescription);
        patients.chain(summaries).chain(prescriptions).collect()
    }
}

impl crate::message::SegmentHolder for ReferenceServices {
    fn carry_records(
        &self,
        upto: u64,
    ) -> Result<Vec<crate::wal::PendingRecord>, crate::wal::WalError> {
        self.carry(upto)
            .iter()
            .map(|r| r.to_record().map_err(crate::wal::WalError::InvalidBatch))
            .collect()
    }

    fn carried(
        &mut self,
        record: &crate::wal::PendingRecord,
        location: crate::wal::RecordLocation,
    ) -> Result<(), crate::wal::WalError> {
        let decoded = ServiceRecord::from_record(record.kind, &record.head)
            .map_err(crate::wal::WalError::InvalidBatch)?;
        if let Some(r) = decoded {
            self.apply(r, location.segment);
        }
        Ok(())
    }
}
