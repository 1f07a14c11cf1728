//! What each frame kind may carry (meta, payload, flags, request id), and
//! the checks every frame passes before its meta is read.
//!
//! Invariants and why:
//! - One table ([`shape`]) says which kinds carry a meta section and which
//!   a payload; the encoder builds frames from it and the decoder refuses
//!   anything else, so the two cannot drift apart.
//! - Request id 0 is reserved for server pushes and connection-level
//!   errors: requests must use another id, pushes must use 0, and every
//!   other response echoes its request's (non-zero) id. An `ERROR` may
//!   carry any id (0 when it concerns the connection).
//! - Only `DOWNLOAD_DATA` may carry the END flag, and only `SUBSCRIBE`
//!   and `PUSH` the INLINE flag; a `PUSH` carries a payload (the body)
//!   only with INLINE.
//! - Size limits are checked here, before any meta byte is copied or
//!   validated.

use crate::error::ProtocolError;
use crate::frame::{Flags, Frame, FrameKind};
use crate::limits::Limits;

/// Whether a kind carries a meta section and a payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub meta: bool,
    pub payload: bool,
}

/// The shape of each kind.
pub(crate) const fn shape(kind: FrameKind) -> Shape {
    use FrameKind as K;
    let (meta, payload) = match kind {
        K::Send
        | K::SendBatch
        | K::SendChunk
        | K::DownloadData
        | K::Push
        | K::ServiceRequest
        | K::ProviderReply
        | K::ServiceResponse
        | K::ServiceCall => (true, true),
        K::Unsubscribe | K::Ping | K::AckOk | K::Unsubscribed | K::Pong | K::ProviderReplyOk => {
            (false, false)
        }
        K::Hello
        | K::ListInbox
        | K::Download
        | K::Acknowledge
        | K::AcknowledgeBatch
        | K::AckBatchOk
        | K::Track
        | K::Lookup
        | K::Subscribe
        | K::Credit
        | K::HelloOk
        | K::SendOk
        | K::SendBatchOk
        | K::ChunkOk
        | K::InboxPage
        | K::TrackInfo
        | K::LookupResult
        | K::Subscribed
        | K::RegisterProvider
        | K::ProviderRegistered
        | K::Error => (true, false),
    };
    Shape { meta, payload }
}

/// Checks a request id against the kind's rule.
pub(crate) fn check_request_id(kind: FrameKind, request_id: u64) -> Result<(), ProtocolError> {
    let why = match kind {
        FrameKind::Error => return Ok(()),
        FrameKind::Push | FrameKind::ServiceCall if request_id != 0 => "pushes carry request id 0",
        FrameKind::Push | FrameKind::ServiceCall => return Ok(()),
        _ if request_id == 0 && kind.is_request() => {
            "id 0 is reserved for pushes and connection errors; number requests from 1"
        }
        _ if request_id == 0 => "a response echoes its request's non-zero id",
        _ => return Ok(()),
    };
    Err(ProtocolError::InvalidRequestId {
        kind,
        request_id,
        why,
    })
}

/// Checks the flags against the kind.
pub(crate) fn check_flags(kind: FrameKind, flags: Flags) -> Result<(), ProtocolError> {
    let allowed = match kind {
        FrameKind::DownloadData => Flags::END,
        FrameKind::Subscribe | FrameKind::Push => Flags::INLINE,
        _ => Flags::NONE,
    };
    if allowed.contains(flags) {
        return Ok(());
    }
    Err(ProtocolError::InvalidFlags {
        kind,
        flags: flags.bits(),
        why: "only DOWNLOAD_DATA may carry END, and only SUBSCRIBE and PUSH INLINE",
    })
}

/// Checks the sizes of a meta section and payload against the limits and
/// the kind's shape.
pub(crate) fn check_sizes(
    kind: FrameKind,
    meta_len: u64,
    payload_len: u64,
    limits: &Limits,
) -> Result<(), ProtocolError> {
    let shape = shape(kind);
    if !shape.meta && meta_len != 0 {
        return Err(ProtocolError::UnexpectedMeta {
            kind,
            len: meta_len,
        });
    }
    if !shape.payload && payload_len != 0 {
        return Err(ProtocolError::UnexpectedPayload {
            kind,
            len: payload_len,
        });
    }
    if meta_len > u64::from(limits.max_meta_bytes) {
        return Err(ProtocolError::MetaTooLarge {
            kind,
            len: meta_len,
            max: u64::from(limits.max_meta_bytes),
            hint: "send fewer items per frame (smaller batches, pages or look-ups)",
        });
    }
    if payload_len > u64::from(limits.max_payload_bytes) {
        return Err(ProtocolError::PayloadTooLarge {
            kind,
            len: payload_len,
            max: u64::from(limits.max_payload_bytes),
        });
    }
    Ok(())
}

/// Every check a decoded frame passes before its meta is read.
pub(crate) fn check_frame(frame: &Frame, limits: &Limits) -> Result<(), ProtocolError> {
    let header = frame.header;
    check_request_id(header.kind, header.request_id)?;
    check_flags(header.kind, header.flags)?;
    check_sizes(
        header.kind,
        frame.meta.len() as u64,
        frame.payload.len() as u64,
        limits,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_rules() {
        assert!(check_request_id(FrameKind::Send, 0).is_err());
        assert!(check_request_id(FrameKind::Send, 1).is_ok());
        assert!(check_request_id(FrameKind::SendOk, 0).is_err());
        assert!(check_request_id(FrameKind::Push, 0).is_ok());
        assert!(check_request_id(FrameKind::Push, 3).is_err());
        assert!(check_request_id(FrameKind::Error, 0).is_ok());
        assert!(check_request_id(FrameKind::Error, 9).is_ok());
        let e = check_request_id(FrameKind::Ping, 0).unwrap_err();
        assert!(e.to_string().contains("number requests from 1"), "{e}");
    }

    #[test]
    fn flags_belong_to_their_kinds() {
        assert!(check_flags(FrameKind::DownloadData, Flags::END).is_ok());
        assert!(check_flags(FrameKind::Send, Flags::END).is_err());
        assert!(check_flags(FrameKind::Send, Flags::NONE).is_ok());
        assert!(check_flags(FrameKind::Push, Flags::INLINE).is_ok());
        assert!(check_flags(FrameKind::Subscribe, Flags::INLINE).is_ok());
        assert!(check_flags(FrameKind::Push, Flags::END).is_err());
        assert!(check_flags(FrameKind::DownloadData, Flags::INLINE).is_err());
        assert!(check_flags(FrameKind::Send, Flags::INLINE).is_err());
    }

    #[test]
    fn sizes_follow_shape_and_limits() {
        let limits = Limits::default();
        assert!(check_sizes(FrameKind::Ping, 0, 0, &limits).is_ok());
        assert!(check_sizes(FrameKind::Ping, 1, 0, &limits).is_err());
        assert!(check_sizes(FrameKind::Ping, 0, 1, &limits).is_err());
        assert!(check_sizes(FrameKind::Hello, 10, 1, &limits).is_err());
        assert!(check_sizes(FrameKind::Send, 10, 100, &limits).is_ok());
        let big = u64::from(limits.max_payload_bytes) + 1;
        assert!(matches!(
            check_sizes(FrameKind::Send, 10, big, &limits),
            Err(ProtocolError::PayloadTooLarge { .. })
        ));
        let big_meta = u64::from(limits.max_meta_bytes) + 1;
        assert!(matches!(
            check_sizes(FrameKind::Send, big_meta, 0, &limits),
            Err(ProtocolError::MetaTooLarge { .. })
        ));
    }
}
