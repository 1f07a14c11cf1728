//! The `Authorization: NHSMESH …` token: parsing, signing and checking.
//!
//! Format (MESH API spec, "MESH Authorization header"):
//! `NHSMESH <mailbox>:<nonce>:<nonce_count>:<yyyyMMddHHmm>:<hex hmac>`, where
//! the HMAC is HMAC-SHA256 keyed by the shared key over
//! `mailbox:nonce:nonce_count:password:timestamp`.
//!
//! Invariants and why:
//! - Parsing bounds every part before it is used (the whole header at
//!   [`MAX_TOKEN_BYTES`]), so a hostile header costs at most one HMAC.
//! - The HMAC is compared in constant time and case-insensitively (hex),
//!   as mesh-sandbox does since its "mesh-2088" fix.
//! - Nothing here remembers tokens: replay is the server's concern (each
//!   `(mailbox, nonce, nonce_count)` once), because only the server knows
//!   which requests it has answered. [`Token::replay_key`] is what it keys on.
//! - The password never appears in an error or a `Debug` output.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use spine_core::ids::MailboxId;
use spine_core::time::Timestamp;
use spine_core::ErrorCode;
use thiserror::Error;

/// The scheme word before the token.
pub const SCHEME: &str = "NHSMESH";
/// Longest `Authorization` header accepted, bytes.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Longest nonce accepted (mesh-client uses a 36-character UUID).
pub const MAX_NONCE_BYTES: usize = 128;
/// The shared key mesh-client assumes when none is configured.
pub const DEFAULT_SHARED_KEY: &str = "BackBone";
/// How far a token's timestamp may be from the server's clock.
pub const DEFAULT_TOKEN_WINDOW: Duration = Duration::from_secs(2 * 3600);

/// Why an `Authorization` header was refused. Every variant becomes a 403.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("the Authorization header is missing; send `Authorization: NHSMESH <mailbox>:<nonce>:<count>:<yyyyMMddHHmm>:<hmac>`")]
    Missing,
    /// The header is not an NHSMESH token.
    #[error("the Authorization header is not a valid NHSMESH token: {0}")]
    Malformed(&'static str),
    /// The token names a different mailbox from the URL.
    #[error("the token's mailbox does not match the mailbox in the request path")]
    MailboxMismatch,
    /// The timestamp is outside the accepted window.
    #[error("the token's timestamp is more than {window_mins} minutes from the server's clock; check the client's clock (UTC)")]
    Stale {
        /// The window, in minutes.
        window_mins: u64,
    },
    /// Unknown mailbox, wrong password or wrong shared key (not told apart,
    /// so a caller cannot probe which mailboxes exist).
    #[error("the token does not verify: unknown mailbox, wrong password or wrong shared key")]
    BadSignature,
    /// The token was already used.
    #[error("the token has already been used; generate a new token (new nonce or nonce count) for every request")]
    Replayed,
    /// The verified client certificate belongs to another mailbox than the
    /// token's (or, where certificates are required, to no mailbox).
    #[error("the client certificate does not belong to the token's mailbox; use the certificate issued for that mailbox")]
    CertificateMismatch,
}

impl ErrorCode for AuthError {
    fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MESH_AUTH_MISSING",
            AuthError::Malformed(_) => "MESH_AUTH_MALFORMED",
            AuthError::MailboxMismatch => "MESH_AUTH_MAILBOX_MISMATCH",
            AuthError::Stale { .. } => "MESH_AUTH_STALE",
            AuthError::BadSignature => "MESH_AUTH_BAD_SIGNATURE",
            AuthError::Replayed => "MESH_AUTH_REPLAYED",
            AuthError::CertificateMismatch => "MESH_AUTH_CERT_MISMATCH",
        }
    }
}

/// A parsed (not yet verified) NHSMESH token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The mailbox, as written in the token.
    pub mailbox: String,
    /// The client's nonce.
    pub nonce: String,
    /// How many times the client has used the nonce.
    pub nonce_count: u64,
    /// The token's time (minute resolution).
    pub timestamp: Timestamp,
    timestamp_text: String,
    hash: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("mailbox", &self.mailbox)
            .field("nonce", &self.nonce)
            .field("nonce_count", &self.nonce_count)
            .field("timestamp", &self.timestamp_text)
            .finish_non_exhaustive()
    }
}

