//! [`SendHeader`]: what a sender says about a new message, apart from who
//! it is (the authenticated sender) and its bytes. The node's send request,
//! the native protocol's `SEND` frame and (later) MESH's `Mex-*` send
//! headers all carry exactly this, so it is defined once, here.
//!
//! Invariant: ids are validated types; the free-text fields are checked
//! against the MESH limits when the node builds the envelope
//! (`Envelope::validate`), and by each wire codec on decode.

use crate::ids::{LocalId, MailboxId, WorkflowId};

/// What a sender says about one new message, without the sender (taken
/// from the authenticated connection) and without the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendHeader {
    /// The recipient.
    pub recipient: MailboxId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// `Mex-Subject`.
    pub subject: Option<String>,
    /// The sender's reference.
    pub local_id: Option<LocalId>,
    /// `Mex-FileName`.
    pub file_name: Option<String>,
    /// `Mex-Content-Type`.
    pub content_type: Option<String>,
    /// The content is compressed (flag only).
    pub compressed: bool,
    /// The content is encrypted (flag only).
    pub encrypted: bool,
    /// `Mex-Checksum`.
    pub checksum: Option<String>,
    /// `Mex-PartnerID`.
    pub partner_id: Option<String>,
    /// Number of chunks (1 for a simple message).
    pub total_chunks: u32,
    /// The sender's idempotency key: a repeat is answered with the original id.
    pub idempotency_key: Option<String>,
}

impl SendHeader {
    /// A single-chunk message with no optional metadata.
    pub fn simple(recipient: MailboxId, workflow_id: WorkflowId) -> SendHeader {
        SendHeader {
            recipient,
            workflow_id,
            subject: None,
            local_id: None,
            file_name: None,
            content_type: None,
            compressed: false,
            encrypted: false,
            checksum: None,
            partner_id: None,
            total_chunks: 1,
            idempotency_key: None,
        }
    }
}
