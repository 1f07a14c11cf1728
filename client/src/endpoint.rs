//! [`Endpoint`]: where a client connects, parsed from
//! `native://HOST:PORT`, `natives://HOST:PORT` (TLS) or `quic://HOST:PORT`.
//!
//! Invariants and why:
//! - Only these three schemes are accepted; anything else (a path, user
//!   information, an empty host, port 0, stray spaces) is refused with a
//!   message naming the problem, so a typo never connects somewhere odd.
//! - IPv6 literals are written in brackets (`quic://[::1]:7702`); the host
//!   is stored without them.

use std::fmt;

use crate::error::ClientError;

/// The server's native TCP port (TLS or not) when none is given.
pub const DEFAULT_NATIVE_PORT: u16 = 7701;
/// The server's QUIC (UDP) port when none is given.
pub const DEFAULT_QUIC_PORT: u16 = 7702;

/// Longest endpoint text echoed back in an error.
const MAX_ECHO: usize = 200;

/// Where and how to reach a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The native protocol over TCP, with TLS (rustls) when `tls` is set.
    Native {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Whether to speak TLS.
        tls: bool,
    },
    /// The native protocol over QUIC (always TLS 1.3).
    Quic {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// UDP port.
        port: u16,
    },
}

impl Endpoint {
    /// Parses `native://HOST[:PORT]`, `natives://HOST[:PORT]` (TLS) or
    /// `quic://HOST[:PORT]`; the port defaults to 7701 (native) or 7702
    /// (QUIC).
    pub fn parse(s: &str) -> Result<Endpoint, ClientError> {
        let invalid = |why: &str| ClientError::EndpointInvalid {
            input: echo(s),
            why: why.to_owned(),
        };
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid("it has no scheme"));
        };
        let (tls, quic) = match scheme.to_ascii_lowercase().as_str() {
            "native" => (false, false),
            "natives" => (true, false),
            "quic" => (true, true),
            _ => {
                return Err(invalid(&format!(
                    "scheme {:?} is not supported",
                    echo(scheme)
                )))
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(invalid("the host is missing"));
        }
        if let Some(bad) = rest
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
        {
            return Err(invalid(&format!(
                "it contains {bad:?} after the host; give only HOST:PORT after the scheme"
            )));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(invalid(
                    "an IPv6 address opened with '[' is not closed with ']'",
                ));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid(&format!("{host:?} is not an IPv6 address")));
            }
            let port = match after {
                "" => None,
                p => match p.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Err(invalid("expected ':PORT' after the IPv6 address")),
                },
            };
            (host, port)
        } else {
            match rest.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(invalid(
                        "write an IPv6 address in brackets, e.g. [::1]:7701",
                    ))
                }
                Some((host, p)) => (host, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        let port = match port {
            None if quic => DEFAULT_QUIC_PORT,
            None => DEFAULT_NATIVE_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) => return Err(invalid("port 0 cannot be connected to; use 1 to 65535")),
                Ok(port) => port,
                Err(_) => {
                    return Err(invalid(&format!(
                        "port {:?} is not a number from 1 to 65535",
                        echo(p)
                    )))
                }
            },
        };
        let host = host.to_owned();
        Ok(if quic {
            Endpoint::Quic { host, port }
        } else {
            Endpoint::Native { host, port, tls }
        })
    }

    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        match self {
            Endpoint::Native { host, .. } | Endpoint::Quic { host, .. } => host,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Native { port, .. } | Endpoint::Quic { port, .. } => *port,
        }
    }

    /// Whether the connection uses TLS (always for QUIC).
    pub fn uses_tls(&self) -> bool {
        match self {
            Endpoint::Native { tls, .. } => *tls,
            Endpoint::Quic { .. } => true,
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Endpoint, ClientError> {
        Endpoint::parse(s)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self {
            Endpoint::Native { tls: false, .. } => "native",
            Endpoint::Native { tls: true, .. } => "natives",
            Endpoint::Quic { .. } => "quic",
        };
        let host = self.host();
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{}", self.port())
        } else {
            write!(f, "{scheme}://{host}:{}", self.port())
        }
    }
}

/// `s` cut to a readable length at a character boundary.
fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use spine_core::ErrorCode;

    use super::*;

    fn native(host: &str, port: u16, tls: bool) -> Endpoint {
        Endpoint::Native {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn valid_endpoints() {
        let cases = [
            ("native://127.0.0.1:7701", native("127.0.0.1", 7701, false)),
            ("native://localhost", native("localhost", 7701, false)),
            (
                "natives://spine.example:9000",
                native("spine.example", 9000, true),
            ),
            ("NATIVE://h:1/", native("h", 1, false)),
            ("native://[::1]:7701", native("::1", 7701, false)),
            ("natives://[::1]", native("::1", 7701, true)),
            (
                "quic://127.0.0.1:7702",
                Endpoint::Quic {
                    host: "127.0.0.1".into(),
                    port: 7702,
                },
            ),
            (
                "quic://spine.example",
                Endpoint::Quic {
                    host: "spine.example".into(),
                    port: 7702,
                },
            ),
        ];
        for (text, expected) in cases {
            let parsed = Endpoint::parse(text).unwrap();
            assert_eq!(parsed, expected, "{text}");
            // Display round-trips.
            assert_eq!(Endpoint::parse(&parsed.to_string()).unwrap(), expected);
        }
        assert_eq!(
            native("::1", 7701, false).to_string(),
            "native://[::1]:7701"
        );
        assert!(Endpoint::parse("quic://h").unwrap().uses_tls());
        assert!(!Endpoint::parse("native://h").unwrap().uses_tls());
    }

    #[test]
    fn invalid_endpoints_say_why() {
        let cases = [
            ("127.0.0.1:7701", "no scheme"),
            ("http://127.0.0.1:7701", "scheme \"http\" is not supported"),
            ("native://", "host is missing"),
            ("native://:7701", "host is missing"),
            ("native://h:", "is not a number"),
            ("native://h:0", "port 0"),
            ("native://h:70000", "is not a number"),
            ("native://h:port", "is not a number"),
            ("native://h:1/path", "after the host"),
            ("native://user@h:1", "after the host"),
            ("native://h 1", "after the host"),
            ("native://::1:7701", "in brackets"),
            ("native://[::1:7701", "not closed"),
            ("native://[nothost]:7701", "not an IPv6 address"),
            ("native://[::1]7701", "expected ':PORT'"),
            ("", "no scheme"),
        ];
        for (text, why) in cases {
            let e = Endpoint::parse(text).unwrap_err();
            assert_eq!(e.code(), "CLIENT_ENDPOINT_INVALID", "{text}");
            let message = e.to_string();
            assert!(message.contains(why), "{text}: {message}");
            assert!(message.contains("native://HOST:PORT"), "{message}");
        }
        let long = format!("native://{}", "h".repeat(10_000));
        let e = Endpoint::parse(&format!("{long}:x")).unwrap_err();
        assert!(e.to_string().len() < 1_000);
    }
}
