//! Service request/response on the wire: the typed values of the
//! `SERVICE_REQUEST`, `REGISTER_PROVIDER`, `PROVIDER_REPLY`,
//! `SERVICE_RESPONSE`, `PROVIDER_REGISTERED`, `PROVIDER_REPLY_OK` and
//! `SERVICE_CALL` frames, their archived meta forms and their checks.
//!
//! Invariants and why:
//! - Every text field is bounded ([`MAX_SERVICE_FIELD_BYTES`] and friends)
//!   and free of control characters (they reach logs), and checked by both
//!   encoder and decoder, so whatever encodes also decodes.
//! - A fault (an error answer) carries no body: the frame's payload must be
//!   empty, or the frame is refused as inconsistent. Fault codes are
//!   `[A-Z0-9_]`, like Spine's stable codes, so clients can switch on them.
//! - The node, not the codec, decides what a service, interaction or ASID
//!   means; the codec only guarantees shape and bounds.

use bytes::Bytes;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::frame::FrameKind;
use crate::limits::check_len;

/// Longest service name, operation, ASID or ODS code on the wire.
pub const MAX_SERVICE_FIELD_BYTES: usize = 32;
/// Longest interaction id or message id on the wire.
pub const MAX_INTERACTION_BYTES: usize = 128;
/// Longest fault code.
pub const MAX_FAULT_CODE_BYTES: usize = 64;
/// Longest fault message.
pub const MAX_FAULT_MESSAGE_BYTES: usize = 1024;

/// An error answer to a service request: a stable code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFault {
    /// The code (`[A-Z0-9_]`, 1..=64), e.g. `ID_NHS_NUMBER_CHECK_DIGIT`.
    pub code: String,
    /// A human explanation.
    pub message: String,
}

impl ServiceFault {
    /// Checks bounds and character sets.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= MAX_FAULT_CODE_BYTES
            && self
                .code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !code_ok {
            return Err(ProtocolError::FieldInvalid {
                field: "fault.code",
                why: format!("use 1 to {MAX_FAULT_CODE_BYTES} of A-Z, 0-9 and _"),
            });
        }
        check_len("fault.message", &self.message, MAX_FAULT_MESSAGE_BYTES)?;
        check_text("fault.message", &self.message)
    }

    /// A fault whose message is cut to fit (at a character boundary).
    pub fn new(code: &str, message: &str) -> ServiceFault {
        let mut message = message.replace(|c: char| c.is_control(), " ");
        if message.len() > MAX_FAULT_MESSAGE_BYTES {
            let mut end = MAX_FAULT_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .take(MAX_FAULT_CODE_BYTES)
            .collect();
        ServiceFault {
            code: if code.is_empty() {
                "SVC_PROVIDER_ERROR".into()
            } else {
                code
            },
            message,
        }
    }
}

/// A request delivered to an external provider (`SERVICE_CALL`, id 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCall {
    /// Quote this in `PROVIDER_REPLY`; the same on a retry.
    pub correlation: u64,
    /// The service.
    pub service: String,
    /// The full interaction id.
    pub interaction: String,
    /// The operation name.
    pub operation: String,
    /// The caller's ASID.
    pub asid: String,
    /// The caller's ODS code.
    pub ods: String,
    /// The caller's message id, if any.
    pub message_id: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl ServiceCall {
    /// Checks bounds.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        check_field("service", &self.service, MAX_SERVICE_FIELD_BYTES)?;
        check_field("interaction", &self.interaction, MAX_INTERACTION_BYTES)?;
        check_field("operation", &self.operation, MAX_SERVICE_FIELD_BYTES)?;
        check_field("asid", &self.asid, MAX_SERVICE_FIELD_BYTES)?;
        check_field("ods", &self.ods, MAX_SERVICE_FIELD_BYTES)?;
        check_opt_field(
            "message_id",
            self.message_id.as_deref(),
            MAX_INTERACTION_BYTES,
        )
    }

    pub(crate) fn to_meta(&self) -> ServiceCallMeta {
        ServiceCallMeta {
            correlation: self.correlation,
            service: self.service.clone(),
            interaction: self.interaction.clone(),
            operation: self.operation.clone(),
            asid: self.asid.clone(),
            ods: self.ods.clone(),
            message_id: self.message_id.clone(),
        }
    }

    pub(crate) fn from_meta(m: ServiceCallMeta, body: Bytes) -> ServiceCall {
        ServiceCall {
            correlation: m.correlation,
            service: m.service,
            interaction: m.interaction,
            operation: m.operation,
            asid: m.asid,
            ods: m.ods,
            message_id: m.message_id,
            body,
        }
    }
}

