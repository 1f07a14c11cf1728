//! [`NetworkConfig`]: where the native protocol listens and its limits.
//!
//! Invariant: [`NetworkConfig::validate`] is the single source of the
//! ranges and cross-setting rules (the binary's configuration layer checks
//! each value with it), so a value is judged the same wherever it came from.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the native TCP listener binds by default (loopback only).
pub const DEFAULT_NATIVE_LISTEN: &str = "127.0.0.1:7701";
/// Where the QUIC endpoint binds by default (UDP, loopback only).
pub const DEFAULT_QUIC_LISTEN: &str = "127.0.0.1:7702";

/// `[network]`: the native protocol's listeners, TLS and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Serve the native protocol over TCP (TLS when a certificate is set).
    pub native_enabled: bool,
    /// TCP `IP:PORT` (port 0 picks a free port).
    pub native_listen: String,
    /// Serve the native protocol over QUIC (needs `tls_cert`/`tls_key`).
    pub quic_enabled: bool,
    /// UDP `IP:PORT` of the QUIC endpoint (port 0 picks a free port).
    pub quic_listen: String,
    /// Allow non-loopback listen addresses. Off by default so that a node
    /// on embedded defaults is never reachable from the network by accident.
    pub allow_remote: bool,
    /// PEM certificate chain: TCP then speaks TLS, and QUIC is possible.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle that client certificates are verified against.
    pub client_ca: Option<PathBuf>,
    /// Require a client certificate (mapping to the mailbox by its CN);
    /// the certificate then authenticates instead of the password.
    pub require_client_cert: bool,
    /// Most client connections at once (TCP and QUIC together); more are
    /// answered `BUSY` and closed.
    pub max_connections: usize,
    /// Most requests in flight per connection; the connection stops
    /// reading until one finishes.
    pub max_in_flight: usize,
    /// Largest frame payload (a body, a chunk, a batch), bytes.
    pub max_payload_bytes: u32,
    /// Largest piece a download is streamed in, bytes.
    pub download_piece_bytes: u32,
    /// How long a new connection has for its TLS handshake and `HELLO`.
    pub handshake_timeout_ms: u64,
    /// Most bytes one connection may make the server hold: frames being
    /// received (past the first read buffer) and downloaded chunks not yet
    /// written to it. A connection over it stops being read, or its
    /// downloads wait, until its client catches up.
    pub max_connection_buffered_bytes: u64,
    /// Largest body pushed with its notification to a subscriber that asks
    /// for bodies (0: never; at most 65536, the node's
    /// `MAX_NOTIFICATION_BODY_BYTES`; never more than `max_payload_bytes`).
    pub push_inline_bytes: u32,
    /// Name the server gives in `HELLO_OK`.
    pub server_name: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            native_enabled: true,
            native_listen: DEFAULT_NATIVE_LISTEN.to_string(),
            quic_enabled: true,
            quic_listen: DEFAULT_QUIC_LISTEN.to_string(),
            allow_remote: false,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            require_client_cert: false,
            max_connections: 10_000,
            max_in_flight: 1024,
            max_payload_bytes: 16 << 20,
            download_piece_bytes: 256 << 10,
            handshake_timeout_ms: 10_000,
            max_connection_buffered_bytes: 64 << 20,
            push_inline_bytes: 64 << 10,
            server_name: "spine".to_string(),
        }
    }
}

impl NetworkConfig {
    /// The TCP address; `None` if it does not parse.
    pub fn native_addr(&self) -> Option<SocketAddr> {
        self.native_listen.parse().ok()
    }

