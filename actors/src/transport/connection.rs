//! [`ConnectionActor`]: one per client connection, holding its session —
//! the mailbox it authenticated as and its push subscription.
//!
//! Invariants and why:
//! - Until `HELLO` succeeds only `PING` is answered; everything else gets
//!   `NOT_AUTHENTICATED`, and the stream reads nothing past a `HELLO` until
//!   it has been answered (so what follows is decoded under the right
//!   limits). A connection still unauthenticated at `hello_deadline`
//!   (`handshake_timeout` after it opened) is closed by its streams. With client certificates required, the mailbox
//!   named in `HELLO` must be the certificate's (its CN) and active in the
//!   directory; otherwise the password is checked against the directory's
//!   salted hash. After [`MAX_FAILED_HELLOS`] failures the connection is
//!   closed, so one connection cannot be used to guess passwords quickly.
//! - Requests are served concurrently, bounded by the permit the stream
//!   reader took: once the connection is authenticated each stream polls
//!   its own requests' futures ([`serve_ordinary`]); the actor only does
//!   the session bookkeeping (`HELLO`, subscriptions), so one slow request
//!   never blocks the others.
//! - A subscription that asked for bodies (INLINE) gets each body the node
//!   had at hand (single chunk, at most `push_inline_bytes`) in its push;
//!   any other push is a notification to download.
//! - At most one subscription per connection; it ends with the stream it
//!   was made on, with `UNSUBSCRIBE`, or with the connection. Pushes stop
//!   at zero credit and resume when `CREDIT` grants more; credit never
//!   exceeds the protocol's `max_credit`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use spine_core::ids::MailboxId;
use spine_protocol::{Request, Response, WireError, WireErrorCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::handler::{error_response, handle, Answer};
use super::stream::{Outbox, Outgoing};
use super::Context;
use crate::budget::{ByteBudget, Reserved};

/// Failed `HELLO`s after which a connection is closed.
pub(crate) const MAX_FAILED_HELLOS: u32 = 3;

/// The actor (its state is [`ConnState`]).
#[derive(Debug)]
pub(crate) struct ConnectionActor;

/// What a connection's streams share with its actor.
#[derive(Debug)]
pub(crate) struct Session {
    /// Set once, by the actor, when `HELLO` succeeds. Streams then serve
    /// ordinary requests themselves, without a hop through the actor.
    pub(crate) mailbox: OnceLock<MailboxId>,
    /// Requests in flight on the connection (all its streams).
    pub(crate) in_flight: Arc<Semaphore>,
    /// Bytes the connection makes the server hold: large frames being
    /// received, downloaded chunks not yet written (all its streams).
    pub(crate) buffered: ByteBudget,
    /// When a connection that has not authenticated is closed.
    pub(crate) hello_deadline: tokio::time::Instant,
}

impl Session {
    pub(crate) fn new(context: &Context) -> Arc<Session> {
        Arc::new(Session {
            mailbox: OnceLock::new(),
            in_flight: Arc::new(Semaphore::new(context.max_in_flight)),
            buffered: ByteBudget::new(context.connection_buffered_bytes),
            hello_deadline: tokio::time::Instant::now() + context.handshake_timeout,
        })
    }
}

/// What a request holds while it is served: its place in the connection's
/// in-flight window and, for a large frame, the bytes it was received in.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) _in_flight: OwnedSemaphorePermit,
    pub(crate) _received: Option<Reserved>,
}

/// Whether a request is served by [`handle`] alone (not connection state).
pub(crate) fn is_ordinary(request: &Request) -> bool {
    !matches!(
        request,
        Request::Hello { .. }
            | Request::Subscribe { .. }
            | Request::Credit { .. }
            | Request::Unsubscribe
            | Request::RegisterProvider { .. }
            | Request::ProviderReply { .. }
    )
}

/// Serves an ordinary request for `mailbox`; the answer goes to `out` and
/// `slot` is released once it is queued there. A download's chunk stays
/// counted in the connection's `buffered` bytes until the writer has
/// written its last piece.
pub(crate) async fn serve_ordinary(
    context: Arc<Context>,
    mailbox: MailboxId,
    id: u64,
    request: Request,
    out: Outbox,
    slot: Slot,
    buffered: ByteBudget,
) {
    match handle(
        &context.node,
        &mailbox,
        request,
        context.piece_bytes,
        &buffered,
    )
    .await
    {
        Answer::One(response) => {
            let _ = out.send(Outgoing::Frame(id, response)).await;
        }
        Answer::Pieces(pieces, held) => {
            for piece in pieces {
                if out.send(Outgoing::Frame(id, piece)).await.is_err() {
                    break;
                }
            }
            let _ = out.send(Outgoing::Release(held)).await;
        }
    }
    drop(slot);
}

