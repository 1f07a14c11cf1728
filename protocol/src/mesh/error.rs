//! [`MeshError`]: an HTTP error answer in MESH's terms: status, MESH error
//! code and event, a description that says what to fix, and Spine's own
//! stable code; rendered as the v1 or v2 JSON error body.
//!
//! Invariants and why:
//! - Every 4xx has a JSON body (mesh-client calls `response.json()` on a
//!   failed send and looks for `errorDescription` or `detail`).
//! - Descriptions never contain a password, token or shared key; offending
//!   input is echoed only truncated ([`echo`]).

use serde_json::{json, Value};

use super::version::ApiVersion;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshError {
    /// HTTP status.
    pub status: u16,
    /// MESH error code (`"06"`, `"12"`, `"EPL-151"`...), empty if none fits.
    pub mesh_code: &'static str,
    /// MESH error event (`SEND`, `TRANSFER`, `COLLECT`, `RECEIVE`, `AUTH`...).
    pub event: &'static str,
    /// What went wrong and what to change.
    pub description: String,
    /// Spine's stable error code (`MESH_*`, `NODE_*`, ...).
    pub spine_code: &'static str,
    /// The message the error is about, if any.
    pub message_id: Option<String>,
}

impl MeshError {
    /// A new error.
    pub fn new(
        status: u16,
        mesh_code: &'static str,
        event: &'static str,
        spine_code: &'static str,
        description: impl Into<String>,
    ) -> MeshError {
        MeshError {
            status,
            mesh_code,
            event,
            description: description.into(),
            spine_code,
            message_id: None,
        }
    }

    /// The same error about `id`.
    pub fn about(mut self, id: impl Into<String>) -> MeshError {
        self.message_id = Some(id.into());
        self
    }

    /// The JSON error body in `version`'s shape. `internal_id` lets an
    /// operator find the request in the logs.
    pub fn body(&self, version: ApiVersion, internal_id: &str) -> Value {
        match version {
            ApiVersion::V1 => json!({
                "messageID": self.message_id,
                "errorEvent": self.event,
                "errorCode": self.mesh_code,
                "errorDescription": self.description,
                "spineErrorCode": self.spine_code,
                "internalID": internal_id,
            }),
            ApiVersion::V2 => json!({
                "message_id": self.message_id,
                "internal_id": internal_id,
                "detail": [{
                    "event": self.event,
                    "code": self.mesh_code,
                    "msg": self.description,
                }],
                "spine_error_code": self.spine_code,
            }),
        }
    }
}

/// At most 64 characters of untrusted input, for error messages.
pub fn echo(input: &str) -> String {
    let mut s: String = input.chars().take(64).collect();
    if s.len() < input.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_fields_mesh_client_looks_for() {
        let e = MeshError::new(
            417,
            "12",
            "SEND",
            "MESH_RECIPIENT_UNKNOWN",
            "no such mailbox",
        )
        .about("ID1");
        let v1 = e.body(ApiVersion::V1, "r1");
        assert_eq!(v1["errorDescription"], "no such mailbox");
        assert_eq!(v1["errorCode"], "12");
        assert_eq!(v1["messageID"], "ID1");
        let v2 = e.body(ApiVersion::V2, "r1");
        assert_eq!(v2["detail"][0]["code"], "12");
        assert_eq!(v2["detail"][0]["event"], "SEND");
        assert_eq!(v2["internal_id"], "r1");
        assert_eq!(v2["spine_error_code"], "MESH_RECIPIENT_UNKNOWN");
    }

    #[test]
    fn echo_is_bounded() {
        assert_eq!(echo("abc"), "abc");
        assert_eq!(echo(&"x".repeat(100)).chars().count(), 65);
    }
}
