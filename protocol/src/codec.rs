//! The codecs: [`FrameCodec`] splits a byte stream into [`Frame`]s;
//! [`ServerCodec`] and [`ClientCodec`] turn frames into typed messages and
//! messages into [`EncodedFrame`]s. No I/O: the transport feeds received
//! bytes in and writes encoded bytes out.
//!
//! Invariants and why:
//! - `decode` returns `Ok(None)` until a whole frame is buffered, whatever
//!   the split of the bytes (one byte at a time works), and never consumes a
//!   partial frame.
//! - Before `HELLO`, the server's codec (`set_before_hello`) refuses any
//!   frame longer than a `HELLO` can be, fatally and before buffering it:
//!   an unauthenticated peer cannot make the server hold a large frame.
//! - The length prefix is checked against the limit, and the version byte
//!   against [`PROTOCOL_VERSION`], as soon as they arrive, before the rest
//!   of the frame is buffered; both errors are fatal.
//! - After a non-fatal error the offending frame has been consumed and the
//!   next call decodes the next frame (see [`crate::DecodeError`]).
//! - Payloads are `Bytes` slices of the receive buffer (no copy); encoding
//!   produces the header and meta as one buffer and leaves payloads as the
//!   caller's `Bytes`, so a transport can `writev` them without copying.
//! - Nothing here panics on any input.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, ProtocolError};
use crate::frame::{
    put_header, Flags, Frame, FrameHeader, FrameKind, HEADER_LEN, LENGTH_PREFIX_LEN,
    MIN_FRAME_LENGTH, PROTOCOL_VERSION,
};
use crate::limits::Limits;
use crate::request::Request;
use crate::response::Response;
use crate::shape;

/// Reads a big-endian `u32` at `at`, if the bytes are there.
fn be_u32(src: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = src.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Splits a byte stream into frames, checking the header.
///
/// `FrameCodec::default()` uses [`Limits::default`], which is valid.
#[derive(Clone, Debug, Default)]
pub struct FrameCodec {
    limits: Limits,
    /// Whether frames are capped at [`Limits::max_frame_length_before_hello`].
    before_hello: bool,
}

impl FrameCodec {
    /// A frame codec enforcing `limits` (checked with [`Limits::validate`]).
    pub fn new(limits: Limits) -> Result<FrameCodec, ProtocolError> {
        limits.validate()?;
        Ok(FrameCodec {
            limits,
            before_hello: false,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes the next whole frame off the front of `src`, or returns
    /// `Ok(None)` (having reserved room for the rest) if it is incomplete.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some(len) = be_u32(src, 0) else {
            return Ok(None);
        };
        let len = u64::from(len);
        if len < MIN_FRAME_LENGTH as u64 {
            return Err(DecodeError::stream(ProtocolError::FrameTooShort {
                len,
                min: MIN_FRAME_LENGTH as u64,
            }));
        }
        let max = self.limits.max_frame_length();
        if len > max {
            return Err(DecodeError::stream(ProtocolError::FrameTooLarge {
                len,
                max,
            }));
        }
        let before_hello = self.limits.max_frame_length_before_hello();
        if self.before_hello && len > before_hello {
            return Err(DecodeError::stream(
                ProtocolError::FrameTooLargeBeforeHello {
                    len,
                    max: before_hello,
                },
            ));
        }
        if let Some(&version) = src.get(LENGTH_PREFIX_LEN) {
            if version != PROTOCOL_VERSION {
                return Err(DecodeError::stream(ProtocolError::UnsupportedVersion {
                    version,
                    supported: PROTOCOL_VERSION,
                }));
            }
        }
        if let Some(meta_len) = be_u32(src, HEADER_LEN - 4) {
            let meta_len = u64::from(meta_len);
            if meta_len > len - MIN_FRAME_LENGTH as u64 {
                return Err(DecodeError::stream(ProtocolError::MetaOutOfBounds {
                    meta_len,
                    frame_len: len,
                }));
            }
        }
        let Some(total) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(LENGTH_PREFIX_LEN))
        else {
            return Err(DecodeError::stream(ProtocolError::FrameTooLarge {
                len,
                max,
            }));
        };
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let frame = src.split_to(total).freeze();
        parse_frame(frame).map(Some)
    }

    /// Encodes a raw frame (e.g. one being relayed), applying the decoder's
    /// header, shape and size checks but not reading the meta.
    pub fn encode_parts(&self, frame: &Frame) -> Result<EncodedFrame, ProtocolError> {
        assemble(
            frame.header,
            &frame.meta,
            vec![frame.payload.clone()],
            &self.limits,
        )
    }

    /// Appends a raw frame to `dst`; see [`FrameCodec::encode_parts`].
    pub fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_parts(frame)?.write_to(dst);
        Ok(())
    }
}