fn visible(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Token {
    /// Parses an `Authorization` header value. The scheme word is matched
    /// case-insensitively and may be omitted (as mesh-sandbox allows).
    pub fn parse(header: &str) -> Result<Token, AuthError> {
        if header.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("longer than 512 bytes"));
        }
        let header = header.trim();
        let body = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(SCHEME) => rest.trim_start(),
            Some(_) => return Err(AuthError::Malformed("the scheme must be NHSMESH")),
            None => header,
        };
        let parts: Vec<&str> = body.split(':').collect();
        let [mailbox, nonce, count, time, hash] = parts[..] else {
            return Err(AuthError::Malformed(
                "expected five colon-separated parts: mailbox:nonce:count:timestamp:hmac",
            ));
        };
        if !visible(mailbox) || mailbox.len() > 64 {
            return Err(AuthError::Malformed("the mailbox part is empty or invalid"));
        }
        if !visible(nonce) || nonce.len() > MAX_NONCE_BYTES {
            return Err(AuthError::Malformed(
                "the nonce is empty, too long or invalid",
            ));
        }
        if count.is_empty() || count.len() > 19 || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::Malformed(
                "the nonce count must be decimal digits",
            ));
        }
        let nonce_count = count
            .parse()
            .map_err(|_| AuthError::Malformed("the nonce count must be decimal digits"))?;
        let timestamp = Timestamp::parse_mesh_token_time(time)
            .map_err(|_| AuthError::Malformed("the timestamp must be yyyyMMddHHmm (UTC)"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Malformed("the hmac must be 64 hex digits"));
        }
        Ok(Token {
            mailbox: mailbox.to_string(),
            nonce: nonce.to_string(),
            nonce_count,
            timestamp,
            timestamp_text: time.to_string(),
            hash: hash.to_ascii_lowercase(),
        })
    }

    /// The mailbox the token is for (upper-cased, as MESH mailbox ids are).
    pub fn mailbox_id(&self) -> Result<MailboxId, AuthError> {
        MailboxId::parse(&self.mailbox.to_ascii_uppercase())
            .map_err(|_| AuthError::Malformed("the mailbox part is not a valid mailbox id"))
    }

    /// What a server remembers to refuse a second use.
    pub fn replay_key(&self) -> (String, String, u64) {
        (
            self.mailbox.to_ascii_uppercase(),
            self.nonce.clone(),
            self.nonce_count,
        )
    }

    /// Checks the timestamp against `now` (± `window`) and the HMAC against
    /// `password` and `shared_key`. Does not check replay.
    pub fn verify(
        &self,
        password: &str,
        shared_key: &[u8],
        now: Timestamp,
        window: Duration,
    ) -> Result<(), AuthError> {
        let skew = if now >= self.timestamp {
            now.saturating_sub(self.timestamp)
        } else {
            self.timestamp.saturating_sub(now)
        };
        if skew > window {
            return Err(AuthError::Stale {
                window_mins: window.as_secs() / 60,
            });
        }
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(&self.hash, &mut expected).is_err() {
            return Err(AuthError::BadSignature);
        }
        let mut mac = keyed(shared_key);
        mac.update(
            signed_text(
                &self.mailbox,
                &self.nonce,
                self.nonce_count,
                password,
                &self.timestamp_text,
            )
            .as_bytes(),
        );
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| AuthError::BadSignature)
    }
}

fn keyed(shared_key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an
    // empty key rather than panic if that ever changed.
    Hmac::<Sha256>::new_from_slice(shared_key)
        .or_else(|_| Hmac::<Sha256>::new_from_slice(&[]))
        .unwrap_or_else(|_| unreachable_mac())
}

#[allow(clippy::panic)]
fn unreachable_mac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 refused every key length")
}

fn signed_text(mailbox: &str, nonce: &str, count: u64, password: &str, time: &str) -> String {
    format!("{mailbox}:{nonce}:{count}:{password}:{time}")
}

