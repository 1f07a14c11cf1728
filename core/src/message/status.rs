//! The per-message state machine.
//!
//! ```text
//! (create) ──▶ Uploading ──(last chunk)──▶ Accepted ──(ack)──▶ Acknowledged
//!     └──(single chunk)──────────────────▶ Accepted ──(inbox expiry)──▶ Expired
//! any state ──(purge, 30 days after creation, or a sandbox reset)──▶ forgotten
//! ```
//!
//! Transitions happen only by applying a logged event, so replaying the log
//! retraces them exactly.

use serde::Serialize;

/// Where a message is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[rkyv(derive(Debug, PartialEq))]
pub enum MessageStatus {
    /// A chunked message whose chunks are still arriving; not in any inbox.
    Uploading,
    /// Complete and waiting in the recipient's inbox.
    Accepted,
    /// Collected and acknowledged by the recipient; out of the inbox.
    Acknowledged,
    /// Not acknowledged within the inbox expiry; out of the inbox, and the
    /// sender got a non-delivery report.
    Expired,
}

impl MessageStatus {
    /// Lower-case name, as MESH tracking reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Uploading => "uploading",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Acknowledged => "acknowledged",
            MessageStatus::Expired => "expired",
        }
    }

    /// Whether the message is waiting in an inbox.
    pub fn in_inbox(self) -> bool {
        self == MessageStatus::Accepted
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
