//! The MESH REST API's request parsing: routing, the query string, `Accept`
//! negotiation, `Content-Encoding`, and the `Mex-*` headers of a send and a
//! chunk upload.
//!
//! Input: an HTTP/1.1-like request head, one line each (`\n`, an optional
//! `\r` is dropped), so seeds are readable and libFuzzer's mutations stay
//! meaningful:
//!
//! ```text
//! POST /messageexchange/X26ABC1/outbox?query
//! Mex-To: X26ABC2
//! Mex-WorkflowID: TEST_WORKFLOW
//! ```
//!
//! The first line is the method and the request target; every other line
//! with a `:` is a header (name matched case-insensitively, the first of a
//! repeated name wins as with `http::HeaderMap::get`, the value's bytes kept
//! as they are apart from surrounding spaces and tabs).
//!
//! Asserted for every input: no panic; every refusal is a 4xx whose
//! description is bounded (hostile input is echoed only truncated); and
//! - a route that parses renders back to a path that parses to it;
//! - a query that parses renders back to a query that parses to it;
//! - an accepted `Accept` picks a version whose own content type picks it again;
//! - an accepted chunk range is `1 <= n <= N <= MAX_CHUNKS` and its `n:N`
//!   text parses to it; an upload range names the path's chunk;
//! - accepted send headers make an envelope that passes
//!   `Envelope::validate`: whatever the HTTP front accepts, the node can
//!   store.

use std::time::Duration;

use spine_core::envelope::{Envelope, MessageType, MAX_CHUNKS};
use spine_core::ids::{MailboxId, MessageId};
use spine_core::time::Timestamp;
use spine_protocol::mesh::auth::Token;
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::headers::{send_header, upload_range, BodyEncoding, ChunkRange};
use spine_protocol::mesh::query::{encode_value, Query, MAX_QUERY_BYTES};
use spine_protocol::mesh::route::{Method, Route, MAX_PATH_BYTES};
use spine_protocol::mesh::version::ApiVersion;

/// Longest error description expected for any input (the longest fixed
/// text plus a 64-character echo of 4-byte characters, with room to spare).
const MAX_DESCRIPTION_BYTES: usize = 1024;

/// A parsed request head.
#[derive(Debug, Default)]
pub struct Head<'a> {
    /// The method word.
    pub method: String,
    /// The path (before `?`).
    pub path: String,
    /// The query (after `?`), if any.
    pub query: Option<String>,
    /// Header lines: lower-cased name, raw value.
    pub headers: Vec<(String, &'a [u8])>,
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

impl<'a> Head<'a> {
    /// Splits `data` as described in the module docs.
    pub fn parse(data: &'a [u8]) -> Head<'a> {
        let mut lines = data
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let mut head = Head::default();
        if let Some(first) = lines.next() {
            let first = String::from_utf8_lossy(first);
            let (method, target) = first.split_once(' ').unwrap_or((&first, ""));
            let target = target.split(' ').next().unwrap_or("");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q.to_string())),
                None => (target, None),
            };
            head.method = method.to_string();
            head.path = path.to_string();
            head.query = query;
        }
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            if !name.is_empty() {
                head.headers.push((name, trim_ows(&line[colon + 1..])));
            }
        }
        head
    }

    /// The first value of header `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

fn bounded(e: &MeshError) {
    assert!(
        (400..500).contains(&e.status),
        "a refusal of input is not a 4xx: {e:?}"
    );
    assert!(
        e.description.len() <= MAX_DESCRIPTION_BYTES,
        "an error description is {} bytes long: hostile input is echoed unbounded",
        e.description.len()
    );
}

/// The check; see the module docs.
pub fn check(data: &[u8]) {
    let head = Head::parse(data);
    let get = |name: &str| head.get(name);

    route(&head.method, &head.path);
    query(head.query.as_deref());
    accept(get("accept"));

    match BodyEncoding::parse(get("content-encoding")) {
        Ok(_) => {}
        Err(e) => bounded(&e),
    }

    if let Some(raw) = get("mex-chunk-range") {
        let text = String::from_utf8_lossy(raw);
        match ChunkRange::parse(&text) {
            Ok(r) => chunk_range_holds(r),
            Err(e) => bounded(&e),
        }
    }

    let path_chunk = head.path.rsplit('/').next().unwrap_or("");
    match upload_range(&get, path_chunk) {
        Ok(r) => {
            chunk_range_holds(r);
            assert_eq!(path_chunk.parse::<u32>().ok(), Some(r.chunk));
        }
        Err(e) => bounded(&e),
    }

    match send_header(&get) {
        Ok((header, range)) => {
            chunk_range_holds(range);
            assert_eq!(range.chunk, 1, "a send was accepted with a later chunk");
            assert_eq!(header.total_chunks, range.total);
            if let Some(key) = &header.idempotency_key {
                assert!(!key.is_empty() && key.len() <= 128);
            }
            let envelope = envelope_for(header);
            if let Err(e) = envelope.validate() {
                panic!(
                    "MESH send headers were accepted but the node cannot store them: {e}\n{envelope:?}"
                );
            }
        }
        Err(e) => bounded(&e),
    }

    if let Some(raw) = get("authorization") {
        let _ = Token::parse(&String::from_utf8_lossy(raw));
    }
}

fn chunk_range_holds(r: ChunkRange) {
    assert!(
        1 <= r.chunk && r.chunk <= r.total && r.total <= MAX_CHUNKS,
        "{r:?} is out of range"
    );
    let again = ChunkRange::parse(&format!("{}:{}", r.chunk, r.total));
    assert_eq!(again.ok(), Some(r), "a chunk range does not round-trip");
}

