//! A message's MESH status (`accepted`, `undeliverable`...) from the node's
//! view of it: what tracking and the `Mex-Status*` download headers say.

use spine_core::envelope::MessageType;
use spine_core::message::MessageStatus;
use spine_protocol::mesh::views::Status;

use crate::node::MessageView;

/// The status of `view` as MESH reports it.
pub(crate) fn of(view: &MessageView) -> Status {
    let e = &view.envelope;
    if e.message_type == MessageType::Report {
        if let Some(report) = &e.report {
            return Status {
                status: "accepted",
                success: false,
                event: report.event.clone(),
                code: report.code.clone(),
                description: report.description.clone(),
                timestamp: e.created_at,
            };
        }
    }
    let (status, success, event, code, description, at) = match view.status {
        MessageStatus::Uploading => (
            "uploading",
            true,
            "UPLOAD",
            "00",
            "Message upload in progress".to_string(),
            e.created_at,
        ),
        MessageStatus::Accepted => (
            "accepted",
            true,
            "TRANSFER",
            "00",
            "Transferred to recipient mailbox".to_string(),
            e.created_at,
        ),
        MessageStatus::Acknowledged => (
            "acknowledged",
            true,
            "DOWNLOAD",
            "00",
            "Message acknowledged by recipient".to_string(),
            view.acknowledged_at.unwrap_or(e.created_at),
        ),
        MessageStatus::Expired => (
            "undeliverable",
            false,
            "SEND",
            "14",
            "Message not collected by recipient within the inbox expiry period".to_string(),
            view.expired_at.unwrap_or(e.expires_at),
        ),
    };
    Status {
        status,
        success,
        event: event.to_string(),
        code: code.to_string(),
        description,
        timestamp: at,
    }
}
