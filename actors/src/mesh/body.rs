//! Request bodies in (bounded, budgeted, gzip-decoded) and response bodies
//! out (gzip-encoded on request).
//!
//! Invariants and why:
//! - A request body is read only up to `max_request_bytes` (before and
//!   after decompression): a bigger one is refused with 413, so neither a
//!   large upload nor a gzip bomb can exhaust memory.
//! - Every buffered byte holds a permit of the node-wide byte budget
//!   (`max_buffered_bytes`) until the request is answered; when the budget
//!   is spent, readers wait (backpressure: the client's upload stalls in
//!   TCP), they are never refused and nothing is dropped.
//! - A request takes its whole reservation at once before reading (its
//!   Content-Length, or `max_request_bytes` when the size is unknown or the
//!   body is gzip), never piecemeal: requests holding part of the budget
//!   while all waiting for more would deadlock. The config keeps
//!   `max_buffered_bytes >= max_request_bytes`, so one request always fits.
//! - Reading the body has a deadline (`body_timeout`): a client that
//!   trickles bytes loses its connection instead of holding a slot.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::headers::BodyEncoding;

use crate::budget::{ByteBudget, Reserved};

/// A request body and the budget it holds.
#[derive(Debug)]
pub(crate) struct Received {
    /// The (decoded) bytes.
    pub(crate) bytes: Bytes,
    _budget: Reserved,
}

fn too_large(max: u64) -> MeshError {
    MeshError::new(
        413,
        "",
        "SEND",
        "MESH_BODY_TOO_LARGE",
        format!(
            "the request body is larger than {max} bytes; send large files as chunks (Mex-Chunk-Range) of at most that size"
        ),
    )
}

/// Reads a whole request body.
pub(crate) async fn read(
    body: Incoming,
    encoding: BodyEncoding,
    max: u64,
    budget: &ByteBudget,
    timeout: Duration,
) -> Result<Received, MeshError> {
    match tokio::time::timeout(timeout, read_inner(body, encoding, max, budget)).await {
        Ok(r) => r,
        Err(_) => Err(MeshError::new(
            408,
            "",
            "SEND",
            "MESH_BODY_TIMEOUT",
            format!(
                "the request body did not arrive within {} seconds; check the connection and retry",
                timeout.as_secs()
            ),
        )),
    }
}

async fn read_inner(
    mut body: Incoming,
    encoding: BodyEncoding,
    max: u64,
    budget: &ByteBudget,
) -> Result<Received, MeshError> {
    // The whole reservation is taken at once, before a byte is read: a
    // request that held part of the budget while waiting for more would,
    // with others doing the same, deadlock them all. With Content-Length
    // and no compression the body's size is known; otherwise the most it
    // may decode to is reserved, and the excess given back once read.
    let declared = hyper::body::Body::size_hint(&body).exact();
    if declared.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let reserve = match (encoding, declared) {
        (BodyEncoding::Identity, Some(len)) => len,
        _ => max,
    };
    let mut held = budget.reserve(reserve).await.map_err(|_| shutting_down())?;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            MeshError::new(
                400,
                "02",
                "SEND",
                "MESH_BODY_UNREADABLE",
                format!("the request body could not be read ({e}); resend the request"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let total = buf.len() as u64 + data.len() as u64;
        if total > max {
            return Err(too_large(max));
        }
        if buf.is_empty() && data.len() as u64 == total {
            // Usually one frame: keep it without copying when possible.
            buf = BytesMut::from(data);
        } else {
            buf.extend_from_slice(&data);
        }
    }
    let raw = buf.freeze();
    let bytes = match encoding {
        BodyEncoding::Identity => raw,
        BodyEncoding::Gzip => gunzip(&raw, max)?,
    };
    // Keep only what the body holds (hyper never yields more than its
    // Content-Length, so the body never holds more than was reserved).
    held.shrink_to(bytes.len() as u64);
    Ok(Received {
        bytes,
        _budget: held,
    })
}

fn shutting_down() -> MeshError {
    MeshError::new(
        503,
        "",
        "SEND",
        "NODE_SHUTTING_DOWN",
        "the node is shutting down; retry after it restarts",
    )
}

/// Decompresses gzip (several members allowed), refusing more than `max`
/// bytes of output.
pub(crate) fn gunzip(input: &[u8], max: u64) -> Result<Bytes, MeshError> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(max as usize));
    let mut decoder = flate2::read::MultiGzDecoder::new(input).take(max + 1);
    decoder.read_to_end(&mut out).map_err(|e| {
        MeshError::new(
            400,
            "02",
            "SEND",
            "MESH_BAD_GZIP",
            format!("the body is marked Content-Encoding: gzip but is not valid gzip ({e})"),
        )
    })?;
    if out.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(Bytes::from(out))
}

/// Compresses `input` with gzip (fast level: this runs per download).
pub(crate) fn gzip(input: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(input.len() / 2 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(input);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Whether an `Accept-Encoding` value accepts gzip.
pub(crate) fn accepts_gzip(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                let p = p.trim();
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_bombs_are_refused() {
        let data = vec![7u8; 100_000];
        let packed = gzip(&data);
        assert!(packed.len() < 1_000);
        assert_eq!(gunzip(&packed, 100_000).unwrap(), Bytes::from(data));
        assert_eq!(gunzip(&packed, 99_999).unwrap_err().status, 413);
        assert_eq!(
            gunzip(b"not gzip", 10).unwrap_err().spine_code,
            "MESH_BAD_GZIP"
        );
        assert_eq!(gunzip(&gzip(b""), 10).unwrap(), Bytes::new());
    }

    #[test]
    fn accept_encoding_is_parsed() {
        assert!(accepts_gzip(Some("gzip, deflate")));
        assert!(accepts_gzip(Some("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
