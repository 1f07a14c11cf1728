//! The frame: a fixed 20-byte header, then a meta section, then a payload.
//!
//! ```text
//! 0..4    u32  length of the rest of the frame (everything after these 4 bytes)
//! 4       u8   protocol version (PROTOCOL_VERSION)
//! 5       u8   frame kind (FrameKind)
//! 6..8    u16  flags (Flags)
//! 8..16   u64  request id
//! 16..20  u32  meta length M
//! 20..20+M     meta: rkyv archive of the kind's structured part (empty for kinds without one)
//! rest         payload: raw bytes (message bodies, chunks)
//! ```
//!
//! Invariants and why:
//! - Every integer is big-endian; the length prefix and the version byte keep
//!   their place in every future version, so a peer can always tell "too
//!   large" and "wrong version" apart from garbage and answer before closing.
//! - Kind numbers and flag bits never change meaning once released: a
//!   response kind is its request kind with the top bit set (`0x80 | n`),
//!   server-initiated kinds live at `0xA0..`, and `0xFF` is the error frame.
//! - Flag bits not defined here must be zero; the decoder refuses others so
//!   that a later version can give them a meaning safely.

use std::fmt;

/// The protocol version this crate speaks (header byte 4).
pub const PROTOCOL_VERSION: u8 = 1;

/// Bytes of the length prefix (header bytes 0..4).
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Bytes of the fixed header including the length prefix.
pub const HEADER_LEN: usize = 20;

/// Smallest valid value of the length prefix: the fixed header after it.
pub const MIN_FRAME_LENGTH: usize = HEADER_LEN - LENGTH_PREFIX_LEN;

/// What a frame carries; header byte 5. The numbers are part of the wire
/// contract and never change.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FrameKind {
    /// Request: authenticate the connection as a mailbox.
    Hello = 0x01,
    /// Request: send one message (its first chunk).
    Send = 0x02,
    /// Request: send several single-frame messages at once.
    SendBatch = 0x03,
    /// Request: upload chunk 2.. of a chunked message.
    SendChunk = 0x04,
    /// Request: one page of the inbox.
    ListInbox = 0x05,
    /// Request: download one chunk of a message.
    Download = 0x06,
    /// Request: acknowledge a downloaded message.
    Acknowledge = 0x07,
    /// Request: track a sent message.
    Track = 0x08,
    /// Request: endpoint look-up.
    Lookup = 0x09,
    /// Request: start push delivery with an initial credit.
    Subscribe = 0x0A,
    /// Request: grant more push credit (no response).
    Credit = 0x0B,
    /// Request: stop push delivery.
    Unsubscribe = 0x0C,
    /// Request: liveness check.
    Ping = 0x0D,
    /// A request to a national service.
    ServiceRequest = 0x0E,
    /// Register this connection as a provider of a service.
    RegisterProvider = 0x0F,
    /// A provider's answer to a `SERVICE_CALL`.
    ProviderReply = 0x10,
    /// Request: acknowledge several messages at once.
    AcknowledgeBatch = 0x11,
    /// Response to [`FrameKind::Hello`].
    HelloOk = 0x81,
    /// Response to [`FrameKind::Send`].
    SendOk = 0x82,
    /// Response to [`FrameKind::SendBatch`].
    SendBatchOk = 0x83,
    /// Response to [`FrameKind::SendChunk`].
    ChunkOk = 0x84,
    /// Response to [`FrameKind::ListInbox`].
    InboxPage = 0x85,
    /// Response to [`FrameKind::Download`]; one or more per request.
    DownloadData = 0x86,
    /// Response to [`FrameKind::Acknowledge`].
    AckOk = 0x87,
    /// Response to [`FrameKind::Track`].
    TrackInfo = 0x88,
    /// Response to [`FrameKind::Lookup`].
    LookupResult = 0x89,
    /// Response to [`FrameKind::Subscribe`].
    Subscribed = 0x8A,
    /// Response to [`FrameKind::Unsubscribe`].
    Unsubscribed = 0x8C,
    /// Response to [`FrameKind::Ping`].
    Pong = 0x8D,
    /// Response to [`FrameKind::ServiceRequest`].
    ServiceResponse = 0x8E,
    /// Response to [`FrameKind::RegisterProvider`].
    ProviderRegistered = 0x8F,
    /// Response to [`FrameKind::ProviderReply`].
    ProviderReplyOk = 0x90,
    /// Response to [`FrameKind::AcknowledgeBatch`]: one result per message.
    AckBatchOk = 0x91,
    /// Server push: a message newly accepted into the subscribed inbox.
    Push = 0xA0,
    /// A service request delivered to a registered provider (id 0).
    ServiceCall = 0xA1,
    /// Response to any request that failed, or a connection-level error.
    Error = 0xFF,
}

