//! mesh-sandbox's admin endpoints, served only with `--sandbox` so that
//! Spine can stand in for mesh-sandbox in suppliers' integration tests:
//! `DELETE /admin/reset[/{mailbox}]` and `POST /messageexchange/admin/report`.
//!
//! Invariant: like the sandbox they need no token, which is why they are
//! off unless asked for; what they change goes through the log like any
//! other change, so a restart keeps it.

use http::request::Parts;
use http::Response;
use hyper::body::Incoming;
use serde::Deserialize;
use spine_core::ids::{LocalId, MailboxId, MessageId, WorkflowId};
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::headers::BodyEncoding;

use super::body;
use super::errors::{bad_id, from_node};
use super::reply::{self, Ctx};
use super::service::Mesh;
use crate::node::InjectReport;

/// Largest admin request body.
const MAX_ADMIN_BODY: u64 = 64 << 10;

/// `DELETE /admin/reset[/{mailbox}]`.
pub(crate) async fn reset(
    mesh: &Mesh,
    mailbox: Option<&str>,
    ctx: &Ctx,
) -> Result<Response<reply::Body>, MeshError> {
    let mailbox = mailbox
        .map(|m| MailboxId::parse(&m.to_ascii_uppercase()).map_err(|e| bad_id("mailbox id", e)))
        .transpose()?;
    if let Some(m) = &mailbox {
        if mesh.node.directory().mailbox(m).is_none() {
            return Err(unknown_mailbox(m));
        }
    }
    let removed = mesh
        .node
        .reset(mailbox.as_ref())
        .await
        .map_err(|e| from_node(&e, "ADMIN"))?;
    tracing::info!(mailbox = ?mailbox.as_ref().map(MailboxId::as_str), removed, "sandbox reset");
    Ok(reply::json(
        200,
        ctx.version,
        Some(serde_json::json!({ "removed": removed })),
    ))
}

fn unknown_mailbox(m: &MailboxId) -> MeshError {
    MeshError::new(
        404,
        "",
        "ADMIN",
        "MESH_ADMIN_UNKNOWN_MAILBOX",
        format!("mailbox {m} is not in the directory; use one of the directory's mailbox ids"),
    )
}

#[derive(Debug, Deserialize)]
struct ReportRequest {
    mailbox_id: String,
    code: String,
    description: String,
    workflow_id: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    local_id: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    linked_message_id: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<String>,
}

fn bad_json(why: impl std::fmt::Display) -> MeshError {
    MeshError::new(
        400,
        "06",
        "ADMIN",
        "MESH_ADMIN_BAD_REPORT",
        format!("the report request is not valid: {why}; send JSON {{mailbox_id, code, description, workflow_id, subject?, local_id?, file_name?, linked_message_id?}}"),
    )
}

/// `POST /messageexchange/admin/report`: puts a REPORT in an inbox.
pub(crate) async fn report(
    mesh: &Mesh,
    _parts: &Parts,
    incoming: Incoming,
    ctx: &Ctx,
) -> Result<Response<reply::Body>, MeshError> {
    let received = body::read(
        incoming,
        BodyEncoding::Identity,
        MAX_ADMIN_BODY,
        &mesh.budget,
        std::time::Duration::from_millis(mesh.config.body_timeout_ms),
    )
    .await?;
    let req: ReportRequest = serde_json::from_slice(&received.bytes).map_err(bad_json)?;
    let recipient = MailboxId::parse(&req.mailbox_id.to_ascii_uppercase()).map_err(bad_json)?;
    if mesh.node.directory().mailbox(&recipient).is_none() {
        return Err(unknown_mailbox(&recipient));
    }
    let workflow_id = WorkflowId::parse(&req.workflow_id).map_err(bad_json)?;
    let mut report = InjectReport::new(recipient, workflow_id, req.code, req.description);
    if let Some(event) = req.event {
        report.event = event;
    }
    report.subject = req.subject;
    report.file_name = req.file_name;
    report.local_id = req
        .local_id
        .map(|l| LocalId::parse(&l))
        .transpose()
        .map_err(bad_json)?;
    report.linked_message_id = req
        .linked_message_id
        .map(|l| MessageId::parse(&l))
        .transpose()
        .map_err(bad_json)?;
    let id = mesh
        .node
        .inject_report(report)
        .await
        .map_err(|e| from_node(&e, "ADMIN"))?;
    Ok(reply::json(
        200,
        ctx.version,
        Some(serde_json::json!({ "message_id": id.as_str() })),
    ))
}
