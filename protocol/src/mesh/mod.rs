//! The MESH REST API (v1 and v2) as sans-IO pieces: request routing, the
//! `NHSMESH` token, `Mex-*` send headers, response bodies and errors. The
//! HTTP server in `spine-actors` (`mesh` module) does the I/O and calls the
//! node; everything it decides about bytes is decided here, where it can be
//! tested without sockets.
//!
//! The authority is NHS Digital's OpenAPI document (`mesh-api.yaml`); where
//! it is silent, mesh-sandbox and the real mesh-client 5.x are followed.

pub mod auth;
pub mod error;
pub mod headers;
pub mod query;
pub mod route;
pub mod version;
pub mod views;