impl FrameKind {
    /// Every kind, in numeric order.
    pub const ALL: [FrameKind; 36] = [
        FrameKind::Hello,
        FrameKind::Send,
        FrameKind::SendBatch,
        FrameKind::SendChunk,
        FrameKind::ListInbox,
        FrameKind::Download,
        FrameKind::Acknowledge,
        FrameKind::Track,
        FrameKind::Lookup,
        FrameKind::Subscribe,
        FrameKind::Credit,
        FrameKind::Unsubscribe,
        FrameKind::Ping,
        FrameKind::ServiceRequest,
        FrameKind::RegisterProvider,
        FrameKind::ProviderReply,
        FrameKind::AcknowledgeBatch,
        FrameKind::HelloOk,
        FrameKind::SendOk,
        FrameKind::SendBatchOk,
        FrameKind::ChunkOk,
        FrameKind::InboxPage,
        FrameKind::DownloadData,
        FrameKind::AckOk,
        FrameKind::TrackInfo,
        FrameKind::LookupResult,
        FrameKind::Subscribed,
        FrameKind::Unsubscribed,
        FrameKind::Pong,
        FrameKind::ServiceResponse,
        FrameKind::ProviderRegistered,
        FrameKind::ProviderReplyOk,
        FrameKind::AckBatchOk,
        FrameKind::Push,
        FrameKind::ServiceCall,
        FrameKind::Error,
    ];

    /// The kind's wire number.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The kind with wire number `value`, if there is one.
    pub fn from_u8(value: u8) -> Option<FrameKind> {
        FrameKind::ALL.iter().copied().find(|k| k.as_u8() == value)
    }

    /// True for kinds a client sends (`0x01..=0x7F`).
    pub const fn is_request(self) -> bool {
        (self as u8) < 0x80
    }

    /// The kind's name, as `WIRE.md` lists it.
    pub const fn name(self) -> &'static str {
        match self {
            FrameKind::Hello => "HELLO",
            FrameKind::Send => "SEND",
            FrameKind::SendBatch => "SEND_BATCH",
            FrameKind::SendChunk => "SEND_CHUNK",
            FrameKind::ListInbox => "LIST_INBOX",
            FrameKind::Download => "DOWNLOAD",
            FrameKind::Acknowledge => "ACKNOWLEDGE",
            FrameKind::Track => "TRACK",
            FrameKind::Lookup => "LOOKUP",
            FrameKind::Subscribe => "SUBSCRIBE",
            FrameKind::Credit => "CREDIT",
            FrameKind::Unsubscribe => "UNSUBSCRIBE",
            FrameKind::Ping => "PING",
            FrameKind::ServiceRequest => "SERVICE_REQUEST",
            FrameKind::RegisterProvider => "REGISTER_PROVIDER",
            FrameKind::ProviderReply => "PROVIDER_REPLY",
            FrameKind::AcknowledgeBatch => "ACKNOWLEDGE_BATCH",
            FrameKind::HelloOk => "HELLO_OK",
            FrameKind::SendOk => "SEND_OK",
            FrameKind::SendBatchOk => "SEND_BATCH_OK",
            FrameKind::ChunkOk => "CHUNK_OK",
            FrameKind::InboxPage => "INBOX_PAGE",
            FrameKind::DownloadData => "DOWNLOAD_DATA",
            FrameKind::AckOk => "ACK_OK",
            FrameKind::TrackInfo => "TRACK_INFO",
            FrameKind::LookupResult => "LOOKUP_RESULT",
            FrameKind::Subscribed => "SUBSCRIBED",
            FrameKind::Unsubscribed => "UNSUBSCRIBED",
            FrameKind::Pong => "PONG",
            FrameKind::ServiceResponse => "SERVICE_RESPONSE",
            FrameKind::ProviderRegistered => "PROVIDER_REGISTERED",
            FrameKind::ProviderReplyOk => "PROVIDER_REPLY_OK",
            FrameKind::AckBatchOk => "ACK_BATCH_OK",
            FrameKind::ServiceCall => "SERVICE_CALL",
            FrameKind::Push => "PUSH",
            FrameKind::Error => "ERROR",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02X})", self.name(), self.as_u8())
    }
}

