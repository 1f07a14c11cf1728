//! Which MESH endpoint a request is for: [`Route::parse`] maps a method
//! and a path (without the query) to a [`Route`].
//!
//! Invariants and why:
//! - Every path segment is percent-decoded once and bounded
//!   ([`MAX_SEGMENT_BYTES`]); ids are parsed later by the handler, which
//!   owns the error wording for each.
//! - A path that names no endpoint is [`RouteError::NotFound`]; a known
//!   path with another method is [`RouteError::MethodNotAllowed`] with the
//!   methods it does take, so a client learns what to change.
//! - The sandbox's admin endpoints parse here too; whether they are served
//!   is the server's decision (`--sandbox`).

use thiserror::Error;

/// Longest path segment accepted (after percent-decoding), bytes.
pub const MAX_SEGMENT_BYTES: usize = 512;
/// Longest path accepted, bytes.
pub const MAX_PATH_BYTES: usize = 2048;

/// The HTTP methods MESH uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// Anything else.
    Other,
}

impl Method {
    /// From the method's name.
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// A MESH endpoint with its path parameters (raw, percent-decoded text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /messageexchange/_ping`
    Ping,
    /// `POST|GET /messageexchange/{mailbox}`: handshake.
    Handshake {
        /// Mailbox in the path.
        mailbox: String,
    },
    /// `GET /messageexchange/{mailbox}/inbox`
    ListInbox {
        /// Mailbox in the path.
        mailbox: String,
    },
    /// `GET /messageexchange/{mailbox}/count`
    Count {
        /// Mailbox in the path.
        mailbox: String,
    },
    /// `GET|HEAD /messageexchange/{mailbox}/inbox/{id}[/{chunk}]`
    Download {
        /// Mailbox in the path.
        mailbox: String,
        /// Message id.
        message_id: String,
        /// Chunk number text (`None`: chunk 1).
        chunk: Option<String>,
        /// HEAD: headers only.
        head: bool,
    },
    /// `PUT /messageexchange/{mailbox}/inbox/{id}/status/acknowledged`
    Acknowledge {
        /// Mailbox in the path.
        mailbox: String,
        /// Message id.
        message_id: String,
    },
    /// `POST /messageexchange/{mailbox}/outbox`
    Send {
        /// Mailbox in the path.
        mailbox: String,
    },
    /// `POST /messageexchange/{mailbox}/outbox/{id}/{chunk}`
    UploadChunk {
        /// Mailbox in the path.
        mailbox: String,
        /// Message id.
        message_id: String,
        /// Chunk number text.
        chunk: String,
    },
    /// `GET /messageexchange/{mailbox}/outbox/tracking?messageID=`
    Track {
        /// Mailbox in the path.
        mailbox: String,
    },
    /// `GET /messageexchange/{mailbox}/outbox/tracking/{local_id}` (deprecated)
    TrackByLocalId {
        /// Mailbox in the path.
        mailbox: String,
        /// The sender's local id.
        local_id: String,
    },
    /// `GET /messageexchange/endpointlookup/{ods}/{workflow}`
    EndpointLookup {
        /// ODS code.
        ods_code: String,
        /// Workflow id.
        workflow_id: String,
    },
    /// `GET /messageexchange/workflowsearch/{workflow}`
    WorkflowSearch {
        /// Workflow id.
        workflow_id: String,
    },
    /// Sandbox: `DELETE /admin/reset[/{mailbox}]` (also under `/messageexchange`).
    AdminReset {
        /// One mailbox, or everything.
        mailbox: Option<String>,
    },
    /// Sandbox: `POST /messageexchange/admin/report` (also `/admin/report`).
    AdminReport,
}

impl Route {
    /// Whether the route is one of mesh-sandbox's admin endpoints.
    pub fn is_admin(&self) -> bool {
        matches!(self, Route::AdminReset { .. } | Route::AdminReport)
    }

    /// The mailbox named in the path, for routes that act for a mailbox
    /// (the token must be for this mailbox).
    pub fn mailbox(&self) -> Option<&str> {
        match self {
            Route::Handshake { mailbox }
            | Route::ListInbox { mailbox }
            | Route::Count { mailbox }
            | Route::Download { mailbox, .. }
            | Route::Acknowledge { mailbox, .. }
            | Route::Send { mailbox }
            | Route::UploadChunk { mailbox, .. }
            | Route::Track { mailbox }
            | Route::TrackByLocalId { mailbox, .. } => Some(mailbox),
            _ => None,
        }
    }