/// Splits a whole frame (length prefix included, version and meta bounds
/// already checked) into header, meta and payload.
fn parse_frame(frame: Bytes) -> Result<Frame, DecodeError> {
    let corrupt = || {
        DecodeError::stream(ProtocolError::FrameTooShort {
            len: frame.len() as u64,
            min: HEADER_LEN as u64,
        })
    };
    let header: &[u8; HEADER_LEN] = frame
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(corrupt)?;
    let [_, _, _, _, _, kind, f0, f1, i0, i1, i2, i3, i4, i5, i6, i7, m0, m1, m2, m3] = *header;
    let request_id = u64::from_be_bytes([i0, i1, i2, i3, i4, i5, i6, i7]);
    let flags = u16::from_be_bytes([f0, f1]);
    let meta_end = HEADER_LEN + u32::from_be_bytes([m0, m1, m2, m3]) as usize;
    let kind = FrameKind::from_u8(kind).ok_or(DecodeError::at(
        request_id,
        ProtocolError::UnknownKind {
            kind,
            version: PROTOCOL_VERSION,
        },
    ))?;
    let flags = Flags::from_bits(flags).ok_or(DecodeError::at(
        request_id,
        ProtocolError::InvalidFlags {
            kind,
            flags,
            why: "bits other than END (bit 0) are undefined and must be zero",
        },
    ))?;
    if meta_end > frame.len() {
        return Err(corrupt());
    }
    Ok(Frame {
        header: FrameHeader {
            kind,
            flags,
            request_id,
        },
        meta: frame.slice(HEADER_LEN..meta_end),
        payload: frame.slice(meta_end..),
    })
}

/// An encoded frame: the header and meta in one buffer, then the payload
/// pieces as they were given (not copied). Write `head` then every
/// `payload` piece, in order (e.g. with one vectored write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The 20-byte header followed by the meta section.
    pub head: Bytes,
    /// The payload pieces, in order (empty pieces are left out).
    pub payload: Vec<Bytes>,
}

impl EncodedFrame {
    /// Total bytes of the frame, length prefix included.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload.iter().map(Bytes::len).sum::<usize>()
    }

    /// Always false: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the whole frame to `dst` (copying the payload).
    pub fn write_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.len());
        dst.extend_from_slice(&self.head);
        for piece in &self.payload {
            dst.extend_from_slice(piece);
        }
    }

    /// The head and payload pieces in write order.
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.head).chain(self.payload.iter())
    }
}

/// Builds a frame from its parts, applying the same checks as the decoder
/// (request id, flags, shape and size limits).
pub(crate) fn assemble(
    header: FrameHeader,
    meta: &[u8],
    payload: Vec<Bytes>,
    limits: &Limits,
) -> Result<EncodedFrame, ProtocolError> {
    let kind = header.kind;
    let payload: Vec<Bytes> = payload.into_iter().filter(|p| !p.is_empty()).collect();
    let payload_len: u64 = payload.iter().map(|p| p.len() as u64).sum();
    shape::check_request_id(kind, header.request_id)?;
    shape::check_flags(kind, header.flags)?;
    shape::check_sizes(kind, meta.len() as u64, payload_len, limits)?;
    let rest = MIN_FRAME_LENGTH as u64 + meta.len() as u64 + payload_len;
    let (Ok(rest32), Ok(meta32)) = (u32::try_from(rest), u32::try_from(meta.len())) else {
        return Err(ProtocolError::FrameTooLarge {
            len: rest,
            max: u64::from(u32::MAX),
        });
    };
    let mut head = BytesMut::with_capacity(HEADER_LEN + meta.len());
    put_header(&mut head, header, rest32, meta32);
    head.extend_from_slice(meta);
    Ok(EncodedFrame {
        head: head.freeze(),
        payload,
    })
}