/// Starts the actor of a new connection, linked to the transport
/// supervisor, with a fresh [`Session`]; `None` (logged) if it cannot.
pub(crate) async fn start_connection(
    context: &Arc<Context>,
    supervisor: &ActorRef<()>,
    peer: SocketAddr,
    cert_mailbox: Option<MailboxId>,
    transport: &'static str,
) -> Option<(ActorRef<ConnMsg>, Arc<Session>)> {
    let session = Session::new(context);
    let args = ConnArgs {
        context: Arc::clone(context),
        session: Arc::clone(&session),
        peer,
        cert_mailbox,
        transport,
    };
    match Actor::spawn_linked(None, ConnectionActor, args, supervisor.get_cell()).await {
        Ok((actor, _)) => Some((actor, session)),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot start a connection actor");
            None
        }
    }
}

/// What a connection actor starts with.
#[derive(Debug)]
pub(crate) struct ConnArgs {
    pub(crate) context: Arc<Context>,
    pub(crate) session: Arc<Session>,
    pub(crate) peer: SocketAddr,
    /// The mailbox a verified client certificate maps to.
    pub(crate) cert_mailbox: Option<MailboxId>,
    /// `tcp`, `tls` or `quic`, for logs.
    pub(crate) transport: &'static str,
}

/// Messages from the connection's streams. (`Request` is large and the
/// other variant small; boxing it would cost an allocation per request.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum ConnMsg {
    /// A decoded request, its answer's outbox and its slot; `answered`
    /// (dropped once the request has been answered) lets a stream wait for
    /// a `HELLO`'s outcome before it decodes what follows.
    Request {
        id: u64,
        request: Request,
        out: Outbox,
        slot: Slot,
        stream_id: u64,
        answered: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// The client ended a stream.
    StreamEnded { stream_id: u64 },
}

/// A connection's session.
#[derive(Debug)]
pub(crate) struct ConnState {
    args: ConnArgs,
    mailbox: Option<MailboxId>,
    failed_hellos: u32,
    subscription: Option<Subscription>,
    provider: Option<Provider>,
}

/// This connection as a provider of one service.
#[derive(Debug)]
struct Provider {
    /// The stream it was registered on: its calls go out there, so it ends
    /// with that stream (the call loop holds the stream's outbox).
    stream_id: u64,
    service: spine_core::services::ServiceName,
    id: spine_core::services::ProviderId,
    node: crate::node::NodeHandle,
    task: JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
        // Its pending requests are retried elsewhere (or failed) at once.
        self.node.unregister_provider(&self.service, self.id);
    }
}

#[derive(Debug)]
struct Subscription {
    stream_id: u64,
    credit: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = ConnState;
    type Arguments = ConnArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ConnMsg>,
        args: ConnArgs,
    ) -> Result<ConnState, ActorProcessingErr> {
        metrics::gauge!("spine_connections").increment(1.0);
        tracing::debug!(peer = %args.peer, transport = args.transport, "connection opened");
        Ok(ConnState {
            args,
            mailbox: None,
            failed_hellos: 0,
            subscription: None,
            provider: None,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ConnMsg>,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        metrics::gauge!("spine_connections").decrement(1.0);
        state.subscription = None;
        state.provider = None;
        tracing::debug!(peer = %state.args.peer, "connection closed");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        msg: ConnMsg,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnMsg::StreamEnded { stream_id } => {
                if state
                    .subscription
                    .as_ref()
                    .is_some_and(|s| s.stream_id == stream_id)
                {
                    state.subscription = None;
                }
                if state
                    .provider
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    state.provider = None;
                }
            }
            ConnMsg::Request {
                id,
                request,
                out,
                slot,
                stream_id,
                answered,
            } => {
                state
                    .request(&myself, id, request, out, slot, stream_id)
                    .await;
                drop(answered);
            }
        }
        Ok(())
    }
}

