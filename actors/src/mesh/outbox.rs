//! Outbox endpoints: send (chunk 1), chunk uploads 2..N, tracking.
//!
//! Invariants and why:
//! - `202` means the message (or chunk) is durable: the node answers only
//!   after its log record is synced.
//! - A chunk upload is checked against the message before its body is
//!   read (unknown → 404, another sender's → 403, complete → 423, a total
//!   that differs from chunk 1's → 417), so a refused upload costs no
//!   buffering.
//! - Tracking answers only the sender; anyone else gets the same 404 as an
//!   unknown id (as MESH does), so tracking cannot probe other mailboxes.

use http::header::CONTENT_ENCODING;
use http::request::Parts;
use http::Response;
use hyper::body::Incoming;
use spine_core::directory::Directory;
use spine_core::ids::{LocalId, MailboxId};
use spine_core::message::MessageStatus;
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::headers::{send_header, upload_range, BodyEncoding};
use spine_protocol::mesh::query::Query;
use spine_protocol::mesh::version::ApiVersion;
use spine_protocol::mesh::views::{self, Tracking};

use super::body;
use super::errors::{bad_id, from_node};
use super::mailbox::parse_id;
use super::reply::{self, Body, Ctx};
use super::service::Mesh;
use super::status;
use crate::node::{MessageView, SendRequest};

fn encoding(parts: &Parts) -> Result<BodyEncoding, MeshError> {
    BodyEncoding::parse(parts.headers.get(CONTENT_ENCODING).map(|v| v.as_bytes()))
}

fn getter<'a>(parts: &'a Parts) -> impl Fn(&str) -> Option<&'a [u8]> {
    move |name: &str| parts.headers.get(name).map(|v| v.as_bytes())
}

/// `POST .../outbox`.
pub(crate) async fn send(
    mesh: &Mesh,
    me: &MailboxId,
    parts: &Parts,
    incoming: Incoming,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let encoding = encoding(parts)?;
    let (header, _range) = send_header(&getter(parts))?;
    // Refuse an impossible send before reading a possibly large body.
    mesh.node
        .directory()
        .check_send(me, &header.recipient, &header.workflow_id)
        .map_err(|e| from_node(&e.into(), "SEND"))?;
    let received = body::read(
        incoming,
        encoding,
        mesh.config.max_request_bytes,
        &mesh.budget,
        std::time::Duration::from_millis(mesh.config.body_timeout_ms),
    )
    .await?;
    let outcome = mesh
        .node
        .send(SendRequest {
            sender: me.clone(),
            header,
            body: received.bytes.clone(),
        })
        .await
        .map_err(|e| from_node(&e, "SEND"))?;
    metrics::counter!("spine_mesh_sends_total").increment(1);
    Ok(reply::json(
        202,
        ctx.version,
        Some(views::send_accepted(
            ctx.version,
            outcome.message_id.as_str(),
        )),
    ))
}

/// `POST .../outbox/{id}/{chunk}`.
pub(crate) async fn upload_chunk(
    mesh: &Mesh,
    me: &MailboxId,
    id: &str,
    chunk: &str,
    parts: &Parts,
    incoming: Incoming,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let id = parse_id(id)?;
    let about = |e: MeshError| e.about(id.as_str());
    let range = upload_range(&getter(parts), chunk).map_err(about)?;
    let encoding = encoding(parts).map_err(about)?;
    let view = mesh
        .node
        .get(&id)
        .await
        .map_err(|e| about(from_node(&e, "SEND")))?;
    if &view.envelope.sender != me {
        return Err(about(MeshError::new(
            403,
            "07",
            "SEND",
            "MSG_NOT_SENDER",
            "only the mailbox that sent chunk 1 may upload the other chunks",
        )));
    }
    if view.status != MessageStatus::Uploading {
        return Err(about(MeshError::new(
            423,
            "",
            "SEND",
            "MSG_UPLOAD_COMPLETE",
            "every chunk of this message has arrived; it accepts no more chunks",
        )));
    }
    if range.total != view.envelope.total_chunks {
        return Err(about(MeshError::new(
            417,
            "InvalidHeaderChunks",
            "SEND",
            "MESH_CHUNK_TOTAL_MISMATCH",
            format!(
                "Mex-Chunk-Range says {} chunks but chunk 1 said {}; keep N the same for every chunk",
                range.total, view.envelope.total_chunks
            ),
        )));
    }
    if range.chunk < 2 {
        return Err(about(MeshError::new(
            417,
            "InvalidHeaderChunks",
            "SEND",
            "MESH_CHUNK_ONE_UPLOAD",
            "chunk 1 is sent to /outbox with the message's headers; upload chunks 2..N here",
        )));
    }
    let received = body::read(
        incoming,
        encoding,
        mesh.config.max_request_bytes,
        &mesh.budget,
        std::time::Duration::from_millis(mesh.config.body_timeout_ms),
    )
    .await
    .map_err(about)?;
    mesh.node
        .send_chunk(me, &id, range.chunk, received.bytes.clone())
        .await
        .map_err(|e| about(from_node(&e, "SEND")))?;
    Ok(reply::json(
        202,
        ctx.version,
        views::chunk_accepted(ctx.version, id.as_str(), range.chunk),
    ))
}

