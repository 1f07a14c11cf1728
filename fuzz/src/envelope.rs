//! `Envelope::from_rkyv_bytes` on arbitrary bytes: the write-ahead log's
//! and the protocol's envelope decoding.
//!
//! Asserted for every input: no panic; an envelope that decodes is valid,
//! its times format, and it re-encodes
//! (`to_rkyv_bytes`) to bytes that decode to the same envelope and
//! re-encode to the same bytes (the encoding is a fixed point).

use spine_core::envelope::Envelope;

/// The check; see the module docs.
pub fn check(data: &[u8]) {
    let Ok(envelope) = Envelope::from_rkyv_bytes(data) else {
        return;
    };
    if let Err(e) = envelope.validate() {
        panic!("a decoded envelope is invalid: {e}\n{envelope:?}");
    }
    // The MESH header and JSON renderings of the times are total (stored
    // times may lie past `Timestamp::MAX`; they are shown as they are).
    for t in [envelope.created_at, envelope.expires_at] {
        let _ = (t.format_mesh(), t.format_seconds(), t.to_rfc3339());
    }
    let bytes = match envelope.to_rkyv_bytes() {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded envelope does not re-encode: {e}\n{envelope:?}"),
    };
    let again = match Envelope::from_rkyv_bytes(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("a re-encoded envelope does not decode: {e}\n{envelope:?}"),
    };
    assert_eq!(again, envelope, "the envelope changed in a round trip");
    let bytes_again = again
        .to_rkyv_bytes()
        .expect("the same envelope encodes again");
    assert_eq!(bytes_again, bytes, "encoding is not deterministic");
}
