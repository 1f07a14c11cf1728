//! Tests of the client against a minimal fake server on loopback: plain
//! TCP, TLS (tokio-rustls) and QUIC (quinn), with rcgen certificates.

mod fake;
mod native;
mod quic;
mod tls;