/// Header bytes 6..8. Only the bits named here may be set.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Bit 0: the last frame of a streamed [`FrameKind::DownloadData`] answer.
    pub const END: Flags = Flags(1);
    /// Bit 1: on [`FrameKind::Subscribe`], "push small bodies with their
    /// notifications"; on [`FrameKind::Push`], "the payload is the whole
    /// body of the message".
    pub const INLINE: Flags = Flags(2);
    /// Every bit this version defines.
    pub const KNOWN: Flags = Flags(Flags::END.0 | Flags::INLINE.0);

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The flags with these bits, if every bit is defined.
    pub const fn from_bits(bits: u16) -> Option<Flags> {
        if bits & !Flags::KNOWN.0 == 0 {
            Some(Flags(bits))
        } else {
            None
        }
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` with the bits of `other` set too.
    #[must_use]
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// The decoded fixed header of a frame (the version is always
/// [`PROTOCOL_VERSION`] once decoded, so it is not kept).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// What the frame carries.
    pub kind: FrameKind,
    /// Its flags.
    pub flags: Flags,
    /// The request id: chosen by the client (never 0), echoed by the
    /// server; 0 on server pushes and on connection-level errors.
    pub request_id: u64,
}

/// One decoded frame: header, meta and payload. `meta` and `payload` are
/// slices of the receive buffer (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The fixed header.
    pub header: FrameHeader,
    /// The rkyv-archived structured part (unvalidated until a message is
    /// decoded from the frame).
    pub meta: bytes::Bytes,
    /// The raw payload.
    pub payload: bytes::Bytes,
}

/// Writes the 20-byte header. `rest_len` is the length prefix (everything
/// after it); the caller has checked it fits.
pub(crate) fn put_header(
    dst: &mut bytes::BytesMut,
    header: FrameHeader,
    rest_len: u32,
    meta_len: u32,
) {
    use bytes::BufMut;
    dst.reserve(HEADER_LEN);
    dst.put_u32(rest_len);
    dst.put_u8(PROTOCOL_VERSION);
    dst.put_u8(header.kind.as_u8());
    dst.put_u16(header.flags.bits());
    dst.put_u64(header.request_id);
    dst.put_u32(meta_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_numbers_are_stable_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in FrameKind::ALL {
            assert!(seen.insert(kind.as_u8()), "{kind} repeated");
            assert_eq!(FrameKind::from_u8(kind.as_u8()), Some(kind));
            if kind.is_request() {
                assert!(kind.as_u8() >= 1);
            }
        }
        assert_eq!(FrameKind::Hello.as_u8(), 0x01);
        assert_eq!(FrameKind::Ping.as_u8(), 0x0D);
        assert_eq!(FrameKind::Pong.as_u8(), 0x8D);
        assert_eq!(FrameKind::Push.as_u8(), 0xA0);
        assert_eq!(FrameKind::Error.as_u8(), 0xFF);
        assert_eq!(FrameKind::from_u8(0), None);
        assert_eq!(FrameKind::ServiceRequest.as_u8(), 0x0E);
        assert_eq!(FrameKind::ServiceCall.as_u8(), 0xA1);
        assert_eq!(FrameKind::AcknowledgeBatch.as_u8(), 0x11);
        assert_eq!(FrameKind::from_u8(0x12), None);
        assert_eq!(FrameKind::Send.to_string(), "SEND (0x02)");
    }

    #[test]
    fn responses_mirror_requests() {
        for kind in FrameKind::ALL.into_iter().filter(|k| k.is_request()) {
            if kind == FrameKind::Credit {
                continue; // credit has no response
            }
            let response = FrameKind::from_u8(kind.as_u8() | 0x80).unwrap();
            assert!(!response.is_request());
        }
    }

    #[test]
    fn flags_refuse_undefined_bits() {
        assert_eq!(Flags::from_bits(0), Some(Flags::NONE));
        assert_eq!(Flags::from_bits(1), Some(Flags::END));
        assert_eq!(Flags::from_bits(2), Some(Flags::INLINE));
        assert_eq!(Flags::from_bits(4), None);
        assert_eq!(Flags::from_bits(0x8001), None);
        assert!(Flags::NONE.with(Flags::END).contains(Flags::END));
        assert!(Flags::NONE.is_empty());
    }
}
