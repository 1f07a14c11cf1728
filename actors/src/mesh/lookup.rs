//! Directory endpoints: endpoint look-up by ODS code and workflow, and
//! workflow search.

use http::Response;
use spine_core::ids::{OdsCode, WorkflowId};
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::views::{self, LookupItem};

use super::errors::{bad_id, from_node};
use super::reply::{self, Body, Ctx};
use super::service::Mesh;
use crate::service::MailboxSummary;

fn items(found: Vec<MailboxSummary>) -> Vec<LookupItem> {
    found
        .into_iter()
        .map(|m| LookupItem {
            mailbox_id: m.mailbox_id.as_str().to_string(),
            mailbox_name: m.mailbox_name,
        })
        .collect()
}

/// `GET /messageexchange/endpointlookup/{ods}/{workflow}`.
pub(crate) async fn endpoint(
    mesh: &Mesh,
    ods: &str,
    workflow: &str,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let ods = OdsCode::parse(ods).map_err(|e| bad_id("ODS code", e))?;
    let workflow = WorkflowId::parse(workflow).map_err(|e| bad_id("workflow id", e))?;
    let found = mesh
        .node
        .lookup(&ods, &workflow)
        .await
        .map_err(|e| from_node(&e, "LOOKUP"))?;
    Ok(reply::json(
        200,
        ctx.version,
        Some(views::lookup(ctx.version, &items(found), &ctx.internal_id)),
    ))
}

/// `GET /messageexchange/workflowsearch/{workflow}`.
pub(crate) async fn workflow(
    mesh: &Mesh,
    workflow: &str,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let workflow = WorkflowId::parse(workflow).map_err(|e| bad_id("workflow id", e))?;
    let found = mesh
        .node
        .workflow_search(&workflow)
        .await
        .map_err(|e| from_node(&e, "LOOKUP"))?;
    Ok(reply::json(
        200,
        ctx.version,
        Some(views::lookup(ctx.version, &items(found), &ctx.internal_id)),
    ))
}
