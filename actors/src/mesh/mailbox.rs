//! Inbox endpoints: handshake, list, count, download (and HEAD), acknowledge.
//!
//! Invariants and why:
//! - A mailbox sees, downloads and acknowledges only messages addressed to
//!   it (the node checks; HEAD also lets the sender look).
//! - The paging token is opaque to clients (`spine-inbox-after-<n>`, n the
//!   inbox order key) and is also accepted in v1's form, the last message
//!   id seen, so both versions page the same way.
//! - A download is `206` while more chunks follow and `200` for the last
//!   (or only) one; gzip is applied only when the client accepts it (v2),
//!   and then `Mex-Content-Compressed: Y` says so, as mesh-sandbox does.

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response};
use http_body_util::Full;
use spine_core::ids::{MailboxId, MessageId};
use spine_protocol::mesh::error::{echo, MeshError};
use spine_protocol::mesh::query::{Query, DEFAULT_MAX_RESULTS};
use spine_protocol::mesh::version::ApiVersion;
use spine_protocol::mesh::views::{self, InboxPage};

use super::body::{accepts_gzip, gzip};
use super::errors::{bad_id, from_node};
use super::reply::{self, Body, Ctx};
use super::service::{header, Mesh};
use super::status;

/// v1 lists at most this many ids per page (MESH spec).
const V1_PAGE: usize = 500;
const CURSOR_PREFIX: &str = "spine-inbox-after-";

/// `POST /messageexchange/{mailbox}`: checks the client's headers.
pub(crate) fn handshake(
    me: &MailboxId,
    parts: &Parts,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let missing: Vec<&str> = ["mex-clientversion", "mex-osname", "mex-osversion"]
        .into_iter()
        .filter(|h| header(&parts.headers, h).is_none_or(str::is_empty))
        .collect();
    if !missing.is_empty() {
        return Err(MeshError::new(
            400,
            "06",
            "HANDSHAKE",
            "MESH_HANDSHAKE_HEADERS",
            format!(
                "the handshake is missing {}; send Mex-ClientVersion, Mex-OSName and Mex-OSVersion",
                missing.join(", ")
            ),
        ));
    }
    Ok(reply::json(
        200,
        ctx.version,
        views::handshake(ctx.version, me.as_str()),
    ))
}

fn query(parts: &Parts) -> Result<Query, MeshError> {
    Query::parse(parts.uri.query()).map_err(|e| {
        use spine_core::ErrorCode;
        MeshError::new(400, "06", "RECEIVE", e.code(), e.to_string())
    })
}

pub(crate) fn parse_id(text: &str) -> Result<MessageId, MeshError> {
    MessageId::parse(text).map_err(|e| bad_id("message id", e))
}

/// `GET .../inbox`.
pub(crate) async fn list(
    mesh: &Mesh,
    me: &MailboxId,
    parts: &Parts,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let q = query(parts)?;
    let mut limit = q.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if ctx.version == ApiVersion::V1 {
        limit = limit.min(V1_PAGE);
    }
    let after = match q.continue_from.as_deref() {
        None => None,
        Some(token) => Some(cursor(mesh, me, token).await?),
    };
    let page = mesh
        .node
        .list_inbox(me, q.workflow_filter.as_deref(), after, limit)
        .await
        .map_err(|e| from_node(&e, "RECEIVE"))?;
    let ids = page
        .messages
        .iter()
        .map(|m| m.envelope.message_id.as_str().to_string())
        .collect();
    let body = views::inbox(
        ctx.version,
        &InboxPage {
            mailbox: me.as_str(),
            ids,
            next: page.next.map(|n| format!("{CURSOR_PREFIX}{n:020}")),
            max_results: q.max_results,
            workflow_filter: q.workflow_filter.as_deref(),
            continue_from: q.continue_from.as_deref(),
            approx_inbox_count: page.total,
        },
    );
    Ok(reply::json(200, ctx.version, Some(body)))
}

/// The inbox position a `continue_from` names.
async fn cursor(mesh: &Mesh, me: &MailboxId, token: &str) -> Result<u64, MeshError> {
    let bad = || {
        MeshError::new(
            400,
            "06",
            "RECEIVE",
            "MESH_BAD_CONTINUE_FROM",
            format!(
                "continue_from {:?} is not a paging token from this inbox; pass links.next (v2) or the last message id listed (v1) unchanged",
                echo(token)
            ),
        )
    };
    if let Some(n) = token.strip_prefix(CURSOR_PREFIX) {
        return n.parse().map_err(|_| bad());
    }
    let id = MessageId::parse(token).map_err(|_| bad())?;
    let view = mesh.node.get(&id).await.map_err(|_| bad())?;
    if &view.envelope.recipient != me {
        return Err(bad());
    }
    view.accepted_seq.ok_or_else(bad)
}

/// `GET .../count` (deprecated).
pub(crate) async fn count(
    mesh: &Mesh,
    me: &MailboxId,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let page = mesh
        .node
        .list_inbox(me, None, None, 1)
        .await
        .map_err(|e| from_node(&e, "RECEIVE"))?;
    Ok(reply::json(
        200,
        ctx.version,
        Some(views::count(
            ctx.version,
            me.as_str(),
            page.total,
            &ctx.internal_id,
        )),
    ))
}

/// `GET|HEAD .../inbox/{id}[/{chunk}]`.
pub(crate) async fn download(
    mesh: &Mesh,
    me: &MailboxId,
    id: &str,
    chunk: Option<&str>,
    head: bool,
    parts: &Parts,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let id = parse_id(id)?;
    let chunk_no = match chunk {
        None => 1,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_id("chunk number", "use a whole number from 1"))?,
    };
    let about = |e: MeshError| e.about(id.as_str());
    let (view, body) = if head {
        let view = mesh
            .node
            .head(me, &id)
            .await
            .map_err(|e| about(from_node(&e, "RECEIVE")))?;
        (view, Bytes::new())
    } else {
        let d = mesh
            .node
            .download(me, &id, chunk_no)
            .await
            .map_err(|e| about(from_node(&e, "RECEIVE")))?;
        (d.view, d.body)
    };
    let total = view.envelope.total_chunks.max(1);
    let status_code = if chunk_no < total { 206 } else { 200 };
    let mut mex = views::download_headers(&view.envelope, &status::of(&view), chunk_no, total);
    let gzipped = !head
        && ctx.version == ApiVersion::V2
        && accepts_gzip(header(&parts.headers, ACCEPT_ENCODING.as_str()));
    let body = if gzipped {
        mex.retain(|(k, _)| *k != "mex-content-compressed");
        mex.push(("mex-content-compressed", "Y".to_string()));
        gzip(&body)
    } else {
        body
    };
    let content_type = if total > 1 {
        "application/octet-stream".to_string()
    } else {
        view.envelope
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_string())
    };
    let len = body.len();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = http::StatusCode::from_u16(status_code).unwrap_or_default();
    let headers = response.headers_mut();
    for (name, value) in mex {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    if gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if !head {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(response)
}

/// `PUT .../inbox/{id}/status/acknowledged`.
pub(crate) async fn acknowledge(
    mesh: &Mesh,
    me: &MailboxId,
    id: &str,
    ctx: &Ctx,
) -> Result<Response<Body>, MeshError> {
    let id = parse_id(id)?;
    mesh.node
        .acknowledge(me, &id)
        .await
        .map_err(|e| from_node(&e, "ACKNOWLEDGE").about(id.as_str()))?;
    Ok(reply::json(
        200,
        ctx.version,
        views::acknowledged(ctx.version, id.as_str()),
    ))
}
