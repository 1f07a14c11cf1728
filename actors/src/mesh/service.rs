//! [`Mesh`]: one HTTP request in, one response out. Negotiates the version,
//! routes, authenticates the NHSMESH token, then hands the request to its
//! handler (`mailbox`, `outbox`, `lookup`, `admin`).
//!
//! Invariants and why:
//! - With a verified client certificate, the token must be for the
//!   certificate's mailbox (its CN), so a certificate and another
//!   mailbox's password together do not open that mailbox.
//! - Every route except `_ping`, the look-ups (as in the spec; a token sent
//!   with them must still be valid) and the sandbox's admin endpoints (only
//!   served with `--sandbox`) needs a valid, fresh, unused token for the
//!   mailbox in its path; the caller then acts only as that mailbox.
//! - A token is spent when its request is answered, except when the answer
//!   is one mesh-client retries with the same token (429, 503): then it is
//!   un-recorded so the retry is not mistaken for a replay.
//! - Every error is a JSON body in the negotiated version with a MESH code
//!   and Spine's stable code; nothing here panics on input.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION};
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use spine_core::ids::MailboxId;
use spine_protocol::mesh::auth::{AuthError, Token};
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::route::{Method, Route, RouteError};
use spine_protocol::mesh::version::{AcceptError, ApiVersion};
use spine_protocol::mesh::views;

use super::config::MeshConfig;
use super::errors::from_auth;
use super::replay::{ReplayCache, Seen};
use super::reply::{self, Body, Ctx};
use super::{admin, lookup, mailbox, outbox};
use crate::budget::ByteBudget;
use crate::node::NodeHandle;

/// State shared by every MESH request.
#[derive(Debug)]
pub(crate) struct Mesh {
    pub(crate) node: NodeHandle,
    pub(crate) config: MeshConfig,
    replay: ReplayCache,
    /// Client certificates are required: one must name the token's mailbox.
    require_cert: bool,
    /// Request-body bytes buffered across requests.
    pub(crate) budget: ByteBudget,
    next_request: AtomicU64,
}

/// What the connection's verified client certificate says, if TLS asked
/// for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertIdentity {
    /// No client certificate (plain HTTP, or TLS without one).
    None,
    /// A verified certificate whose CN names this mailbox.
    Mailbox(MailboxId),
    /// A verified certificate that names no mailbox.
    Unmapped,
}

/// Who a request acts for, and the token it spent.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) mailbox: MailboxId,
    replay_key: (String, String, u64),
}

impl Mesh {
    pub(crate) fn new(node: NodeHandle, config: MeshConfig, require_cert: bool) -> Mesh {
        Mesh {
            replay: ReplayCache::new(
                config.replay_nonces,
                Duration::from_secs(config.token_window_secs),
            ),
            budget: ByteBudget::new(config.max_buffered_bytes),
            require_cert,
            next_request: AtomicU64::new(1),
            node,
            config,
        }
    }