    /// The QUIC address; `None` if it does not parse.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic_listen.parse().ok()
    }

    /// Whether TLS material is configured.
    pub fn has_tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Checks ranges and cross-setting rules; the first problem is
    /// returned as a sentence that says what to change.
    pub fn validate(&self) -> Result<(), String> {
        for (name, enabled, text) in [
            ("native_listen", self.native_enabled, &self.native_listen),
            ("quic_listen", self.quic_enabled, &self.quic_listen),
        ] {
            if !enabled {
                continue;
            }
            let Ok(addr) = text.parse::<SocketAddr>() else {
                return Err(format!(
                    "{name} {text:?} is not an IP:PORT socket address; use e.g. 127.0.0.1:7701"
                ));
            };
            if !addr.ip().is_loopback() && !self.allow_remote {
                return Err(format!(
                    "{name} {addr} is not a loopback address; set allow_remote = true to listen \
                     beyond this host (and configure TLS)"
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tls_cert and tls_key must be given together".to_string());
        }
        if self.require_client_cert && self.client_ca.is_none() {
            return Err(
                "require_client_cert needs client_ca (the CA client certificates are checked \
                 against)"
                    .to_string(),
            );
        }
        if self.client_ca.is_some() && !self.has_tls() {
            return Err("client_ca needs tls_cert and tls_key".to_string());
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err("max_connections must be 1 to 1000000".to_string());
        }
        if !(1..=65_536).contains(&self.max_in_flight) {
            return Err("max_in_flight must be 1 to 65536".to_string());
        }
        if !(1024..=(64 << 20)).contains(&self.max_payload_bytes) {
            return Err("max_payload_bytes must be 1024 to 67108864".to_string());
        }
        if !(1024..=self.max_payload_bytes).contains(&self.download_piece_bytes) {
            return Err("download_piece_bytes must be 1024 to max_payload_bytes".to_string());
        }
        if !(100..=600_000).contains(&self.handshake_timeout_ms) {
            return Err("handshake_timeout_ms must be 100 to 600000".to_string());
        }
        if !((1 << 20)..=(1 << 40)).contains(&self.max_connection_buffered_bytes) {
            return Err(
                "max_connection_buffered_bytes must be 1048576 to 1099511627776".to_string(),
            );
        }
        if self.push_inline_bytes as usize > crate::node::MAX_NOTIFICATION_BODY_BYTES {
            return Err("push_inline_bytes must be 0 to 65536".to_string());
        }
        if self.server_name.is_empty()
            || self.server_name.len() > 128
            || self.server_name.chars().any(char::is_control)
        {
            return Err(
                "server_name must be 1 to 128 bytes without control characters".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = NetworkConfig::default();
        c.validate().unwrap();
        assert!(c.native_addr().unwrap().ip().is_loopback());
        assert!(c.quic_addr().unwrap().ip().is_loopback());
    }

    #[test]
    fn bad_values_are_refused_with_advice() {
        let cases: Vec<(NetworkConfig, &str)> = vec![
            (
                NetworkConfig {
                    native_listen: "0.0.0.0:7701".into(),
                    ..NetworkConfig::default()
                },
                "allow_remote",
            ),
            (
                NetworkConfig {
                    native_listen: "nope".into(),
                    ..NetworkConfig::default()
                },
                "IP:PORT",
            ),
            (
                NetworkConfig {
                    tls_cert: Some("a".into()),
                    ..NetworkConfig::default()
                },
                "together",
            ),
            (
                NetworkConfig {
                    require_client_cert: true,
                    ..NetworkConfig::default()
                },
                "client_ca",
            ),
            (
                NetworkConfig {
                    max_in_flight: 0,
                    ..NetworkConfig::default()
                },
                "max_in_flight",
            ),
            (
                NetworkConfig {
                    download_piece_bytes: 100,
                    ..NetworkConfig::default()
                },
                "download_piece_bytes",
            ),
        ];
        for (c, expected) in cases {
            let e = c.validate().unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
        let remote = NetworkConfig {
            native_listen: "0.0.0.0:7701".into(),
            quic_enabled: false,
            allow_remote: true,
            ..NetworkConfig::default()
        };
        remote.validate().unwrap();
    }
}
