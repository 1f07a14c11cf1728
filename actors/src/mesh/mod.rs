//! The MESH REST API (v1 and v2) over HTTP/1.1 or HTTPS, in front of the
//! same [`NodeHandle`](crate::node::NodeHandle) as the native protocol: a
//! message sent through MESH can be read natively and the other way round.
//!
//! Shape: [`server`] accepts connections and runs hyper's HTTP/1.1 server
//! on each; every request goes to [`service::Mesh::serve`], which
//! negotiates the version, routes (`spine_protocol::mesh::route`), checks
//! the NHSMESH token ([`replay`] remembers used ones) and calls a handler:
//! [`mailbox`] (handshake, inbox, download, acknowledge), [`outbox`]
//! (send, chunks, tracking), [`lookup`], and [`admin`] (mesh-sandbox's
//! admin endpoints, only with `--sandbox`). Everything about bytes (header
//! parsing, bodies of answers, error shapes) lives sans-IO in
//! `spine_protocol::mesh`.
//!
//! Invariants and why:
//! - A `202` to a send or chunk means the node made it durable.
//! - Bounded everywhere: connections, header and body time, request body
//!   size (after decompression), bytes buffered across requests (a budget:
//!   uploads wait, nothing is dropped), and the replay cache.
//! - A request acts only for the mailbox its token names.

mod admin;
mod body;
pub mod config;
mod errors;
mod lookup;
mod mailbox;
mod outbox;
mod replay;
mod reply;
mod server;
mod service;
mod status;

pub use config::MeshConfig;
pub use server::{MeshServer, MeshServerError};