fn tracking_body(
    directory: &Directory,
    view: &MessageView,
    version: ApiVersion,
) -> serde_json::Value {
    let e = &view.envelope;
    let who = |m: &MailboxId| {
        directory
            .mailbox(m)
            .map(|mb| (mb.name.clone(), mb.ods_code.as_str().to_string()))
            .unwrap_or_default()
    };
    let (recipient_name, recipient_ods_code) = who(&e.recipient);
    let (sender_name, sender_ods_code) = who(&e.sender);
    views::tracking(
        version,
        &Tracking {
            envelope: e,
            status: status::of(view),
            file_size: view.chunks.iter().flatten().map(|c| u64::from(c.len)).sum(),
            acknowledged_at: view.acknowledged_at,
            recipient_name,
            recipient_ods_code,
            sender_name,
            sender_ods_code,
        },
    )
}

/// `GET .../outbox/tracking?messageID=`.
pub(crate) async fn track(
    mesh: &Mesh,
    me: &MailboxId,
    parts: &Parts,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let q = Query::parse(parts.uri.query()).map_err(|e| bad_id("query", e))?;
    let Some(id) = q.message_id else {
        return Err(MeshError::new(
            400,
            "06",
            "TRACK",
            "MESH_TRACKING_NO_ID",
            "tracking needs the messageID query parameter: /outbox/tracking?messageID=<id>",
        ));
    };
    let id = parse_id(&id)?;
    let view = mesh
        .node
        .track(me, &id)
        .await
        .map_err(|e| from_node(&e, "TRACK").about(id.as_str()))?;
    let body = tracking_body(mesh.node.directory(), &view, ctx.version);
    Ok(reply::json(200, ctx.version, Some(body)))
}

/// `GET .../outbox/tracking/{local_id}` (deprecated; v1 body only): 300
/// when several messages carry the local id.
pub(crate) async fn track_by_local_id(
    mesh: &Mesh,
    me: &MailboxId,
    local_id: &str,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let local = LocalId::parse(local_id).map_err(|e| bad_id("local id", e))?;
    let found = mesh
        .node
        .track_by_local_id(me, &local)
        .await
        .map_err(|e| from_node(&e, "TRACK"))?;
    match found.as_slice() {
        [] => Err(MeshError::new(
            404,
            "20",
            "TRACK",
            "MESH_LOCAL_ID_UNKNOWN",
            "no message sent by this mailbox carries that local id",
        )),
        [one] => {
            let body = tracking_body(mesh.node.directory(), one, ApiVersion::V1);
            Ok(reply::json(200, ApiVersion::V1, Some(body)))
        }
        many => {
            let ids: Vec<&str> = many
                .iter()
                .map(|m| m.envelope.message_id.as_str())
                .collect();
            let body = serde_json::json!({
                "messageIDs": ids,
                "errorDescription": "several messages carry this local id; track them by message id",
            });
            let _ = ctx;
            Ok(reply::json(300, ApiVersion::V1, Some(body)))
        }
    }
}
