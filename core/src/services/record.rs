//! Service state records: what the log holds for the reference services.
//!
//! Every change to a patient, summary or prescription is logged as one WAL
//! record of kind [`KIND_SERVICE_STATE`] whose payload is the entity's full
//! new state as JSON ([`ServiceRecord`]). Full states, not deltas, make
//! replay "last record wins" and let compaction carry an entity forward by
//! re-logging it, with no ordering subtleties.
//!
//! Kind bytes 32..=63 belong to services; message replay skips them (see
//! [`is_service_kind`]) and service replay skips everything else, so the two
//! share one log without knowing each other's formats. Decoding re-validates
//! every id (the types' `Deserialize` parse them), so logged bytes are never
//! trusted as typed values until checked.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::wal::PendingRecord;

use super::eps::Prescription;
use super::pds::Patient;
use super::scr::Summary;

/// Kind byte of a service state record.
pub const KIND_SERVICE_STATE: u8 = 32;

/// True for kind bytes owned by services (32..=63).
pub fn is_service_kind(kind: u8) -> bool {
    (32..=63).contains(&kind)
}

/// The full new state of one entity of a reference service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entity", rename_all = "snake_case")]
pub enum ServiceRecord {
    /// A PDS patient.
    Patient(Patient),
    /// An SCR summary.
    Summary(Summary),
    /// An EPS prescription.
    Prescription(Prescription),
}

impl ServiceRecord {
    /// The record to append.
    pub fn to_record(&self) -> Result<PendingRecord, String> {
        let head = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        Ok(PendingRecord {
            kind: KIND_SERVICE_STATE,
            head: Bytes::from(head),
            body: Bytes::new(),
        })
    }

    /// Decodes a record's payload; `Ok(None)` for kinds that are not
    /// service records.
    pub fn from_record(kind: u8, payload: &[u8]) -> Result<Option<ServiceRecord>, String> {
        match kind {
            KIND_SERVICE_STATE => serde_json::from_slice(payload)
                .map(Some)
                .map_err(|e| format!("service record: {e}")),
            k if is_service_kind(k) => Err(format!("unknown service record kind {k}")),
            _ => Ok(None),
        }
    }
}
