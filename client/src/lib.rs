//! `spine-client`: an async client for Spine's native protocol over TCP,
//! TLS (rustls) and QUIC (quinn). The CLI, the load generator and the
//! simulator use it.
//!
//! A [`Client`] holds one connection, shared by all its clones. Requests
//! are pipelined on it (up to [`ClientConfig::max_in_flight`]; further
//! callers wait for a slot), answers are matched to requests by id, so
//! they may arrive in any order, and a lost connection is replaced by the
//! next call.
//!
//! ```no_run
//! use bytes::Bytes;
//! use spine_client::{Client, ClientConfig, Endpoint};
//! use spine_core::ids::{MailboxId, WorkflowId};
//! use spine_protocol::SendHeader;
//!
//! # async fn run() -> Result<(), spine_client::ClientError> {
//! let endpoint = Endpoint::parse("native://127.0.0.1:7701")?;
//! let mailbox = MailboxId::parse("X26ABC1").expect("valid mailbox id");
//! let client = Client::connect(ClientConfig::new(endpoint, mailbox, "password")).await?;
//! println!("connected to {}", client.session().server_name);
//!
//! // Send: answered once the message is durable on the server.
//! let to = MailboxId::parse("X26ABC2").expect("valid mailbox id");
//! let workflow = WorkflowId::parse("PATH_TEST").expect("valid workflow id");
//! let ok = client
//!     .send(SendHeader::simple(to, workflow), Bytes::from_static(b"hello"))
//!     .await?;
//! println!("sent {}", ok.message_id);
//!
//! // Receive: list, download, acknowledge.
//! let page = client.list_inbox(None, 100, None).await?;
//! for entry in page.messages {
//!     let chunk = client.download(entry.message_id, 1).await?;
//!     println!("{} bytes from {}", chunk.body.len(), chunk.envelope.sender);
//!     client.acknowledge(entry.message_id).await?;
//! }
//!
//! // Push delivery with a window of 16 (credit is granted back as pushes
//! // are consumed). `None` means the subscription ended: re-subscribe and
//! // re-list the inbox to catch up.
//! let mut pushes = client.subscribe(16).await?;
//! while let Some(push) = pushes.next().await {
//!     println!("new message {}", push.envelope.message_id);
//! }
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Transports
//!
//! - `native://HOST:PORT` (default port 7701): TCP. One connection; a
//!   writer task coalesces every queued frame into one vectored write, a
//!   reader task decodes answers and routes them by request id.
//! - `natives://HOST:PORT`: the same over TLS (rustls, ring). The server is
//!   verified against [`TlsOptions::ca_file`], which is required: there is
//!   no mode that skips verification. [`TlsOptions::client_cert`] and
//!   [`TlsOptions::client_key`] present a client certificate to a server
//!   that requires one (`HELLO` still names the mailbox).
//!   [`TlsOptions::server_name`] overrides the name checked (default: the
//!   host).
//! - `quic://HOST:PORT` (default UDP port 7702): QUIC, always TLS 1.3 with
//!   ALPN `spine/1` ([`ALPN`]; also offered over TLS on TCP). Concurrent
//!   requests travel on separate streams:
//!   - `HELLO` goes on the connection's first bidirectional stream: the
//!     client writes the `HELLO` frame (request id 1) and finishes its send
//!     side; the server answers `HELLO_OK` or `ERROR` on it and finishes.
//!     Nothing else is sent before `HELLO_OK`. A server that refuses
//!     `HELLO` should leave closing the connection to the client (which
//!     does so at once), or the `ERROR` may be lost in the close.
//!   - Every other request opens a new bidirectional stream: the client
//!     writes exactly one request frame (a fresh non-zero request id) and
//!     finishes its send side; the server writes the answer (one frame, or
//!     the `DOWNLOAD_DATA` pieces up to the one with END, or an `ERROR`)
//!     with the same request id, and finishes.
//!   - A subscription holds one bidirectional stream open: the client
//!     writes `SUBSCRIBE` and does not finish; the server answers
//!     `SUBSCRIBED`, then writes `PUSH` frames (request id 0) on the same
//!     stream; the client writes `CREDIT` frames (fresh ids, unanswered) on
//!     its send side. The client ends it by writing `UNSUBSCRIBE` and
//!     finishing (the server answers `UNSUBSCRIBED` and finishes), or, when
//!     a [`Subscription`] is dropped, by just finishing its send side and
//!     stopping its receive side: the server treats the end of the stream
//!     as `UNSUBSCRIBE`.
//!
//! # Failures
//!
//! Every error is a [`ClientError`] with a stable code
//! (`spine_core::ErrorCode`): `CLIENT_CONNECT_FAILED`, `CLIENT_TLS`,
//! `CLIENT_TIMEOUT`, `CLIENT_CONNECTION_LOST`, `CLIENT_PROTOCOL`,
//! `CLIENT_ENDPOINT_INVALID`, `CLIENT_CONFIG_INVALID`,
//! `CLIENT_REQUEST_INVALID`, `CLIENT_ALREADY_SUBSCRIBED`, `CLIENT_CLOSED`,
//! or, for an `ERROR` frame from the server, [`ClientError::Server`] with
//! the server's numeric class, precise name and message (its code is the
//! class name, e.g. `AUTH_FAILED`).
//!
//! - Every request is bounded by [`ClientConfig::request_timeout`] and
//!   every connection attempt by [`ClientConfig::connect_timeout`]: no call
//!   hangs.
//! - When the connection is lost, requests in flight fail with
//!   `CLIENT_CONNECTION_LOST` (their outcome is unknown: retry sends with
//!   the same idempotency key); the next call reconnects and says `HELLO`
//!   again. Requests are never retried behind the caller's back.
//! - A [`Subscription`] ends (its `next` returns `None`) when its
//!   connection is lost: re-subscribe and re-list the inbox, since pushes
//!   sent meanwhile are gone. The server may also drop pushes under load;
//!   re-listing catches up then too.
//!
//! Invariants kept by this crate: nothing the server sends can make it
//! panic; every queue is bounded (the pipelining semaphore bounds the
//! outgoing queue; pushes are bounded by the granted credit; downloads by
//! [`DEFAULT_MAX_DOWNLOAD_BYTES`] or the bound given to
//! [`Client::download_bounded`]); a frame is always written whole,
//! even when its caller gives up.

mod client;
mod coalesce;
mod config;
mod conn;
mod endpoint;
mod error;
mod quic;
mod quic_provider;
mod service;
mod stream;
mod tls;

#[cfg(test)]
mod tests;

pub use client::{Client, InboxPage, Push, Session, Subscription};
pub use config::{
    ClientConfig, TlsOptions, DEFAULT_COALESCE_SENDS, DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_IN_FLIGHT,
};
pub use endpoint::{Endpoint, DEFAULT_NATIVE_PORT, DEFAULT_QUIC_PORT};
pub use error::ClientError;
pub use service::{ProviderCalls, RequestOptions};
pub use tls::ALPN;

pub use spine_protocol::{
    BatchItem, DownloadedChunk, InboxEntry, Limits, LookupEntry, SendHeader, SendOk, ServerLimits,
    ServiceCall, ServiceFault, TrackInfo, WireError, WireErrorCode,
};
