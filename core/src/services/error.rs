//! [`ServiceError`]: why a service request was refused or failed.
//!
//! Every variant has a stable code (`SVC_`, `PDS_`, `SCR_`, `EPS_`) that
//! travels on the wire in a service response, so clients and the CLI can
//! switch on it. Messages say what is wrong and what would be accepted.

use thiserror::Error;

use crate::ids::IdError;
use crate::ErrorCode;

/// A refused or failed service request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceError {
    /// The interaction id is not in the service directory.
    #[error("interaction {interaction} is not known to the service directory; check the interaction id (for example urn:nhs:names:services:pdsquery/QUPA_IN040000UK32)")]
    UnknownInteraction {
        /// The interaction asked for.
        interaction: String,
    },
    /// The interaction exists but belongs to another service.
    #[error("interaction {interaction} belongs to service {actual}, not {requested}")]
    WrongService {
        /// The interaction.
        interaction: String,
        /// The service named by the caller.
        requested: String,
        /// The service it belongs to.
        actual: String,
    },
    /// The service is not known.
    #[error("service {service} is not known to the service directory")]
    UnknownService {
        /// The service.
        service: String,
    },
    /// The sending system is not accredited for the interaction.
    #[error("{why}")]
    NotAccredited {
        /// Why (names the ASID and the interaction).
        why: String,
    },
    /// No healthy provider serves the service right now.
    #[error("no provider of service {service} is available; try again later")]
    NoProvider {
        /// The service.
        service: String,
    },
    /// Too many requests are waiting for this service.
    #[error("service {service} has {limit} requests pending, its limit; try again shortly")]
    Busy {
        /// The service.
        service: String,
        /// The configured limit.
        limit: usize,
    },
    /// No response within the time allowed, after every permitted attempt.
    #[error(
        "service {service} did not respond within {timeout_ms} ms (after {attempts} attempt(s))"
    )]
    Timeout {
        /// The service.
        service: String,
        /// Per-attempt timeout.
        timeout_ms: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// The provider handling the request went away and no attempt is left.
    #[error("the provider of service {service} handling this request disconnected")]
    ProviderLost {
        /// The service.
        service: String,
    },
    /// Too many providers registered for one service.
    #[error("service {service} already has {limit} providers, its limit")]
    TooManyProviders {
        /// The service.
        service: String,
        /// The limit.
        limit: usize,
    },
    /// The request body is not what the operation expects.
    #[error("the request body is invalid: {why}")]
    BadRequest {
        /// Why.
        why: String,
    },
    /// The request body is larger than allowed.
    #[error("the request body is {len} bytes; the most accepted is {max}")]
    BodyTooLarge {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An NHS number failed validation (length, digits or check digit).
    #[error("{0}")]
    NhsNumber(IdError),
    /// An id in the request is invalid.
    #[error("{0}")]
    Id(IdError),
    /// PDS: no patient with this NHS number.
    #[error("no patient with NHS number {nhs_number}")]
    PatientNotFound {
        /// The number.
        nhs_number: String,
    },
    /// PDS: update based on an old version.
    #[error("patient {nhs_number} is at version {current}, not {expected}; get the patient again and reapply the change")]
    VersionConflict {
        /// The number.
        nhs_number: String,
        /// Version the caller based its change on.
        expected: u64,
        /// The current version.
        current: u64,
    },
    /// SCR: no summary for this patient.
    #[error("no summary care record for NHS number {nhs_number}")]
    SummaryNotFound {
        /// The number.
        nhs_number: String,
    },
    /// EPS: no such prescription.
    #[error("no prescription {id}")]
    PrescriptionNotFound {
        /// The prescription id.
        id: String,
    },
    /// EPS: a prescription with this id already exists.
    #[error("prescription {id} already exists")]
    PrescriptionExists {
        /// The prescription id.
        id: String,
    },
    /// EPS: the transition is not allowed from the current status.
    #[error("prescription {id} is {status}; cannot {action} it")]
    InvalidTransition {
        /// The prescription id.
        id: String,
        /// Current status.
        status: String,
        /// What was attempted.
        action: String,
    },
    /// EPS: the pharmacy is not the one the prescription was released to.
    #[error("prescription {id} is not released to {pharmacy}")]
    WrongPharmacy {
        /// The prescription id.
        id: String,
        /// The pharmacy asking.
        pharmacy: String,
    },
    /// The operation is not one the service offers.
    #[error("service {service} has no operation {operation}")]
    UnknownOperation {
        /// The service.
        service: String,
        /// The operation.
        operation: String,
    },
    /// A stored-state limit would be exceeded.
    #[error("{what} limit of {limit} reached")]
    StateLimit {
        /// What is full.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The request could not be made durable or the node is stopping.
    #[error("the service could not complete the request: {why}")]
    Unavailable {
        /// Why.
        why: String,
    },
    /// An external provider answered with its own error.
    #[error("{message}")]
    Provider {
        /// The provider's code (`[A-Z0-9_]`, at most 64 characters).
        code: String,
        /// Its message.
        message: String,
    },
}

impl ErrorCode for ServiceError {
    fn code(&self) -> &'static str {
        match self {
            ServiceError::UnknownInteraction { .. } => "SVC_UNKNOWN_INTERACTION",
            ServiceError::WrongService { .. } => "SVC_WRONG_SERVICE",
            ServiceError::UnknownService { .. } => "SVC_UNKNOWN_SERVICE",
            ServiceError::NotAccredited { .. } => "SVC_NOT_ACCREDITED",
            ServiceError::NoProvider { .. } => "SVC_NO_PROVIDER",
            ServiceError::Busy { .. } => "SVC_BUSY",
            ServiceError::Timeout { .. } => "SVC_TIMEOUT",
            ServiceError::ProviderLost { .. } => "SVC_PROVIDER_LOST",
            ServiceError::TooManyProviders { .. } => "SVC_TOO_MANY_PROVIDERS",
            ServiceError::BadRequest { .. } => "SVC_BAD_REQUEST",
            ServiceError::BodyTooLarge { .. } => "SVC_BODY_TOO_LARGE",
            ServiceError::NhsNumber(e) | ServiceError::Id(e) => e.code(),
            ServiceError::PatientNotFound { .. } => "PDS_PATIENT_NOT_FOUND",
            ServiceError::VersionConflict { .. } => "PDS_VERSION_CONFLICT",
            ServiceError::SummaryNotFound { .. } => "SCR_NOT_FOUND",
            ServiceError::PrescriptionNotFound { .. } => "EPS_NOT_FOUND",
            ServiceError::PrescriptionExists { .. } => "EPS_EXISTS",
            ServiceError::InvalidTransition { .. } => "EPS_INVALID_TRANSITION",
            ServiceError::WrongPharmacy { .. } => "EPS_WRONG_PHARMACY",
            ServiceError::UnknownOperation { .. } => "SVC_UNKNOWN_OPERATION",
            ServiceError::StateLimit { .. } => "SVC_STATE_LIMIT",
            ServiceError::Unavailable { .. } => "SVC_UNAVAILABLE",
            ServiceError::Provider { .. } => "SVC_PROVIDER_ERROR",
        }
    }
}

impl ServiceError {
    /// The code to put on the wire: the stable code, or an external
    /// provider's own code.
    pub fn wire_code(&self) -> &str {
        match self {
            ServiceError::Provider { code, .. } => code,
            other => other.code(),
        }
    }

    /// A bad-request error from a JSON decoding failure.
    pub fn bad_json(e: &serde_json::Error) -> ServiceError {
        ServiceError::BadRequest {
            why: format!("{e} (the body must be a JSON object)"),
        }
    }
}