    /// Serves one request.
    pub(crate) async fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
        cert: CertIdentity,
    ) -> Result<Response<Body>, Infallible> {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = request.into_parts();
        let accept = header(&parts.headers, ACCEPT.as_str());
        let version = ApiVersion::from_accept(accept);
        let ctx = Ctx {
            version: version.unwrap_or(ApiVersion::V1),
            internal_id: format!("spine-{:x}-{n:x}", self.node.now().as_micros()),
        };
        let started = std::time::Instant::now();
        let response = match self.handle(version, &parts, body, &ctx, &cert).await {
            Ok((response, caller)) => {
                if let Some(caller) = caller {
                    if !spends_token(response.status().as_u16()) {
                        let (mailbox, nonce, count) = &caller.replay_key;
                        self.replay.forget(mailbox, nonce, *count);
                    }
                }
                response
            }
            Err(e) => reply::error(&e, &ctx),
        };
        let status = response.status().as_u16();
        metrics::counter!("spine_mesh_requests_total", "status" => status_class(status))
            .increment(1);
        if status >= 400 {
            tracing::debug!(
                internal_id = %ctx.internal_id,
                method = %parts.method,
                path = %parts.uri.path(),
                status,
                elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "MESH request refused"
            );
        }
        Ok(response)
    }

    async fn handle(
        &self,
        version: Result<ApiVersion, AcceptError>,
        parts: &Parts,
        body: Incoming,
        ctx: &Ctx,
        cert: &CertIdentity,
    ) -> Result<(Response<Body>, Option<Caller>), MeshError> {
        version
            .map_err(|e| MeshError::new(400, "06", "RECEIVE", "MESH_BAD_ACCEPT", e.to_string()))?;
        let route = Route::parse(Method::parse(parts.method.as_str()), parts.uri.path())
            .map_err(route_error)?;
        if route.is_admin() && !self.config.sandbox {
            return Err(route_error(RouteError::NotFound));
        }
        match route {
            Route::Ping => Ok((
                reply::json(
                    200,
                    ApiVersion::V1,
                    Some(views::ping("spine", self.node.now())),
                ),
                None,
            )),
            Route::AdminReset { mailbox } => {
                Ok((admin::reset(self, mailbox.as_deref(), ctx).await?, None))
            }
            Route::AdminReport => Ok((admin::report(self, parts, body, ctx).await?, None)),
            // The spec's look-ups need no token (its examples send none; in
            // production the client certificate identifies the caller); a
            // token that is sent must still be valid.
            Route::EndpointLookup { .. } | Route::WorkflowSearch { .. }
                if !parts.headers.contains_key(AUTHORIZATION) =>
            {
                let response = match route {
                    Route::EndpointLookup {
                        ods_code,
                        workflow_id,
                    } => lookup::endpoint(self, &ods_code, &workflow_id, ctx).await,
                    Route::WorkflowSearch { workflow_id } => {
                        lookup::workflow(self, &workflow_id, ctx).await
                    }
                    _ => Err(route_error(RouteError::NotFound)),
                };
                Ok((response.unwrap_or_else(|e| reply::error(&e, ctx)), None))
            }
            route => {
                let caller = self.authenticate(&parts.headers, route.mailbox(), cert)?;
                let response = self.dispatch(route, &caller, parts, body, ctx).await;
                match response {
                    Ok(r) => Ok((r, Some(caller))),
                    Err(e) => Ok((reply::error(&e, ctx), Some(caller))),
                }
            }
        }
    }

    async fn dispatch(
        &self,
        route: Route,
        caller: &Caller,
        parts: &Parts,
        body: Incoming,
        ctx: &Ctx,
    ) -> Result<Response<Body>, MeshError> {
        let me = &caller.mailbox;
        match route {
            Route::Handshake { .. } => mailbox::handshake(me, parts, ctx),
            Route::ListInbox { .. } => mailbox::list(self, me, parts, ctx).await,
            Route::Count { .. } => mailbox::count(self, me, ctx).await,
            Route::Download {
                message_id,
                chunk,
                head,
                ..
            } => mailbox::download(self, me, &message_id, chunk.as_deref(), head, parts, ctx).await,
            Route::Acknowledge { message_id, .. } => {
                mailbox::acknowledge(self, me, &message_id, ctx).await
            }
            Route::Send { .. } => outbox::send(self, me, parts, body, ctx).await,
            Route::UploadChunk {
                message_id, chunk, ..
            } => outbox::upload_chunk(self, me, &message_id, &chunk, parts, body, ctx).await,
            Route::Track { .. } => outbox::track(self, me, parts, ctx).await,
            Route::TrackByLocalId { local_id, .. } => {
                outbox::track_by_local_id(self, me, &local_id, ctx).await
            }
            Route::EndpointLookup {
                ods_code,
                workflow_id,
            } => lookup::endpoint(self, &ods_code, &workflow_id, ctx).await,
            Route::WorkflowSearch { workflow_id } => {
                lookup::workflow(self, &workflow_id, ctx).await
            }
            Route::Ping | Route::AdminReset { .. } | Route::AdminReport => {
                Err(route_error(RouteError::NotFound))
            }
        }
    }

    /// Checks the `Authorization` token: well formed, for the path's
    /// mailbox, signed with its password and the shared key, fresh, unused.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        path_mailbox: Option<&str>,
        cert: &CertIdentity,
    ) -> Result<Caller, MeshError> {
        let deny = |e: AuthError| {
            metrics::counter!("spine_mesh_auth_failures_total").increment(1);
            from_auth(&e)
        };
        let raw = headers
            .get(AUTHORIZATION)
            .ok_or(AuthError::Missing)
            .and_then(|v| {
                v.to_str()
                    .map_err(|_| AuthError::Malformed("the header is not ASCII text"))
            })
            .map_err(deny)?;
        let token = Token::parse(raw).map_err(deny)?;
        let mailbox = token.mailbox_id().map_err(deny)?;
        if let Some(path) = path_mailbox {
            if !path.eq_ignore_ascii_case(&token.mailbox) {
                return Err(deny(AuthError::MailboxMismatch));
            }
        }
        // A verified client certificate binds the connection to its
        // mailbox, as on the native protocol: a token cannot widen it.
        match cert {
            CertIdentity::Mailbox(m) if m != &mailbox => {
                return Err(deny(AuthError::CertificateMismatch))
            }
            CertIdentity::Unmapped if self.require_cert => {
                return Err(deny(AuthError::CertificateMismatch))
            }
            _ => {}
        }
        let secret = self
            .node
            .directory()
            .mailbox(&mailbox)
            .filter(|m| m.active)
            .and_then(|m| m.credential.mesh_secret());
        let Some(secret) = secret else {
            return Err(deny(AuthError::BadSignature));
        };
        let now = self.node.now();
        token
            .verify(
                secret.expose_secret(),
                self.config.shared_key.as_bytes(),
                now,
                Duration::from_secs(self.config.token_window_secs),
            )
            .map_err(deny)?;
        let replay_key = token.replay_key();
        match self
            .replay
            .check(&replay_key.0, &replay_key.1, replay_key.2, token.timestamp, now)
        {
            Seen::Fresh => Ok(Caller {
                mailbox,
                replay_key,
            }),
            Seen::Replayed => Err(deny(AuthError::Replayed)),
            Seen::Full => Err(MeshError::new(
                503,
                "",
                "AUTHENTICATION",
                "MESH_REPLAY_CACHE_FULL",
                "too many distinct token nonces are in use to check replays; retry shortly (clients should reuse one nonce with an increasing count)",
            )),
        }
    }
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn route_error(e: RouteError) -> MeshError {
    use spine_core::ErrorCode;
    let status = match e {
        RouteError::NotFound => 404,
        RouteError::MethodNotAllowed { .. } => 405,
        RouteError::PathTooLong => 414,
        RouteError::BadSegment => 400,
    };
    MeshError::new(status, "", "RECEIVE", e.code(), e.to_string())
}

/// Whether an answer with `status` spends the request's token. mesh-client
/// (urllib3 `Retry`) resends the same prepared request, token included, on
/// 425, 429, 502, 503 and 504; those answers leave the token unspent so the
/// retry is not refused as a replay. Everything else spends it.
fn spends_token(status: u16) -> bool {
    !matches!(status, 425 | 429 | 502..=504)
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::spends_token;

    #[test]
    fn only_answers_mesh_client_retries_leave_the_token_unspent() {
        for retried in [425, 429, 502, 503, 504] {
            assert!(!spends_token(retried), "{retried}");
        }
        for final_answer in [200, 202, 206, 400, 403, 404, 410, 413, 417, 423, 500] {
            assert!(spends_token(final_answer), "{final_answer}");
        }
    }
}
