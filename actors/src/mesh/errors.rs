//! How the node's errors read in MESH: status, MESH code and event.
//!
//! Invariant: the node's own message (which says what to change) and
//! stable code travel unchanged; only the HTTP status and MESH code are
//! chosen here. Retryable conditions (shutting down, a restarting
//! partition) are 503, so a client's retry policy applies.

use spine_core::directory::DirectoryError;
use spine_core::message::StoreError;
use spine_core::ErrorCode;
use spine_protocol::mesh::auth::AuthError;
use spine_protocol::mesh::error::MeshError;

use crate::node::RequestError;

/// The MESH error for a node error during `event` (`SEND`, `RECEIVE`...).
pub(crate) fn from_node(e: &RequestError, event: &'static str) -> MeshError {
    let code = e.code();
    let text = e.to_string();
    let (status, mesh_code) = match e {
        RequestError::Store(s) => match s {
            StoreError::NotFound(_) => (404, "20"),
            StoreError::NotRecipient { .. } | StoreError::NotSender { .. } => (403, "07"),
            StoreError::UploadComplete(_) => (423, ""),
            StoreError::ChunkOutOfRange { .. } => (404, ""),
            StoreError::WrongStatus { .. } => (410, ""),
            StoreError::Envelope(_) | StoreError::IdempotencyKey(_) => (400, "06"),
            StoreError::Limit { .. } => (429, ""),
            StoreError::AlreadyExists(_) | StoreError::Replay(_) => (500, ""),
        },
        RequestError::Directory(d) => match d {
            DirectoryError::RecipientUnregistered { .. } => (417, "12"),
            DirectoryError::RecipientInactive { .. } => (417, "14"),
            DirectoryError::WorkflowNotRegistered { .. } => (417, "17"),
            DirectoryError::SenderUnknown { .. }
            | DirectoryError::MailboxInactive { .. }
            | DirectoryError::AuthenticationFailed => (403, "07"),
            _ => (400, "06"),
        },
        RequestError::Filter(_) | RequestError::Invalid(_) => (400, "06"),
        RequestError::LogFailed(_)
        | RequestError::ShuttingDown
        | RequestError::Unavailable(_)
        | RequestError::NodeFailed(_) => (503, ""),
        RequestError::OutcomeUnknown => (503, ""),
        RequestError::Read(_) => (500, ""),
    };
    MeshError::new(status, mesh_code, event, code, text)
}

/// The 403 for a refused token (same body whatever the reason, apart from
/// the description, which never includes secrets).
pub(crate) fn from_auth(e: &AuthError) -> MeshError {
    MeshError::new(403, "", "AUTHENTICATION", e.code(), e.to_string())
}

/// A path parameter that is not a valid id.
pub(crate) fn bad_id(what: &str, why: impl std::fmt::Display) -> MeshError {
    MeshError::new(
        400,
        "06",
        "RECEIVE",
        "MESH_BAD_PATH_PARAMETER",
        format!("the {what} in the path is invalid: {why}"),
    )
}