/// The server's side: decodes [`Request`]s, encodes [`Response`]s.
#[derive(Clone, Debug, Default)]
pub struct ServerCodec {
    frames: FrameCodec,
}

impl ServerCodec {
    /// A server codec enforcing `limits` (checked with [`Limits::validate`]).
    pub fn new(limits: Limits) -> Result<ServerCodec, ProtocolError> {
        Ok(ServerCodec {
            frames: FrameCodec::new(limits)?,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.frames.limits()
    }

    /// Whether to refuse (fatally) any frame longer than `HELLO` can be:
    /// set while the connection has not authenticated.
    pub fn set_before_hello(&mut self, before_hello: bool) {
        self.frames.before_hello = before_hello;
    }

    /// The length of the frame at the front of `src` (length prefix
    /// included), once its prefix has arrived: what reading it will buffer.
    pub fn pending_frame_bytes(src: &[u8]) -> Option<u64> {
        be_u32(src, 0).map(|len| u64::from(len) + LENGTH_PREFIX_LEN as u64)
    }

    /// The next request and its id, or `Ok(None)` while incomplete. On an
    /// error that is not fatal, answer `error.reply_id()` with
    /// `Response::Error(error.to_wire())` and keep decoding; on a fatal one,
    /// send that answer (id 0) and close the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<(u64, Request)>, DecodeError> {
        let Some(frame) = self.frames.decode(src)? else {
            return Ok(None);
        };
        let id = frame.header.request_id;
        Request::from_frame(&frame, self.limits())
            .map(|request| Some((id, request)))
            .map_err(|e| DecodeError::at(id, e))
    }

    /// Encodes `response` to request `request_id` as header+meta and
    /// payload pieces.
    pub fn encode_parts(
        &self,
        request_id: u64,
        response: &Response,
    ) -> Result<EncodedFrame, ProtocolError> {
        response.to_frame(request_id, self.limits())
    }

    /// Appends `response` to request `request_id` to `dst`.
    pub fn encode(
        &self,
        request_id: u64,
        response: &Response,
        dst: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        self.encode_parts(request_id, response)?.write_to(dst);
        Ok(())
    }
}

/// The client's side: decodes [`Response`]s, encodes [`Request`]s.
#[derive(Clone, Debug, Default)]
pub struct ClientCodec {
    frames: FrameCodec,
}

impl ClientCodec {
    /// A client codec enforcing `limits` (checked with [`Limits::validate`]).
    /// After `HELLO_OK`, narrow them with [`Limits::with_server`] and
    /// [`ClientCodec::set_limits`].
    pub fn new(limits: Limits) -> Result<ClientCodec, ProtocolError> {
        Ok(ClientCodec {
            frames: FrameCodec::new(limits)?,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.frames.limits()
    }

    /// Replaces the limits (checked with [`Limits::validate`]).
    pub fn set_limits(&mut self, limits: Limits) -> Result<(), ProtocolError> {
        self.frames = FrameCodec::new(limits)?;
        Ok(())
    }

    /// The next response and its request id (0 for pushes and connection
    /// errors), or `Ok(None)` while incomplete.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<(u64, Response)>, DecodeError> {
        let Some(frame) = self.frames.decode(src)? else {
            return Ok(None);
        };
        let id = frame.header.request_id;
        Response::from_frame(&frame, self.limits())
            .map(|response| Some((id, response)))
            .map_err(|e| DecodeError::at(id, e))
    }

    /// Encodes `request` with id `request_id` (not 0) as header+meta and
    /// payload pieces.
    pub fn encode_parts(
        &self,
        request_id: u64,
        request: &Request,
    ) -> Result<EncodedFrame, ProtocolError> {
        request.to_frame(request_id, self.limits())
    }

    /// Appends `request` with id `request_id` (not 0) to `dst`.
    pub fn encode(
        &self,
        request_id: u64,
        request: &Request,
        dst: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        self.encode_parts(request_id, request)?.write_to(dst);
        Ok(())
    }
}
