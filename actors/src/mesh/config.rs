//! [`MeshConfig`]: where the MESH REST API listens and its limits.
//!
//! Invariant: [`MeshConfig::validate`] is the single source of the ranges
//! and cross-setting rules (the binary's configuration layer checks each
//! value with it). TLS material is shared with the native protocol
//! (`network.tls_cert`/`tls_key`/`client_ca`), so one certificate serves
//! every listener.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use spine_protocol::mesh::auth::DEFAULT_SHARED_KEY;

/// Where the MESH API binds by default (loopback only).
pub const DEFAULT_MESH_LISTEN: &str = "127.0.0.1:8701";

/// `[mesh]`: the MESH REST API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshConfig {
    /// Serve the MESH API.
    pub enabled: bool,
    /// TCP `IP:PORT` (port 0 picks a free port).
    pub listen: String,
    /// The NHSMESH shared key the token HMAC is keyed with.
    pub shared_key: String,
    /// Serve plain HTTP on a non-loopback address (without TLS material).
    /// Off by default: MESH carries patient data.
    pub allow_plain_http: bool,
    /// Allow a non-loopback `listen` address.
    pub allow_remote: bool,
    /// Add mesh-sandbox's admin endpoints (reset, report injection).
    pub sandbox: bool,
    /// Largest request body (one chunk), bytes, after decompression.
    pub max_request_bytes: u64,
    /// Most request-body bytes buffered across all requests at once;
    /// uploads beyond it wait (backpressure), never fail.
    pub max_buffered_bytes: u64,
    /// Most client connections at once; more are closed at accept.
    pub max_connections: usize,
    /// How far a token's timestamp may be from the server clock, seconds.
    pub token_window_secs: u64,
    /// Most token nonces remembered for replay checks; when full, requests
    /// with new nonces are answered 503 until old ones age out.
    pub replay_nonces: usize,
    /// How long a client has to send a request's headers, milliseconds
    /// (slow-loris protection).
    pub header_timeout_ms: u64,
    /// How long a client has to send a request's body, milliseconds.
    pub body_timeout_ms: u64,
    /// How long an idle keep-alive connection is kept, milliseconds.
    pub idle_timeout_ms: u64,
}

impl std::fmt::Debug for MeshConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("shared_key", &"<redacted>")
            .field("allow_plain_http", &self.allow_plain_http)
            .field("sandbox", &self.sandbox)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            enabled: true,
            listen: DEFAULT_MESH_LISTEN.to_string(),
            shared_key: DEFAULT_SHARED_KEY.to_string(),
            allow_plain_http: false,
            allow_remote: false,
            sandbox: false,
            max_request_bytes: 100 << 20,
            max_buffered_bytes: 1 << 30,
            max_connections: 10_000,
            token_window_secs: 2 * 3600,
            replay_nonces: 1_000_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 600_000,
            idle_timeout_ms: 120_000,
        }
    }
}

impl MeshConfig {
    /// The listen address; `None` if it does not parse.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// Checks ranges and cross-setting rules. `has_tls` says whether TLS
    /// material is configured; `max_record_bytes` is the log's record limit
    /// (a chunk must fit one record).
    pub fn validate(&self, has_tls: bool, max_record_bytes: u64) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let Some(addr) = self.addr() else {
            return Err(format!(
                "listen {:?} is not an IP:PORT socket address; use e.g. 127.0.0.1:8701",
                self.listen
            ));
        };
        if !addr.ip().is_loopback() {
            if self.sandbox {
                return Err(format!(
                    "listen {addr} is not a loopback address and sandbox is on: the sandbox's \
                     admin endpoints (reset, report injection) need no token, so --sandbox \
                     serves loopback only"
                ));
            }
            if !self.allow_remote {
                return Err(format!(
                    "listen {addr} is not a loopback address; set allow_remote = true to serve \
                     MESH beyond this host (and configure TLS)"
                ));
            }
            if !has_tls && !self.allow_plain_http {
                return Err(format!(
                    "listen {addr} is not loopback and no TLS certificate is configured: MESH \
                     carries patient data, so give --tls-cert/--tls-key, or set \
                     allow_plain_http = true if a TLS proxy sits in front"
                ));
            }
        }
        if self.shared_key.is_empty() || self.shared_key.len() > 1024 {
            return Err("shared_key must be 1 to 1024 bytes".to_string());
        }
        let headroom = 64 << 10;
        if self.max_request_bytes < 1024
            || self.max_request_bytes.saturating_add(headroom) > max_record_bytes
        {
            return Err(format!(
                "max_request_bytes must be 1024 to storage.max_record_bytes - 65536 ({}): a \
                 chunk is stored as one log record; raise storage.max_record_bytes or lower \
                 max_request_bytes",
                max_record_bytes.saturating_sub(headroom)
            ));
        }
        if self.max_buffered_bytes < self.max_request_bytes || self.max_buffered_bytes > 1 << 40 {
            return Err("max_buffered_bytes must be max_request_bytes to 1 TiB".to_string());
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err("max_connections must be 1 to 1000000".to_string());
        }
        if !(60..=86_400).contains(&self.token_window_secs) {
            return Err("token_window_secs must be 60 to 86400".to_string());
        }
        if !(16..=100_000_000).contains(&self.replay_nonces) {
            return Err("replay_nonces must be 16 to 100000000".to_string());
        }
        for (name, v) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if !(100..=3_600_000).contains(&v) {
                return Err(format!("{name} must be 100 to 3600000"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_loopback_and_redacted() {
        let c = MeshConfig::default();
        c.validate(false, 128 << 20).unwrap();
        assert!(c.addr().unwrap().ip().is_loopback());
        assert!(!format!("{c:?}").contains("BackBone"));
    }

    #[test]
    fn unsafe_or_impossible_values_are_refused_with_advice() {
        let remote = MeshConfig {
            listen: "0.0.0.0:8701".into(),
            ..MeshConfig::default()
        };
        assert!(remote
            .validate(true, 128 << 20)
            .unwrap_err()
            .contains("allow_remote"));
        let remote = MeshConfig {
            allow_remote: true,
            ..remote
        };
        assert!(remote
            .validate(false, 128 << 20)
            .unwrap_err()
            .contains("TLS"));
        remote.validate(true, 128 << 20).unwrap();
        let exposed_sandbox = MeshConfig {
            sandbox: true,
            ..remote
        };
        assert!(exposed_sandbox
            .validate(true, 128 << 20)
            .unwrap_err()
            .contains("sandbox"));
        let big = MeshConfig::default();
        assert!(big
            .validate(false, 16 << 20)
            .unwrap_err()
            .contains("max_record_bytes"));
        let bad = MeshConfig {
            token_window_secs: 1,
            ..MeshConfig::default()
        };
        assert!(bad.validate(false, 128 << 20).is_err());
    }
}