impl ConnState {
    async fn request(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        id: u64,
        request: Request,
        out: Outbox,
        slot: Slot,
        stream_id: u64,
    ) {
        let context = Arc::clone(&self.args.context);
        let Some(mailbox) = self.mailbox.clone() else {
            let answer = match request {
                Request::Hello {
                    mailbox, password, ..
                } => self.hello(mailbox, password.expose()).await,
                Request::Ping => Response::Pong,
                _ => error_response(
                    WireErrorCode::NotAuthenticated,
                    "authenticate first: send HELLO with your mailbox and password",
                ),
            };
            let _ = out.send(Outgoing::Frame(id, answer)).await;
            if self.failed_hellos >= MAX_FAILED_HELLOS {
                tracing::info!(peer = %self.args.peer, "closing a connection after repeated failed HELLOs");
                let _ = out.send(Outgoing::Close).await;
                myself.stop(None);
            }
            drop(slot);
            return;
        };
        match request {
            Request::Hello { .. } => {
                let answer = error_response(
                    WireErrorCode::UnexpectedFrame,
                    "this connection is already authenticated; open a new connection for \
                     another mailbox",
                );
                let _ = out.send(Outgoing::Frame(id, answer)).await;
            }
            Request::Subscribe { credit, inline } => {
                self.subscription = None;
                let max = context.limits.max_credit;
                let credit = credit.min(max);
                // Registered before SUBSCRIBED is sent, so every message
                // accepted after the client sees SUBSCRIBED is pushed.
                match context.node.subscribe(&mailbox).await {
                    Ok(notifications) => {
                        let _ = out
                            .send(Outgoing::Frame(id, Response::Subscribed { credit }))
                            .await;
                        let window = Arc::new(Semaphore::new(credit as usize));
                        let inline_max = if inline { context.push_inline_bytes } else { 0 };
                        let task = tokio::spawn(push_loop(
                            notifications,
                            Arc::clone(&window),
                            out,
                            inline_max,
                            context.node.clone(),
                        ));
                        self.subscription = Some(Subscription {
                            stream_id,
                            credit: window,
                            task,
                        });
                    }
                    Err(e) => {
                        let _ = out
                            .send(Outgoing::Frame(
                                id,
                                Response::Error(WireError::from_error(&e)),
                            ))
                            .await;
                    }
                }
            }
            Request::Credit { add } => {
                if let Some(sub) = &self.subscription {
                    let max = context.limits.max_credit as usize;
                    let room = max.saturating_sub(sub.credit.available_permits());
                    sub.credit.add_permits((add as usize).min(room));
                }
            }
            Request::Unsubscribe => {
                self.subscription = None;
                let _ = out.send(Outgoing::Frame(id, Response::Unsubscribed)).await;
            }
            Request::RegisterProvider { service } => {
                let answer = self
                    .register_provider(&mailbox, &service, out.clone(), stream_id)
                    .await;
                let _ = out.send(Outgoing::Frame(id, answer)).await;
            }
            Request::ProviderReply {
                correlation,
                result,
            } => {
                let answer = match &self.provider {
                    None => error_response(
                        WireErrorCode::UnexpectedFrame,
                        "this connection is not a provider; send REGISTER_PROVIDER first",
                    ),
                    Some(p) => {
                        let result =
                            result.map_err(|f| spine_core::services::ServiceError::Provider {
                                code: f.code,
                                message: f.message,
                            });
                        match context
                            .node
                            .provider_reply(&p.service, p.id, correlation, result)
                        {
                            Ok(()) => Response::ProviderReplyOk,
                            Err(e) => {
                                error_response(WireErrorCode::UnexpectedFrame, &e.to_string())
                            }
                        }
                    }
                };
                let _ = out.send(Outgoing::Frame(id, answer)).await;
            }
            // Before HELLO_OK reached the stream (pipelined behind HELLO):
            // on a task of its own.
            other => {
                let buffered = self.args.session.buffered.clone();
                tokio::spawn(serve_ordinary(
                    context, mailbox, id, other, out, slot, buffered,
                ));
            }
        }
    }