/// The envelope the node would build from accepted send headers (the
/// sender and times are the node's; fixed here).
fn envelope_for(h: spine_core::message::SendHeader) -> Envelope {
    let created_at = Timestamp::from_micros(1_795_480_569_123_456);
    Envelope {
        message_id: MessageId::parse("20261124003609123456_ABCDEF").expect("valid id"),
        message_type: MessageType::Data,
        sender: MailboxId::parse("X26ABC1").expect("valid mailbox"),
        recipient: h.recipient,
        workflow_id: h.workflow_id,
        subject: h.subject,
        local_id: h.local_id,
        file_name: h.file_name,
        content_type: h.content_type,
        compressed: h.compressed,
        encrypted: h.encrypted,
        checksum: h.checksum,
        partner_id: h.partner_id,
        total_chunks: h.total_chunks,
        created_at,
        expires_at: created_at.saturating_add(Duration::from_secs(5 * 86_400)),
        linked_message_id: None,
        report: None,
    }
}

fn route(method: &str, path: &str) {
    let m = Method::parse(method);
    let Ok(route) = Route::parse(m, path) else {
        return;
    };
    let _ = (route.mailbox(), route.is_admin());
    let (m2, rendered) = render_route(&route);
    if rendered.len() > MAX_PATH_BYTES {
        return;
    }
    assert_eq!(
        Route::parse(m2, &rendered),
        Ok(route.clone()),
        "route {route:?} rendered as {rendered:?} does not parse back"
    );
}

/// A method and path for `route`, every segment percent-encoded.
fn render_route(route: &Route) -> (Method, String) {
    let e = |s: &str| encode_value(s);
    let mx = "/messageexchange";
    let (m, path) = match route {
        Route::Ping => (Method::Get, format!("{mx}/_ping")),
        Route::Handshake { mailbox } => (Method::Get, format!("{mx}/{}", e(mailbox))),
        Route::ListInbox { mailbox } => (Method::Get, format!("{mx}/{}/inbox", e(mailbox))),
        Route::Count { mailbox } => (Method::Get, format!("{mx}/{}/count", e(mailbox))),
        Route::Download {
            mailbox,
            message_id,
            chunk,
            head,
        } => {
            let m = if *head { Method::Head } else { Method::Get };
            let base = format!("{mx}/{}/inbox/{}", e(mailbox), e(message_id));
            match chunk {
                Some(c) => (m, format!("{base}/{}", e(c))),
                None => (m, base),
            }
        }
        Route::Acknowledge {
            mailbox,
            message_id,
        } => (
            Method::Put,
            format!(
                "{mx}/{}/inbox/{}/status/acknowledged",
                e(mailbox),
                e(message_id)
            ),
        ),
        Route::Send { mailbox } => (Method::Post, format!("{mx}/{}/outbox", e(mailbox))),
        Route::UploadChunk {
            mailbox,
            message_id,
            chunk,
        } => (
            Method::Post,
            format!("{mx}/{}/outbox/{}/{}", e(mailbox), e(message_id), e(chunk)),
        ),
        Route::Track { mailbox } => (Method::Get, format!("{mx}/{}/outbox/tracking", e(mailbox))),
        Route::TrackByLocalId { mailbox, local_id } => (
            Method::Get,
            format!("{mx}/{}/outbox/tracking/{}", e(mailbox), e(local_id)),
        ),
        Route::EndpointLookup {
            ods_code,
            workflow_id,
        } => (
            Method::Get,
            format!("{mx}/endpointlookup/{}/{}", e(ods_code), e(workflow_id)),
        ),
        Route::WorkflowSearch { workflow_id } => (
            Method::Get,
            format!("{mx}/workflowsearch/{}", e(workflow_id)),
        ),
        Route::AdminReset { mailbox } => match mailbox {
            Some(mb) => (Method::Delete, format!("{mx}/admin/reset/{}", e(mb))),
            None => (Method::Delete, format!("{mx}/admin/reset")),
        },
        Route::AdminReport => (Method::Post, format!("{mx}/admin/report")),
    };
    // A trailing slash is dropped before splitting, so a last segment that
    // is empty needs one more.
    let path = if path.ends_with('/') {
        format!("{path}/")
    } else {
        path
    };
    (m, path)
}

fn query(raw: Option<&str>) {
    let Ok(q) = Query::parse(raw) else {
        return;
    };
    if let Some(n) = q.max_results {
        assert!((10..=5000).contains(&n), "max_results {n} out of range");
    }
    let mut parts = Vec::new();
    if let Some(n) = q.max_results {
        parts.push(format!("max_results={n}"));
    }
    for (name, value) in [
        ("continue_from", &q.continue_from),
        ("workflow_filter", &q.workflow_filter),
        ("messageID", &q.message_id),
    ] {
        if let Some(v) = value {
            assert!(!v.is_empty(), "{name} is Some(\"\")");
            parts.push(format!("{name}={}", encode_value(v)));
        }
    }
    let rendered = parts.join("&");
    if rendered.len() > MAX_QUERY_BYTES {
        return;
    }
    assert_eq!(
        Query::parse(Some(&rendered)),
        Ok(q.clone()),
        "query {q:?} rendered as {rendered:?} does not parse back"
    );
}

fn accept(raw: Option<&[u8]>) {
    // The server reads the header as text (visible ASCII); anything else
    // counts as absent there. Lossy decoding here reaches more of the parser.
    let text = raw.map(String::from_utf8_lossy);
    if let Ok(version) = ApiVersion::from_accept(text.as_deref()) {
        assert_eq!(
            ApiVersion::from_accept(Some(version.content_type())),
            Ok(version),
            "a version's own content type does not select it"
        );
    }
}
