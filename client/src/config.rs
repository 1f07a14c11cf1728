//! [`ClientConfig`] and [`TlsOptions`]: everything needed to connect.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use spine_core::ids::MailboxId;
use spine_protocol::Limits;
use tokio::sync::Semaphore;

use crate::endpoint::Endpoint;
use crate::error::ClientError;

/// Default pipelining window per connection.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Bound on one chunk fetched by [`crate::Client::download`] (100 MiB);
/// [`crate::Client::download_bounded`] takes another.
/// Default most sends packed into one coalesced `SEND_BATCH`.
pub const DEFAULT_COALESCE_SENDS: usize = 64;
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// TLS settings, used by `natives://` and `quic://` endpoints.
///
/// There is deliberately no way to skip server verification: without a CA
/// file the connection is refused before anything is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file with the certificate(s) of the CA that signed the server's
    /// certificate. Required for TLS.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to a server that requires client
    /// certificates (mutual TLS). Give `client_key` with it.
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// The name to verify the server's certificate against; default the
    /// endpoint's host.
    pub server_name: Option<String>,
}

/// How to connect and authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Where the server is.
    pub endpoint: Endpoint,
    /// The mailbox to act as (`HELLO`).
    pub mailbox: MailboxId,
    /// Its password (`HELLO`); never printed by `Debug`.
    pub password: String,
    /// This software's name and version, for the server's logs.
    pub client_name: String,
    /// TLS settings (for `natives://` and `quic://`).
    pub tls: TlsOptions,
    /// Bound on connecting: resolution, TCP/QUIC and TLS handshakes and
    /// `HELLO`.
    pub connect_timeout: Duration,
    /// Bound on each request, from the call until its whole answer
    /// (including waiting for a pipelining slot).
    pub request_timeout: Duration,
    /// Most requests in flight on the connection (the pipelining window);
    /// further callers wait for a slot.
    pub max_in_flight: usize,
    /// Most sends the connection packs into one `SEND_BATCH` when callers
    /// have queued several by the time it writes (native TCP/TLS only;
    /// never waits to fill a batch, and each send still gets its own
    /// answer). 1 sends every message in its own `SEND`.
    pub coalesce_sends: usize,
    /// The codec's limits; narrowed to what the server advertises in
    /// `HELLO_OK` for encoding.
    pub limits: Limits,
}

impl ClientConfig {
    /// A configuration with the defaults: client name `spine-client/VERSION`,
    /// no TLS files, 10 s to connect, 30 s per request, 256 requests in
    /// flight, up to 64 queued sends per coalesced batch, default limits.
    pub fn new(endpoint: Endpoint, mailbox: MailboxId, password: impl Into<String>) -> Self {
        ClientConfig {
            endpoint,
            mailbox,
            password: password.into(),
            client_name: concat!("spine-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            coalesce_sends: DEFAULT_COALESCE_SENDS,
            limits: Limits::default(),
        }
    }

    /// Checks the settings that do not need the network.
    pub fn validate(&self) -> Result<(), ClientError> {
        let invalid = |why: String| Err(ClientError::ConfigInvalid { why });
        if self.max_in_flight == 0 || self.max_in_flight > Semaphore::MAX_PERMITS {
            return invalid(format!(
                "max_in_flight is {}; use 1 to {}",
                self.max_in_flight,
                Semaphore::MAX_PERMITS
            ));
        }
        if self.coalesce_sends == 0 {
            return invalid(
                "coalesce_sends is 0; use 1 to send each message alone, or more to let \
                 queued sends share a SEND_BATCH"
                    .into(),
            );
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return invalid("connect_timeout and request_timeout must be above zero".into());
        }
        if self.password.is_empty() {
            return invalid("password is empty; give the mailbox's password".into());
        }
        if let Err(e) = self.limits.validate() {
            return invalid(e.to_string());
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return invalid(
                "give both tls.client_cert and tls.client_key for mutual TLS, or neither".into(),
            );
        }
        Ok(())
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("mailbox", &self.mailbox)
            .field("password", &"<redacted>")
            .field("client_name", &self.client_name)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("coalesce_sends", &self.coalesce_sends)
            .field("limits", &self.limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use spine_core::ErrorCode;

    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::new(
            Endpoint::parse("native://127.0.0.1:7701").unwrap(),
            MailboxId::parse("X26ABC1").unwrap(),
            "hunter2",
        )
    }

    #[test]
    fn defaults_are_valid_and_debug_hides_the_password() {
        let c = config();
        c.validate().unwrap();
        assert_eq!(c.max_in_flight, 256);
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn invalid_settings_say_what_to_change() {
        type Change = fn(&mut ClientConfig);
        let cases: [(Change, &str); 6] = [
            (|c| c.max_in_flight = 0, "max_in_flight is 0"),
            (|c| c.coalesce_sends = 0, "coalesce_sends is 0"),
            (|c| c.request_timeout = Duration::ZERO, "above zero"),
            (|c| c.password.clear(), "password is empty"),
            (|c| c.limits.max_batch = 0, "max_batch is 0"),
            (|c| c.tls.client_cert = Some("cert.pem".into()), "give both"),
        ];
        for (change, why) in cases {
            let mut c = config();
            change(&mut c);
            let e = c.validate().unwrap_err();
            assert_eq!(e.code(), "CLIENT_CONFIG_INVALID");
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
