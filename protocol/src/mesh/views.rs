//! Response bodies (v1 and v2 shapes) and download headers.
//!
//! Invariants and why:
//! - Field names and shapes follow the MESH OpenAPI document; v2 inbox
//!   links are relative paths starting `/messageexchange/` (mesh-client
//!   prefixes its base URL).
//! - Bodies that v2 leaves empty (`handshake`, `acknowledge`, chunk
//!   uploads) are `None` here, so the server sends no body at all.
//! - Headers whose value is empty are left out, as mesh-sandbox does.

use serde_json::{json, Value};
use spine_core::envelope::{Envelope, MessageType};
use spine_core::time::Timestamp;

use super::query::encode_value;
use super::version::ApiVersion;

/// `202` answer to the first request of a send.
pub fn send_accepted(version: ApiVersion, message_id: &str) -> Value {
    match version {
        ApiVersion::V1 => json!({ "messageID": message_id }),
        ApiVersion::V2 => json!({ "message_id": message_id }),
    }
}

/// `202` answer to a chunk upload (v2: no body).
pub fn chunk_accepted(version: ApiVersion, message_id: &str, chunk: u32) -> Option<Value> {
    match version {
        ApiVersion::V1 => Some(json!({ "messageID": message_id, "blockID": chunk })),
        ApiVersion::V2 => None,
    }
}

/// `200` answer to a handshake (v2: no body).
pub fn handshake(version: ApiVersion, mailbox: &str) -> Option<Value> {
    match version {
        ApiVersion::V1 => Some(json!({ "mailboxId": mailbox })),
        ApiVersion::V2 => None,
    }
}

/// `200` answer to an acknowledgement (v2: no body).
pub fn acknowledged(version: ApiVersion, message_id: &str) -> Option<Value> {
    match version {
        ApiVersion::V1 => Some(json!({ "messageId": message_id })),
        ApiVersion::V2 => None,
    }
}

/// The deprecated inbox count.
pub fn count(version: ApiVersion, mailbox: &str, count: usize, internal_id: &str) -> Value {
    match version {
        ApiVersion::V1 => json!({
            "count": count,
            "internalID": internal_id,
            "allResultsIncluded": true,
            "mailboxId": mailbox,
        }),
        ApiVersion::V2 => json!({ "count": count }),
    }
}

/// `_ping`.
pub fn ping(server: &str, now: Timestamp) -> Value {
    json!({ "status": "ok", "server": server, "timestamp": now.to_rfc3339() })
}

/// One page of an inbox listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage<'a> {
    /// The mailbox listed.
    pub mailbox: &'a str,
    /// Message ids, oldest first.
    pub ids: Vec<String>,
    /// The opaque token for the next page, when there is one.
    pub next: Option<String>,
    /// The request's `max_results`, if given (kept in the links).
    pub max_results: Option<usize>,
    /// The request's `workflow_filter`, if given (kept in the links).
    pub workflow_filter: Option<&'a str>,
    /// The request's `continue_from`, if given (for `links.self`).
    pub continue_from: Option<&'a str>,
    /// Messages waiting in the whole inbox.
    pub approx_inbox_count: usize,
}

fn inbox_link(page: &InboxPage<'_>, continue_from: Option<&str>) -> String {
    let mut link = format!("/messageexchange/{}/inbox", encode_value(page.mailbox));
    let mut sep = '?';
    let mut add = |k: &str, v: &str| {
        link.push(sep);
        link.push_str(k);
        link.push('=');
        link.push_str(&encode_value(v));
        sep = '&';
    };
    if let Some(n) = page.max_results {
        add("max_results", &n.to_string());
    }
    if let Some(f) = page.workflow_filter {
        add("workflow_filter", f);
    }
    if let Some(c) = continue_from {
        add("continue_from", c);
    }
    link
}

/// The inbox listing body.
pub fn inbox(version: ApiVersion, page: &InboxPage<'_>) -> Value {
    match version {
        ApiVersion::V1 => json!({ "messages": page.ids }),
        ApiVersion::V2 => {
            let mut links = serde_json::Map::new();
            links.insert(
                "self".into(),
                Value::String(inbox_link(page, page.continue_from)),
            );
            if let Some(next) = &page.next {
                links.insert("next".into(), Value::String(inbox_link(page, Some(next))));
            }
            json!({
                "messages": page.ids,
                "links": links,
                "approx_inbox_count": page.approx_inbox_count,
            })
        }
    }
}

