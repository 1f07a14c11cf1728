//! The `Authorization: NHSMESH ...` token: `Token::parse`, `verify` and
//! `make_token`.
//!
//! The whole input, read as text, is an `Authorization` value: if it
//! parses, its mailbox id, replay key and `verify` (with a fixed password,
//! shared key and clock, and again at the token's own time so the HMAC is
//! computed) must not panic.
//!
//! The same input, split on `\n`, also gives the parts of a token to make:
//! `mailbox`, `nonce`, `password`, `shared key`, `nonce count` (decimal,
//! else 0) and `time` (`YYYYMMDDHHMMSS`, else a fixed time). When the
//! mailbox and nonce are ones a token can carry (visible ASCII, no `:`,
//! within the length limits) and the count has at most 19 digits, the
//! made token must parse back to those
//! parts, verify with that password and key at that time, and not verify
//! with another password.

use std::time::Duration;

use spine_core::time::Timestamp;
use spine_protocol::mesh::auth::{
    make_token, AuthError, Token, DEFAULT_SHARED_KEY, DEFAULT_TOKEN_WINDOW, MAX_NONCE_BYTES,
    MAX_TOKEN_BYTES,
};

/// The fixed clock: 2026-11-24T06:00:00Z.
fn fixed_now() -> Timestamp {
    Timestamp::parse_seconds("20261124060000").expect("valid time")
}

/// The check; see the module docs.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    parse_any(&text);
    make_and_check(&text);
}

fn parse_any(header: &str) {
    let Ok(token) = Token::parse(header) else {
        return;
    };
    assert!(header.len() <= MAX_TOKEN_BYTES);
    assert!(token.nonce.len() <= MAX_NONCE_BYTES && !token.nonce.is_empty());
    assert!(!token.mailbox.is_empty() && token.mailbox.len() <= 64);
    let _ = token.mailbox_id();
    let (mailbox, nonce, count) = token.replay_key();
    assert_eq!(
        (nonce.as_str(), count),
        (token.nonce.as_str(), token.nonce_count)
    );
    assert!(mailbox.eq_ignore_ascii_case(&token.mailbox));
    let key = DEFAULT_SHARED_KEY.as_bytes();
    let _ = token.verify("password", key, fixed_now(), DEFAULT_TOKEN_WINDOW);
    // At the token's own time the window passes and the HMAC is checked.
    match token.verify("password", key, token.timestamp, DEFAULT_TOKEN_WINDOW) {
        Ok(()) | Err(AuthError::BadSignature) => {}
        Err(e) => panic!("a token at its own time failed with {e:?}"),
    }
    let _ = token.verify("", b"", token.timestamp, Duration::ZERO);
    // Debug output must not carry the password; it has none to carry, but
    // it must format.
    let _ = format!("{token:?}");
}

fn carriable(part: &str, max: usize) -> bool {
    !part.is_empty() && part.len() <= max && part.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn make_and_check(text: &str) {
    let mut parts = text.split('\n');
    let mailbox = parts.next().unwrap_or("");
    let nonce = parts.next().unwrap_or("");
    let password = parts.next().unwrap_or("password");
    let key = parts.next().unwrap_or(DEFAULT_SHARED_KEY);
    let count: u64 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let now = parts
        .next()
        .and_then(|t| Timestamp::parse_seconds(t).ok())
        .unwrap_or_else(fixed_now);

    let token = make_token(mailbox, password, key.as_bytes(), nonce, count, now);
    // The parser takes nonce counts of at most 19 digits (mesh-client
    // counts up from 0), so counts from 10^19 up are outside the promise.
    if !carriable(mailbox, 64)
        || !carriable(nonce, MAX_NONCE_BYTES)
        || token.len() > MAX_TOKEN_BYTES
        || count >= 10_000_000_000_000_000_000
    {
        // Not a token the parser promises to take; it must still not panic.
        let _ = Token::parse(&token);
        return;
    }
    let parsed = match Token::parse(&token) {
        Ok(t) => t,
        Err(e) => panic!("make_token's output does not parse: {e}\n{token}"),
    };
    assert_eq!(parsed.mailbox, mailbox);
    assert_eq!(parsed.nonce, nonce);
    assert_eq!(parsed.nonce_count, count);
    assert!(
        parsed.timestamp <= now && now.saturating_sub(parsed.timestamp) < Duration::from_secs(60),
        "the token's time {:?} is not {now:?} to the minute",
        parsed.timestamp
    );
    if let Err(e) = parsed.verify(password, key.as_bytes(), now, DEFAULT_TOKEN_WINDOW) {
        panic!("make_token's output does not verify: {e}\n{token}");
    }
    let wrong = format!("{password}x");
    assert_eq!(
        parsed.verify(&wrong, key.as_bytes(), now, DEFAULT_TOKEN_WINDOW),
        Err(AuthError::BadSignature),
        "a token verified with the wrong password"
    );
}
