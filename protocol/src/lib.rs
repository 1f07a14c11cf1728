//! `spine-protocol`: Spine's native wire protocol as a sans-IO codec.
//!
//! The protocol carries length-prefixed, versioned frames, each with a
//! client-chosen request id so that requests can be pipelined and answered
//! out of order. A frame has a fixed 20-byte header, an rkyv-archived meta
//! section (the kind's structured part) and a raw payload (message bodies,
//! chunks). `WIRE.md` beside this crate specifies the format; the module docs
//! state each part's invariants.
//!
//! This crate does no I/O: a transport (TCP, TLS, QUIC, in `spine-actors`)
//! feeds received bytes to a [`ServerCodec`] or [`ClientCodec`] and writes
//! out the [`EncodedFrame`]s it gets back.
//!
//! ```
//! use bytes::BytesMut;
//! use spine_protocol::{ClientCodec, Request, Response, ServerCodec};
//!
//! let client = ClientCodec::default();
//! let mut server = ServerCodec::default();
//! let mut wire = BytesMut::new();
//! client.encode(1, &Request::Ping, &mut wire).unwrap();
//! let (id, request) = server.decode(&mut wire).unwrap().unwrap();
//! assert_eq!((id, request), (1, Request::Ping));
//! server.encode(id, &Response::Pong, &mut wire).unwrap();
//! ```
//!
//! Invariants kept by this crate:
//! - Nothing reachable from input panics; every error is a
//!   [`ProtocolError`] with a stable `PROTO_*` code and a message that says
//!   what to change, and the decoder says whether the stream is still
//!   usable after it ([`DecodeError::is_fatal`]).
//! - Every length read from the wire is checked against [`Limits`] before
//!   anything of that size is buffered or allocated.
//! - Meta sections are validated with bytecheck before any field is read,
//!   then every id is re-parsed by its `spine-core` parser and every
//!   envelope re-validated (`Envelope::from_rkyv_bytes`): unvalidated
//!   archived bytes are never trusted.
//! - Encoding applies the decoder's checks, so whatever encodes decodes.
//! - Payloads are never copied by the decoder (they are slices of the
//!   receive buffer) nor by [`EncodedFrame`] (they stay separate pieces).
//! - Frame kinds, flag bits, error codes and enum numbers are stable wire
//!   constants: never renumbered, never reused.

mod codec;
mod credit;
mod download;
mod error;
mod frame;
mod limits;
pub mod mesh;
mod meta;
mod request;
mod response;
mod service;
mod shape;
mod wire_error;
mod wire_types;

#[cfg(test)]
mod tests;

pub use codec::{ClientCodec, EncodedFrame, FrameCodec, ServerCodec};
pub use credit::CreditWindow;
pub use download::{
    split_download, DownloadAssembler, DownloadData, DownloadPieces, DownloadedChunk,
};
pub use error::{DecodeError, ProtocolError};
pub use frame::{
    Flags, Frame, FrameHeader, FrameKind, HEADER_LEN, LENGTH_PREFIX_LEN, MIN_FRAME_LENGTH,
    PROTOCOL_VERSION,
};
pub use limits::{
    Limits, ServerLimits, MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_NAME_BYTES, MAX_IDEMPOTENCY_KEY_BYTES,
    MAX_MAILBOX_NAME_BYTES, MAX_SERVER_NAME_BYTES, MAX_WORKFLOW_FILTER_BYTES,
};
pub use request::{BatchItem, Request};
pub use response::Response;
pub use service::{
    ServiceCall, ServiceFault, MAX_FAULT_CODE_BYTES, MAX_FAULT_MESSAGE_BYTES,
    MAX_INTERACTION_BYTES, MAX_SERVICE_FIELD_BYTES,
};
pub use wire_error::{WireError, WireErrorCode};
pub use wire_types::{
    message_type_from_wire, message_type_to_wire, status_from_wire, status_to_wire, InboxEntry,
    LookupEntry, Password, SendHeader, SendOk, TrackInfo,
};