/// A mailbox found by a look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupItem {
    /// Mailbox id.
    pub mailbox_id: String,
    /// Mailbox name.
    pub mailbox_name: String,
}

/// Endpoint look-up and workflow search bodies.
pub fn lookup(version: ApiVersion, items: &[LookupItem], query_id: &str) -> Value {
    match version {
        ApiVersion::V1 => json!({
            "query_id": query_id,
            "results": items.iter().map(|i| json!({
                "address": i.mailbox_id,
                "description": i.mailbox_name,
                "endpoint_type": "MESH",
            })).collect::<Vec<_>>(),
        }),
        ApiVersion::V2 => json!({
            "results": items.iter().map(|i| json!({
                "mailbox_id": i.mailbox_id,
                "mailbox_name": i.mailbox_name,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// Where a message is, in MESH's words (`status`, `status_event`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `uploading`, `accepted`, `acknowledged` or `undeliverable`.
    pub status: &'static str,
    /// `SUCCESS`/`ERROR` as a bool.
    pub success: bool,
    /// `Mex-StatusEvent`.
    pub event: String,
    /// `Mex-StatusCode`.
    pub code: String,
    /// `Mex-StatusDescription`.
    pub description: String,
    /// `Mex-StatusTimestamp`.
    pub timestamp: Timestamp,
}

/// What tracking needs besides the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking<'a> {
    /// The message.
    pub envelope: &'a Envelope,
    /// Its status.
    pub status: Status,
    /// Bytes stored (all chunks).
    pub file_size: u64,
    /// When the recipient acknowledged it.
    pub acknowledged_at: Option<Timestamp>,
    /// Recipient's name, ODS code and organisation, from the directory.
    pub recipient_name: String,
    /// Recipient's ODS code.
    pub recipient_ods_code: String,
    /// Sender's name.
    pub sender_name: String,
    /// Sender's ODS code.
    pub sender_ods_code: String,
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The tracking body.
pub fn tracking(version: ApiVersion, t: &Tracking<'_>) -> Value {
    let e = t.envelope;
    let id = e.message_id.as_str();
    let secs = |ts: Timestamp| ts.format_seconds();
    match version {
        ApiVersion::V2 => json!({
            "message_id": id,
            "local_id": e.local_id.as_ref().map(|l| l.as_str()),
            "workflow_id": e.workflow_id.as_str(),
            "filename": e.file_name,
            "expiry_time": e.expires_at.to_rfc3339(),
            "upload_timestamp": e.created_at.to_rfc3339(),
            "recipient": e.recipient.as_str(),
            "recipient_name": t.recipient_name,
            "recipient_ods_code": t.recipient_ods_code,
            "recipient_org_code": t.recipient_ods_code,
            "recipient_org_name": t.recipient_name,
            "sender": e.sender.as_str(),
            "message_type": e.message_type.as_str(),
            "file_size": t.file_size,
            "status_success": t.status.success,
            "status": t.status.status,
            "status_event": t.status.event,
            "status_timestamp": t.status.timestamp.to_rfc3339(),
            "status_description": t.status.description,
            "status_code": t.status.code,
        }),
        ApiVersion::V1 => json!({
            "dtsId": id,
            "messageId": id,
            "localId": e.local_id.as_ref().map(|l| l.as_str()),
            "workflowId": e.workflow_id.as_str(),
            "fileName": e.file_name,
            "fileSize": t.file_size,
            "subject": e.subject,
            "messageType": e.message_type.as_str(),
            "addressType": "ALL",
            "checksum": e.checksum,
            "chunkCount": e.total_chunks,
            "compressFlag": if e.compressed { "Y" } else { "N" },
            "encryptedFlag": if e.encrypted { "Y" } else { "N" },
            "isCompressed": if e.compressed { "Y" } else { "N" },
            "partnerId": e.partner_id,
            "contentEncoding": Value::Null,
            "status": title_case(t.status.status),
            "statusSuccess": if t.status.success { "SUCCESS" } else { "ERROR" },
            "statusEvent": t.status.event,
            "statusCode": t.status.code,
            "statusDescription": t.status.description,
            "statusTimestamp": secs(t.status.timestamp),
            "uploadTimestamp": secs(e.created_at),
            "expiryTime": secs(e.expires_at),
            "downloadTimestamp": t.acknowledged_at.map(secs),
            "linkedMsgId": e.linked_message_id.as_ref().map(|m| m.as_str()),
            "sender": e.sender.as_str(),
            "senderName": t.sender_name,
            "senderOdsCode": t.sender_ods_code,
            "senderOrgCode": t.sender_ods_code,
            "senderOrgName": t.sender_name,
            "recipient": e.recipient.as_str(),
            "recipientName": t.recipient_name,
            "meshRecipientOdsCode": t.recipient_ods_code,
            "recipientOrgCode": t.recipient_ods_code,
            "recipientOrgName": t.recipient_name,
            "failureDate": Value::Null,
            "failureDiagnostic": Value::Null,
            "version": "1.0",
        }),
    }
}

/// The `Mex-*` headers of a download or HEAD, for chunk `chunk` of
/// `total` (a REPORT has `1:0`, as mesh-sandbox sends).
pub fn download_headers(
    e: &Envelope,
    status: &Status,
    chunk: u32,
    total: u32,
) -> Vec<(&'static str, String)> {
    let mut h: Vec<(&'static str, String)> = Vec::with_capacity(24);
    let mut put = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            h.push((name, v));
        }
    };
    let yn = |b: bool| Some(if b { "Y" } else { "N" }.to_string());
    put("mex-from", Some(e.sender.as_str().to_string()));
    put("mex-to", Some(e.recipient.as_str().to_string()));
    put("mex-workflowid", Some(e.workflow_id.as_str().to_string()));
    put("mex-messageid", Some(e.message_id.as_str().to_string()));
    put("mex-messagetype", Some(e.message_type.as_str().to_string()));
    put("mex-addresstype", Some("ALL".to_string()));
    put("mex-version", Some("1.0".to_string()));
    let (range, chunks) = match e.message_type {
        MessageType::Report => ("1:0".to_string(), 0),
        MessageType::Data => (format!("{chunk}:{total}"), total),
    };
    put("mex-chunk-range", Some(range));
    put("mex-total-chunks", Some(chunks.to_string()));
    put(
        "mex-localid",
        e.local_id.as_ref().map(|l| l.as_str().to_string()),
    );
    put("mex-partnerid", e.partner_id.clone());
    put(
        "mex-filename",
        Some(
            e.file_name
                .clone()
                .unwrap_or_else(|| format!("{}.dat", e.message_id.as_str())),
        ),
    );
    put("mex-subject", e.subject.clone());
    put("mex-content-compressed", yn(e.compressed));
    put("mex-content-encrypted", yn(e.encrypted));
    put("mex-content-checksum", e.checksum.clone());
    put("mex-content-type", e.content_type.clone());
    put(
        "mex-linkedmsgid",
        e.linked_message_id.as_ref().map(|m| m.as_str().to_string()),
    );
    put("mex-statuscode", Some(status.code.clone()));
    put("mex-statusevent", Some(status.event.clone()));
    put("mex-statusdescription", Some(status.description.clone()));
    put(
        "mex-statussuccess",
        Some(if status.success { "SUCCESS" } else { "ERROR" }.to_string()),
    );
    put(
        "mex-statustimestamp",
        Some(status.timestamp.format_seconds()),
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_links_are_relative_and_keep_the_query() {
        let page = InboxPage {
            mailbox: "X26ABC1",
            ids: vec!["A".into()],
            next: Some("tok en".into()),
            max_results: Some(10),
            workflow_filter: Some("!WF*"),
            continue_from: None,
            approx_inbox_count: 30,
        };
        let v2 = inbox(ApiVersion::V2, &page);
        assert_eq!(
            v2["links"]["next"],
            "/messageexchange/X26ABC1/inbox?max_results=10&workflow_filter=%21WF%2A&continue_from=tok%20en"
        );
        assert_eq!(v2["approx_inbox_count"], 30);
        let v1 = inbox(ApiVersion::V1, &page);
        assert_eq!(v1, json!({"messages": ["A"]}));
        let last = InboxPage { next: None, ..page };
        assert!(inbox(ApiVersion::V2, &last)["links"].get("next").is_none());
    }

    #[test]
    fn empty_v2_bodies_are_none() {
        assert!(handshake(ApiVersion::V2, "X").is_none());
        assert!(acknowledged(ApiVersion::V2, "X").is_none());
        assert!(chunk_accepted(ApiVersion::V2, "X", 2).is_none());
        assert_eq!(
            chunk_accepted(ApiVersion::V1, "X", 2),
            Some(json!({"messageID": "X", "blockID": 2}))
        );
    }
}