/// Makes an `Authorization` header value, as mesh-client does (for the
/// load generator and tests).
pub fn make_token(
    mailbox: &str,
    password: &str,
    shared_key: &[u8],
    nonce: &str,
    nonce_count: u64,
    now: Timestamp,
) -> String {
    let time: String = now.format_seconds().chars().take(12).collect();
    let mut mac = keyed(shared_key);
    mac.update(signed_text(mailbox, nonce, nonce_count, password, &time).as_bytes());
    let hash = hex::encode(mac.finalize().into_bytes());
    format!("{SCHEME} {mailbox}:{nonce}:{nonce_count}:{time}:{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> Timestamp {
        Timestamp::parse_seconds("20261124060000").unwrap()
    }

    /// Known answer, computed independently with Python:
    /// `hmac.new(b"BackBone", b"X26ABC1:abc:0:password:202611240600", sha256).hexdigest()`.
    #[test]
    fn signature_matches_mesh_client() {
        let t = make_token("X26ABC1", "password", b"BackBone", "abc", 0, now());
        assert_eq!(
            t,
            "NHSMESH X26ABC1:abc:0:202611240600:\
             fad919dc80df0de77f5d07ff5a75d740288e46eaabe490f18c7de422801d2fa1"
        );
    }

    #[test]
    fn a_made_token_verifies_and_a_wrong_one_does_not() {
        let t = make_token("X26ABC1", "password", b"BackBone", "n-1", 3, now());
        let token = Token::parse(&t).unwrap();
        assert_eq!(token.nonce_count, 3);
        token
            .verify("password", b"BackBone", now(), DEFAULT_TOKEN_WINDOW)
            .unwrap();
        assert_eq!(
            token.verify("wrong", b"BackBone", now(), DEFAULT_TOKEN_WINDOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            token.verify("password", b"TestKey", now(), DEFAULT_TOKEN_WINDOW),
            Err(AuthError::BadSignature)
        );
        let later = now().saturating_add(Duration::from_secs(2 * 3600 + 61));
        assert!(matches!(
            token.verify("password", b"BackBone", later, DEFAULT_TOKEN_WINDOW),
            Err(AuthError::Stale { .. })
        ));
        let earlier = Timestamp::parse_seconds("20261124035800").unwrap();
        assert!(matches!(
            token.verify("password", b"BackBone", earlier, DEFAULT_TOKEN_WINDOW),
            Err(AuthError::Stale { .. })
        ));
    }

    #[test]
    fn upper_case_hex_and_scheme_case_are_accepted() {
        let t = make_token("X26ABC1", "password", b"k", "n", 0, now());
        let (head, hash) = t.rsplit_once(':').unwrap();
        let shouted = format!(
            "{}:{}",
            head.replace("NHSMESH", "nhsmesh"),
            hash.to_uppercase()
        );
        Token::parse(&shouted)
            .unwrap()
            .verify("password", b"k", now(), DEFAULT_TOKEN_WINDOW)
            .unwrap();
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        for bad in [
            "",
            "Basic abc",
            "NHSMESH a:b:c",
            "NHSMESH X26ABC1:n:-1:202611240600:00",
            "NHSMESH X26ABC1:n:1:2026112406:00",
            "NHSMESH X26ABC1:n:1:202611240600:zz",
            "NHSMESH :n:1:202611240600:00",
        ] {
            assert!(
                matches!(Token::parse(bad), Err(AuthError::Malformed(_))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(Token::parse(&long), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn debug_does_not_show_the_hash() {
        let t = make_token("X26ABC1", "password", b"k", "n", 0, now());
        let hash = t.rsplit_once(':').unwrap().1.to_string();
        let dbg = format!("{:?}", Token::parse(&t).unwrap());
        assert!(!dbg.contains(&hash), "{dbg}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,600}") {
            let _ = Token::parse(&s);
        }

        #[test]
        fn made_tokens_round_trip(
            mailbox in "[A-Z0-9]{1,20}",
            nonce in "[a-f0-9-]{1,40}",
            count in 0u64..1_000_000,
            password in "[ -~]{0,40}",
        ) {
            let t = make_token(&mailbox, &password, b"BackBone", &nonce, count, now());
            let token = Token::parse(&t).unwrap();
            prop_assert_eq!(&token.mailbox, &mailbox);
            prop_assert_eq!(token.nonce_count, count);
            prop_assert!(token.verify(&password, b"BackBone", now(), DEFAULT_TOKEN_WINDOW).is_ok());
        }
    }
}