    /// Makes this connection a provider of `service` (one per connection):
    /// calls are forwarded to `out` as `SERVICE_CALL` pushes until the
    /// connection ends, which unregisters it.
    async fn register_provider(
        &mut self,
        mailbox: &MailboxId,
        service: &str,
        out: Outbox,
        stream_id: u64,
    ) -> Response {
        if let Some(p) = &self.provider {
            return error_response(
                WireErrorCode::UnexpectedFrame,
                &format!(
                    "this connection already provides {}; open another connection for another service",
                    p.service
                ),
            );
        }
        let node = self.args.context.node.clone();
        match node.register_provider(mailbox, service).await {
            Ok(registration) => {
                let response = Response::ProviderRegistered {
                    provider_id: registration.id,
                    service: registration.service.to_string(),
                };
                tracing::info!(peer = %self.args.peer, %mailbox, service = %registration.service, provider = registration.id, "provider registered");
                let task = tokio::spawn(call_loop(
                    registration.calls,
                    registration.service.to_string(),
                    out,
                ));
                self.provider = Some(Provider {
                    stream_id,
                    service: registration.service,
                    id: registration.id,
                    node,
                    task,
                });
                response
            }
            Err(e) => {
                use spine_core::ErrorCode;
                let code = if e.code() == "SVC_NOT_ACCREDITED" {
                    WireErrorCode::Forbidden
                } else {
                    WireErrorCode::UnexpectedFrame
                };
                Response::Error(WireError::new(code, e.code(), &e.to_string()))
            }
        }
    }

    async fn hello(&mut self, mailbox: MailboxId, password: &str) -> Response {
        let context = &self.args.context;
        let result = if context.require_client_cert {
            match &self.args.cert_mailbox {
                Some(cert) if *cert == mailbox && context.node.mailbox_active(&mailbox) => Ok(()),
                Some(cert) if *cert != mailbox => Err(format!(
                    "your client certificate is for mailbox {cert}, not {mailbox}; use the \
                     certificate issued for the mailbox you name"
                )),
                Some(_) => Err(format!("mailbox {mailbox} is unknown or inactive")),
                None => Err(
                    "this server requires a client certificate that maps to your mailbox"
                        .to_string(),
                ),
            }
        } else {
            context
                .node
                .authenticate(&mailbox, password)
                .await
                .map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                tracing::debug!(peer = %self.args.peer, %mailbox, "authenticated");
                self.mailbox = Some(mailbox.clone());
                let _ = self.args.session.mailbox.set(mailbox.clone());
                Response::HelloOk {
                    mailbox,
                    server_name: context.server_name.clone(),
                    limits: context.limits.advertise(),
                }
            }
            Err(why) => {
                self.failed_hellos += 1;
                metrics::counter!("spine_auth_failures_total").increment(1);
                error_response(WireErrorCode::AuthFailed, &why)
            }
        }
    }
}

/// Pushes each newly accepted message while credit lasts, with its body
/// when it is at most `inline_max` bytes and the node has it at hand or
/// can read it from where the notification says it lies (a message
/// refilled to a subscriber that fell behind).
async fn push_loop(
    mut notifications: tokio::sync::mpsc::Receiver<crate::node::Notification>,
    credit: Arc<Semaphore>,
    out: Outbox,
    inline_max: usize,
    node: crate::node::NodeHandle,
) {
    while let Some(n) = notifications.recv().await {
        let Ok(permit) = credit.acquire().await else {
            return;
        };
        permit.forget();
        let body = match (n.body, n.body_at) {
            (Some(body), _) => Some(body),
            (None, Some(loc)) if loc.len as usize <= inline_max => node.read_pushed_body(loc).await,
            (None, _) => None,
        };
        let push = Response::Push {
            envelope: n.envelope,
            order: n.order,
            body: body.filter(|b| b.len() <= inline_max),
        };
        if out.send(Outgoing::Frame(0, push)).await.is_err() {
            return;
        }
    }
}

/// Forwards service calls to the provider's connection as pushes.
async fn call_loop(
    mut calls: tokio::sync::mpsc::Receiver<crate::services::ProviderCall>,
    service: String,
    out: Outbox,
) {
    while let Some(call) = calls.recv().await {
        let r = &call.request;
        let push = Response::ServiceCall(spine_protocol::ServiceCall {
            correlation: call.correlation,
            service: service.clone(),
            interaction: r.interaction.clone(),
            operation: r.operation.clone(),
            asid: r.asid.clone(),
            ods: r.ods.clone(),
            message_id: r.message_id.clone(),
            body: r.body.clone(),
        });
        if out.send(Outgoing::Frame(0, push)).await.is_err() {
            return;
        }
    }
}