/// A non-empty, bounded, printable field.
pub(crate) fn check_field(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ProtocolError> {
    if value.is_empty() {
        return Err(ProtocolError::FieldInvalid {
            field,
            why: "it is empty".into(),
        });
    }
    check_len(field, value, max)?;
    check_text(field, value)
}

/// [`check_field`] for an optional field.
pub(crate) fn check_opt_field(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), ProtocolError> {
    value.map_or(Ok(()), |v| check_field(field, v, max))
}

fn check_text(field: &'static str, value: &str) -> Result<(), ProtocolError> {
    match value.chars().position(char::is_control) {
        Some(position) => Err(ProtocolError::FieldInvalid {
            field,
            why: format!("it contains a control character at position {position}"),
        }),
        None => Ok(()),
    }
}

/// Refuses a payload on a fault.
pub(crate) fn fault_has_no_body(
    kind: FrameKind,
    fault: &Option<ServiceFaultMeta>,
    payload: &Bytes,
) -> Result<(), ProtocolError> {
    if fault.is_some() && !payload.is_empty() {
        return Err(ProtocolError::Inconsistent {
            kind,
            why: "a fault carries no body; send an empty payload".into(),
        });
    }
    Ok(())
}

/// The outcome as its meta: `None` for success.
pub(crate) fn fault_meta(result: &Result<Bytes, ServiceFault>) -> Option<ServiceFaultMeta> {
    result.as_ref().err().map(|f| ServiceFaultMeta {
        code: f.code.clone(),
        message: f.message.clone(),
    })
}

/// The outcome from its meta and the payload.
pub(crate) fn outcome(
    fault: Option<ServiceFaultMeta>,
    payload: Bytes,
) -> Result<Bytes, ServiceFault> {
    match fault {
        Some(f) => Err(ServiceFault {
            code: f.code,
            message: f.message,
        }),
        None => Ok(payload),
    }
}

/// Checks an outcome.
pub(crate) fn validate_outcome(result: &Result<Bytes, ServiceFault>) -> Result<(), ProtocolError> {
    match result {
        Ok(_) => Ok(()),
        Err(f) => f.validate(),
    }
}

/// `SERVICE_REQUEST`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceRequestMeta {
    pub service: String,
    pub interaction: String,
    pub asid: Option<String>,
    pub message_id: Option<String>,
}

/// `REGISTER_PROVIDER`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegisterProviderMeta {
    pub service: String,
}

/// A fault.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceFaultMeta {
    pub code: String,
    pub message: String,
}

/// `PROVIDER_REPLY`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderReplyMeta {
    pub correlation: u64,
    pub fault: Option<ServiceFaultMeta>,
}

/// `SERVICE_RESPONSE`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceResponseMeta {
    pub fault: Option<ServiceFaultMeta>,
}

/// `PROVIDER_REGISTERED`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderRegisteredMeta {
    pub provider_id: u64,
    pub service: String,
}

/// `SERVICE_CALL`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceCallMeta {
    pub correlation: u64,
    pub service: String,
    pub interaction: String,
    pub operation: String,
    pub asid: String,
    pub ods: String,
    pub message_id: Option<String>,
}
