//! The native protocol's decoders (`ServerCodec`, `ClientCodec`) on an
//! arbitrary byte stream fed in arbitrary splits.
//!
//! Input: `[control][split seed][stream...]`. Control bit 0 picks the side
//! (0: the server decoding requests, 1: the client decoding responses),
//! bit 1 the limits (default, or small ones so the size refusals are
//! reachable with small inputs), bits 2-3 the largest piece the stream is
//! cut into (1, 3, 16 or 1024 bytes); the seed drives the cuts.
//!
//! Asserted for every input:
//! - no panic;
//! - progress: a decoded frame or a non-fatal error consumes bytes, and
//!   `Ok(None)` consumes nothing, so the loop always ends;
//! - the split does not matter: decoding the pieces gives the same items
//!   and errors (code, fatality, reply id) as decoding the whole stream;
//! - after a fatal error nothing more is decoded (the connection closes);
//! - whatever decodes re-encodes (with the other side's codec, same
//!   limits, same request id) and decodes again to the same value.

use std::fmt::Debug;

use bytes::BytesMut;
use spine_core::ErrorCode;
use spine_protocol::{ClientCodec, DecodeError, Limits, Request, Response, ServerCodec};

/// Hard cap on decode calls for one input; progress makes it unreachable.
const MAX_STEPS: usize = 1 << 20;

/// What one decode call produced, in a comparable form.
#[derive(Debug, PartialEq)]
enum Outcome<T> {
    Item(u64, T),
    Error {
        code: &'static str,
        fatal: bool,
        reply_id: u64,
    },
}

/// Small limits that pass `Limits::validate`: frames over a few KiB, long
/// lists, names and passwords are refused.
pub fn small_limits() -> Limits {
    Limits {
        max_payload_bytes: 512,
        max_meta_bytes: 8192,
        max_batch: 4,
        max_client_name_bytes: 16,
        max_password_bytes: 16,
        max_inbox_page: 4,
        max_lookup_results: 4,
        max_credit: 8,
    }
}

/// The control byte's parts.
#[derive(Clone, Copy, Debug)]
pub struct Control {
    /// Decode responses (client side) instead of requests (server side).
    pub client: bool,
    /// Use [`small_limits`] instead of the defaults.
    pub small: bool,
    /// Largest piece the stream is split into.
    pub max_piece: usize,
}

impl Control {
    /// Decodes the control byte.
    pub fn from_byte(b: u8) -> Control {
        Control {
            client: b & 1 != 0,
            small: b & 2 != 0,
            max_piece: [1, 3, 16, 1024][usize::from((b >> 2) & 3)],
        }
    }

    /// The control byte for these settings (`max_piece` rounded to one of
    /// the four sizes).
    pub fn to_byte(self) -> u8 {
        let piece = match self.max_piece {
            0..=1 => 0,
            2..=3 => 1,
            4..=16 => 2,
            _ => 3,
        };
        u8::from(self.client) | u8::from(self.small) << 1 | piece << 2
    }

    fn limits(self) -> Limits {
        if self.small {
            small_limits()
        } else {
            Limits::default()
        }
    }
}

/// Cuts `stream` into pieces of 1..=max bytes, driven by `seed`.
fn pieces(stream: &[u8], max: usize, seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + state as usize % max).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// Feeds `pieces` to `decode` one after another, decoding everything
/// decodable after each, until the end or a fatal error.
fn run<T>(
    pieces: &[&[u8]],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<(u64, T)>, DecodeError>,
) -> Vec<Outcome<T>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut steps = 0usize;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            steps += 1;
            assert!(steps < MAX_STEPS, "decoder loops without progress");
            let before = buf.len();
            match decode(&mut buf) {
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Ok(Some((id, item))) => {
                    assert!(buf.len() < before, "a decoded frame consumed nothing");
                    out.push(Outcome::Item(id, item));
                }
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Outcome::Error {
                        code: e.code(),
                        fatal,
                        reply_id: e.reply_id(),
                    });
                    if fatal {
                        // The transport answers and closes: stop here.
                        return out;
                    }
                    assert!(buf.len() < before, "a non-fatal error consumed nothing");
                    // Encoding the error for the peer must work too.
                    let _ = e.to_wire();
                }
            }
        }
    }
    out
}

fn same_whatever_the_split<T: PartialEq + Debug>(whole: &[Outcome<T>], split: &[Outcome<T>]) {
    assert_eq!(
        whole, split,
        "decoding depends on how the stream is split into reads"
    );
}

/// The check; see the module docs.
pub fn check(data: &[u8]) {
    let control = Control::from_byte(data.first().copied().unwrap_or(0));
    let seed = data.get(1).copied().unwrap_or(0);
    let stream = data.get(2..).unwrap_or(&[]);
    let limits = control.limits();
    let split = pieces(stream, control.max_piece, seed);
    let whole = [stream];
    if control.client {
        let mut codec = client(limits);
        let a = run(&whole, |b| codec.decode(b));
        let mut codec = client(limits);
        let b = run(&split, |b| codec.decode(b));
        same_whatever_the_split(&a, &b);
        for outcome in &a {
            if let Outcome::Item(id, response) = outcome {
                response_round_trips(limits, *id, response);
            }
        }
    } else {
        let mut codec = server(limits);
        let a = run(&whole, |b| codec.decode(b));
        let mut codec = server(limits);
        let b = run(&split, |b| codec.decode(b));
        same_whatever_the_split(&a, &b);
        for outcome in &a {
            if let Outcome::Item(id, request) = outcome {
                request_round_trips(limits, *id, request);
            }
        }
    }
}

fn server(limits: Limits) -> ServerCodec {
    ServerCodec::new(limits).expect("the fuzz limits are valid")
}

fn client(limits: Limits) -> ClientCodec {
    ClientCodec::new(limits).expect("the fuzz limits are valid")
}

/// A decoded request encodes (client side) and decodes (server side) to
/// itself.
fn request_round_trips(limits: Limits, id: u64, request: &Request) {
    let mut wire = BytesMut::new();
    if let Err(e) = client(limits).encode(id, request, &mut wire) {
        panic!("request {id} decoded but does not encode: {e}\n{request:?}");
    }
    let again = server(limits).decode(&mut wire);
    match again {
        Ok(Some((again_id, again))) => {
            assert_eq!(again_id, id);
            assert_eq!(&again, request, "request changed in a round trip");
        }
        other => panic!("re-encoded request {id} does not decode: {other:?}\n{request:?}"),
    }
    assert!(wire.is_empty(), "re-encoded request left bytes over");
}

/// A decoded response encodes (server side) and decodes (client side) to
/// itself.
fn response_round_trips(limits: Limits, id: u64, response: &Response) {
    let mut wire = BytesMut::new();
    if let Err(e) = server(limits).encode(id, response, &mut wire) {
        panic!("response {id} decoded but does not encode: {e}\n{response:?}");
    }
    let again = client(limits).decode(&mut wire);
    match again {
        Ok(Some((again_id, again))) => {
            assert_eq!(again_id, id);
            assert_eq!(&again, response, "response changed in a round trip");
        }
        other => panic!("re-encoded response {id} does not decode: {other:?}\n{response:?}"),
    }
    assert!(wire.is_empty(), "re-encoded response left bytes over");
}