    /// Parses `method` and `path` (the part before `?`).
    pub fn parse(method: Method, path: &str) -> Result<Route, RouteError> {
        if path.len() > MAX_PATH_BYTES {
            return Err(RouteError::PathTooLong);
        }
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let raw: Vec<&str> = trimmed.split('/').skip(1).collect();
        if path.is_empty() || !path.starts_with('/') {
            return Err(RouteError::NotFound);
        }
        let mut segs = Vec::with_capacity(raw.len());
        for s in raw {
            segs.push(percent_decode(s)?);
        }
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        use Method::*;
        let allow = |allowed: &'static [&'static str], ok: bool, route: Route| {
            if ok {
                Ok(route)
            } else {
                Err(RouteError::MethodNotAllowed { allowed })
            }
        };
        let m = method;
        match s.as_slice() {
            ["messageexchange", "_ping"] | ["_ping"] => allow(&["GET"], m == Get, Route::Ping),
            ["admin", "reset"] | ["messageexchange", "admin", "reset"] => allow(
                &["DELETE"],
                m == Delete,
                Route::AdminReset { mailbox: None },
            ),
            ["admin", "reset", mb] | ["messageexchange", "admin", "reset", mb] => allow(
                &["DELETE"],
                m == Delete,
                Route::AdminReset {
                    mailbox: Some(mb.to_string()),
                },
            ),
            ["admin", "report"] | ["messageexchange", "admin", "report"] => {
                allow(&["POST"], m == Post, Route::AdminReport)
            }
            ["messageexchange", "endpointlookup", ods, wf] => allow(
                &["GET"],
                m == Get,
                Route::EndpointLookup {
                    ods_code: ods.to_string(),
                    workflow_id: wf.to_string(),
                },
            ),
            ["messageexchange", "workflowsearch", wf] => allow(
                &["GET"],
                m == Get,
                Route::WorkflowSearch {
                    workflow_id: wf.to_string(),
                },
            ),
            ["messageexchange", mb] if !mb.is_empty() => allow(
                &["POST", "GET"],
                m == Post || m == Get,
                Route::Handshake {
                    mailbox: mb.to_string(),
                },
            ),
            ["messageexchange", mb, "inbox"] => allow(
                &["GET"],
                m == Get,
                Route::ListInbox {
                    mailbox: mb.to_string(),
                },
            ),
            ["messageexchange", mb, "count"] => allow(
                &["GET"],
                m == Get,
                Route::Count {
                    mailbox: mb.to_string(),
                },
            ),
            ["messageexchange", mb, "inbox", id] => allow(
                &["GET", "HEAD"],
                m == Get || m == Head,
                Route::Download {
                    mailbox: mb.to_string(),
                    message_id: id.to_string(),
                    chunk: None,
                    head: m == Head,
                },
            ),
            ["messageexchange", mb, "inbox", id, "status", "acknowledged"] => allow(
                &["PUT"],
                m == Put,
                Route::Acknowledge {
                    mailbox: mb.to_string(),
                    message_id: id.to_string(),
                },
            ),
            ["messageexchange", mb, "inbox", id, chunk] => allow(
                &["GET", "HEAD"],
                m == Get || m == Head,
                Route::Download {
                    mailbox: mb.to_string(),
                    message_id: id.to_string(),
                    chunk: Some(chunk.to_string()),
                    head: m == Head,
                },
            ),
            ["messageexchange", mb, "outbox"] => allow(
                &["POST"],
                m == Post,
                Route::Send {
                    mailbox: mb.to_string(),
                },
            ),
            ["messageexchange", mb, "outbox", "tracking"] => allow(
                &["GET"],
                m == Get,
                Route::Track {
                    mailbox: mb.to_string(),
                },
            ),
            ["messageexchange", mb, "outbox", "tracking", local] => allow(
                &["GET"],
                m == Get,
                Route::TrackByLocalId {
                    mailbox: mb.to_string(),
                    local_id: local.to_string(),
                },
            ),
            ["messageexchange", mb, "outbox", id, chunk] => allow(
                &["POST"],
                m == Post,
                Route::UploadChunk {
                    mailbox: mb.to_string(),
                    message_id: id.to_string(),
                    chunk: chunk.to_string(),
                },
            ),
            _ => Err(RouteError::NotFound),
        }
    }
}

/// Why a request names no endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// No endpoint has this path.
    #[error("no MESH endpoint has this path; see the MESH API specification for the paths under /messageexchange/")]
    NotFound,
    /// The path exists but not for this method.
    #[error("this endpoint does not accept this method; use {}", allowed.join(" or "))]
    MethodNotAllowed {
        /// Methods the path takes.
        allowed: &'static [&'static str],
    },
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("the request path is longer than 2048 bytes")]
    PathTooLong,
    /// A segment is badly percent-encoded, not UTF-8, or too long.
    #[error("a path segment is badly percent-encoded, not UTF-8, or longer than 512 bytes")]
    BadSegment,
}

impl spine_core::ErrorCode for RouteError {
    fn code(&self) -> &'static str {
        match self {
            RouteError::NotFound => "MESH_NOT_FOUND",
            RouteError::MethodNotAllowed { .. } => "MESH_METHOD_NOT_ALLOWED",
            RouteError::PathTooLong => "MESH_PATH_TOO_LONG",
            RouteError::BadSegment => "MESH_BAD_PATH_SEGMENT",
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s` (`+` stays `+`: this is for paths; queries use
/// [`crate::mesh::query`]).
pub(crate) fn percent_decode(s: &str) -> Result<String, RouteError> {
    decode_bytes(s.as_bytes(), false, MAX_SEGMENT_BYTES)
}

pub(crate) fn decode_bytes(
    input: &[u8],
    plus_is_space: bool,
    max: usize,
) -> Result<String, RouteError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let hi = input.get(i + 1).copied().and_then(hex_value);
            let lo = input.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(RouteError::BadSegment),
            }
            i += 3;
        } else {
            out.push(if plus_is_space && b == b'+' { b' ' } else { b });
            i += 1;
        }
        if out.len() > max {
            return Err(RouteError::BadSegment);
        }
    }
    String::from_utf8(out).map_err(|_| RouteError::BadSegment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get(p: &str) -> Result<Route, RouteError> {
        Route::parse(Method::Get, p)
    }

    #[test]
    fn every_endpoint_parses() {
        assert_eq!(get("/messageexchange/_ping"), Ok(Route::Ping));
        assert_eq!(
            Route::parse(Method::Post, "/messageexchange/X26ABC1"),
            Ok(Route::Handshake {
                mailbox: "X26ABC1".into()
            })
        );
        assert_eq!(
            get("/messageexchange/X26ABC1/inbox"),
            Ok(Route::ListInbox {
                mailbox: "X26ABC1".into()
            })
        );
        assert_eq!(
            get("/messageexchange/X26ABC1/inbox/ID1/3"),
            Ok(Route::Download {
                mailbox: "X26ABC1".into(),
                message_id: "ID1".into(),
                chunk: Some("3".into()),
                head: false
            })
        );
        assert_eq!(
            Route::parse(Method::Head, "/messageexchange/X26ABC1/inbox/ID1"),
            Ok(Route::Download {
                mailbox: "X26ABC1".into(),
                message_id: "ID1".into(),
                chunk: None,
                head: true
            })
        );
        assert_eq!(
            Route::parse(
                Method::Put,
                "/messageexchange/X26ABC1/inbox/ID1/status/acknowledged"
            ),
            Ok(Route::Acknowledge {
                mailbox: "X26ABC1".into(),
                message_id: "ID1".into()
            })
        );
        assert_eq!(
            Route::parse(Method::Post, "/messageexchange/X26ABC1/outbox/ID1/2"),
            Ok(Route::UploadChunk {
                mailbox: "X26ABC1".into(),
                message_id: "ID1".into(),
                chunk: "2".into()
            })
        );
        assert_eq!(
            get("/messageexchange/X26ABC1/outbox/tracking/my%20ref"),
            Ok(Route::TrackByLocalId {
                mailbox: "X26ABC1".into(),
                local_id: "my ref".into()
            })
        );
        assert_eq!(
            get("/messageexchange/endpointlookup/X26/TEST_WORKFLOW"),
            Ok(Route::EndpointLookup {
                ods_code: "X26".into(),
                workflow_id: "TEST_WORKFLOW".into()
            })
        );
        assert_eq!(
            Route::parse(Method::Delete, "/admin/reset/X26ABC1"),
            Ok(Route::AdminReset {
                mailbox: Some("X26ABC1".into())
            })
        );
        assert!(Route::AdminReport.is_admin());
    }

    #[test]
    fn wrong_method_and_unknown_paths_are_told_apart() {
        assert_eq!(
            Route::parse(Method::Delete, "/messageexchange/X26ABC1/inbox"),
            Err(RouteError::MethodNotAllowed { allowed: &["GET"] })
        );
        assert_eq!(get("/nope"), Err(RouteError::NotFound));
        assert_eq!(get(""), Err(RouteError::NotFound));
        assert_eq!(
            get("/messageexchange/a/b/c/d/e/f/g"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            get("/messageexchange/X/inbox/%zz"),
            Err(RouteError::BadSegment)
        );
        assert_eq!(
            get("/messageexchange/X/inbox/%ff"),
            Err(RouteError::BadSegment)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(path in "(/[a-zA-Z0-9_%.~+-]{0,12}){0,8}", m in 0usize..6) {
            let method = [Method::Get, Method::Head, Method::Post, Method::Put, Method::Delete, Method::Other][m];
            let _ = Route::parse(method, &path);
        }
    }
}
