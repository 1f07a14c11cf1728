//! The decoder against truncated, oversize, malformed, forged and arbitrary
//! input: it waits, refuses with the right error, or decodes; it never
//! panics, and after a non-fatal error it carries on with the next frame.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use spine_core::ErrorCode;

use super::strategies::{request, response, response_id, test_limits};
use super::{envelope, mailbox, raw_frame, workflow, SAMPLE_ID};
use crate::codec::{ClientCodec, FrameCodec, ServerCodec};
use crate::error::DecodeError;
use crate::frame::{Flags, FrameKind, HEADER_LEN};
use crate::limits::Limits;
use crate::meta::{self, BatchItemMeta, HelloMeta, PushMeta, SendBatchMeta, SendOkMeta};
use crate::request::{BatchItem, Request};
use crate::response::Response;
use crate::wire_types::{Password, SendHeader, SendHeaderWire};

fn server() -> ServerCodec {
    ServerCodec::new(test_limits()).unwrap()
}

fn client() -> ClientCodec {
    ClientCodec::new(test_limits()).unwrap()
}

fn server_error(bytes: &mut BytesMut) -> DecodeError {
    server().decode(bytes).unwrap_err()
}

fn hello_bytes(id: u64) -> BytesMut {
    let mut b = BytesMut::new();
    client()
        .encode(
            id,
            &Request::Hello {
                client_name: "test client 1.0".into(),
                mailbox: mailbox("X26ABC1"),
                password: Password::new("password"),
            },
            &mut b,
        )
        .unwrap();
    b
}

#[test]
fn truncated_frames_wait_without_consuming() {
    let whole = hello_bytes(3);
    for cut in 0..whole.len() {
        let mut partial = BytesMut::from(&whole[..cut]);
        assert_eq!(server().decode(&mut partial).unwrap(), None, "cut at {cut}");
        assert_eq!(&partial[..], &whole[..cut], "cut at {cut} consumed bytes");
    }
    let mut complete = whole.clone();
    assert!(server().decode(&mut complete).unwrap().is_some());
}

#[test]
fn oversize_length_is_refused_before_buffering() {
    let limits = test_limits();
    let mut b = BytesMut::with_capacity(4);
    b.put_u32((limits.max_frame_length() + 1) as u32);
    let e = server_error(&mut b);
    assert!(e.is_fatal());
    assert_eq!(e.code(), "PROTO_FRAME_TOO_LARGE");
    assert_eq!(e.reply_id(), 0);
    assert!(
        b.capacity() < 1024,
        "reserved {} bytes for a refused frame",
        b.capacity()
    );
    assert!(e
        .to_string()
        .contains("send bodies larger than the payload limit as chunks"));

    let mut max = BytesMut::new();
    max.put_u32(u32::MAX);
    assert_eq!(server_error(&mut max).code(), "PROTO_FRAME_TOO_LARGE");
}

#[test]
fn before_hello_only_hello_sized_frames_are_read() {
    let limits = Limits::default();
    let mut server = ServerCodec::new(limits).unwrap();
    server.set_before_hello(true);
    // The largest HELLO the limits allow still fits.
    let mut hello = BytesMut::new();
    client()
        .encode(
            1,
            &Request::Hello {
                client_name: "c".repeat(test_limits().max_client_name_bytes as usize),
                mailbox: mailbox("X26ABC1"),
                password: Password::new("p".repeat(test_limits().max_password_bytes as usize)),
            },
            &mut hello,
        )
        .unwrap();
    assert!(server.decode(&mut hello).unwrap().is_some());
    // A frame header declaring more is refused from its length prefix,
    // fatally and without reserving room for it.
    let len = limits.max_frame_length_before_hello() + 1;
    assert!(len < limits.max_frame_length());
    let mut big = BytesMut::with_capacity(4);
    big.put_u32(len as u32);
    let e = server.decode(&mut big).unwrap_err();
    assert!(e.is_fatal());
    assert_eq!(e.code(), "PROTO_FRAME_TOO_LARGE_BEFORE_HELLO");
    assert!(e.to_string().contains("send HELLO"), "{e}");
    assert!(big.capacity() < 1024, "reserved {}", big.capacity());
    // Once authenticated, the same frame is only awaited.
    server.set_before_hello(false);
    assert_eq!(server.decode(&mut big).unwrap(), None);
    assert_eq!(
        ServerCodec::pending_frame_bytes(&big),
        Some(len + 4),
        "prefix plus length"
    );
    assert_eq!(ServerCodec::pending_frame_bytes(&big[..3]), None);
}

#[test]
fn a_push_carries_a_body_only_with_inline() {
    let push = Response::Push {
        envelope: envelope(),
        order: 7,
        body: Some(Bytes::from_static(b"body")),
    };
    let mut wire = BytesMut::new();
    ServerCodec::default().encode(0, &push, &mut wire).unwrap();
    // Clear INLINE (header bytes 6..8): a payload without it is refused.
    wire[7] &= !(crate::frame::Flags::INLINE.bits() as u8);
    let e = client().decode(&mut wire).unwrap_err();
    assert_eq!(e.code(), "PROTO_FRAME_INCONSISTENT");
    assert!(!e.is_fatal());
    assert!(e.to_string().contains("INLINE"), "{e}");
}

#[test]
fn a_frame_at_the_limit_is_accepted() {
    let limits = Limits {
        max_payload_bytes: 100,
        ..test_limits()
    };
    let client = ClientCodec::new(limits).unwrap();
    let mut server = ServerCodec::new(limits).unwrap();
    let send = |len: usize| Request::Send {
        header: SendHeader::simple(mailbox("X26ABC2"), workflow("WF")),
        body: Bytes::from(vec![1u8; len]),
    };
    let mut wire = BytesMut::new();
    client.encode(1, &send(100), &mut wire).unwrap();
    assert!(server.decode(&mut wire).unwrap().is_some());
    let e = client.encode(1, &send(101), &mut wire).unwrap_err();
    assert_eq!(e.code(), "PROTO_PAYLOAD_TOO_LARGE");
    assert!(e.to_string().contains("split the body into chunks"), "{e}");
}

#[test]
fn short_length_is_fatal() {
    let mut b = BytesMut::new();
    b.put_u32(15);
    let e = server_error(&mut b);
    assert!(e.is_fatal());
    assert_eq!(e.code(), "PROTO_FRAME_TOO_SHORT");
}

#[test]
fn bad_version_is_refused_from_its_byte() {
    let mut b = BytesMut::new();
    b.put_u32(100);
    b.put_u8(2);
    let e = server_error(&mut b);
    assert!(e.is_fatal());
    assert_eq!(e.code(), "PROTO_UNSUPPORTED_VERSION");
    assert_eq!(
        e.to_string(),
        "protocol version 2 is not supported; this peer speaks version 1"
    );
    assert_eq!(e.to_wire().code, 1002);
}

#[test]
fn meta_length_past_the_frame_is_fatal_from_the_header() {
    let mut b = raw_frame(FrameKind::Hello.as_u8(), 0, 1, &[0; 8], &[]);
    // Claim 9 meta bytes in a frame with room for 8; only the header is sent.
    b[16..20].copy_from_slice(&9u32.to_be_bytes());
    b.truncate(HEADER_LEN);
    let e = server_error(&mut b);
    assert!(e.is_fatal());
    assert_eq!(e.code(), "PROTO_META_OUT_OF_BOUNDS");
}

#[test]
fn unknown_kind_is_skipped_and_decoding_continues() {
    let mut b = raw_frame(0x42, 0, 9, &[], &[1, 2, 3]);
    b.extend_from_slice(&hello_bytes(10));
    let mut codec = server();
    let e = codec.decode(&mut b).unwrap_err();
    assert!(!e.is_fatal());
    assert_eq!(e.request_id, Some(9));
    assert_eq!(e.code(), "PROTO_UNKNOWN_KIND");
    assert_eq!(e.to_wire().code, 1003);
    assert!(matches!(
        codec.decode(&mut b).unwrap(),
        Some((10, Request::Hello { .. }))
    ));
}

#[test]
fn undefined_flags_and_misplaced_end_are_refused() {
    let mut b = raw_frame(FrameKind::Ping.as_u8(), 0x0002, 4, &[], &[]);
    let e = server_error(&mut b);
    assert_eq!((e.code(), e.request_id), ("PROTO_FLAGS_INVALID", Some(4)));
    assert!(b.is_empty());
    let mut b = raw_frame(FrameKind::Ping.as_u8(), Flags::END.bits(), 4, &[], &[]);
    assert_eq!(server_error(&mut b).code(), "PROTO_FLAGS_INVALID");
}

#[test]
fn direction_and_request_ids_are_enforced() {
    let mut pong = raw_frame(FrameKind::Pong.as_u8(), 0, 1, &[], &[]);
    let e = server_error(&mut pong);
    assert_eq!(e.code(), "PROTO_UNEXPECTED_KIND");
    assert_eq!(e.to_wire().code, 1004);

    let mut ping = raw_frame(FrameKind::Ping.as_u8(), 0, 1, &[], &[]);
    assert_eq!(
        client().decode(&mut ping).unwrap_err().code(),
        "PROTO_UNEXPECTED_KIND"
    );

    let mut zero = raw_frame(FrameKind::Ping.as_u8(), 0, 0, &[], &[]);
    assert_eq!(server_error(&mut zero).code(), "PROTO_REQUEST_ID_INVALID");
    let e = client()
        .encode(0, &Request::Ping, &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(e.code(), "PROTO_REQUEST_ID_INVALID");
}

#[test]
fn meta_and_payload_must_match_the_kind() {
    let mut b = raw_frame(FrameKind::Ping.as_u8(), 0, 1, &[0; 4], &[]);
    assert_eq!(server_error(&mut b).code(), "PROTO_UNEXPECTED_META");
    let mut b = raw_frame(FrameKind::Ping.as_u8(), 0, 1, &[], &[0; 4]);
    assert_eq!(server_error(&mut b).code(), "PROTO_UNEXPECTED_PAYLOAD");
    // A kind that needs meta, sent without: the empty archive is refused.
    let mut b = raw_frame(FrameKind::Acknowledge.as_u8(), 0, 1, &[], &[]);
    assert_eq!(server_error(&mut b).code(), "PROTO_META_INVALID");
}

#[test]
fn oversize_meta_is_refused() {
    let limits = Limits {
        max_meta_bytes: 64,
        max_batch: 1,
        max_inbox_page: 1,
        max_lookup_results: 1,
        ..Limits::default()
    };
    // These limits cannot hold a full list answer.
    assert!(limits.validate().is_err());
    let mut b = raw_frame(FrameKind::Hello.as_u8(), 0, 1, &[0; 65], &[]);
    let mut codec = ServerCodec::default();
    let e = Request::from_frame(
        &FrameCodec::default().decode(&mut b).unwrap().unwrap(),
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.code(), "PROTO_META_TOO_LARGE");
    // With room, the same garbage fails bytecheck instead.
    let mut b = raw_frame(FrameKind::Hello.as_u8(), 0, 1, &[0xAB; 65], &[]);
    assert_eq!(
        codec.decode(&mut b).unwrap_err().code(),
        "PROTO_META_INVALID"
    );
}

#[test]
fn garbage_meta_fails_bytecheck() {
    for kind in FrameKind::ALL {
        if !crate::shape::shape(kind).meta {
            continue;
        }
        let id = if matches!(kind, FrameKind::Push | FrameKind::ServiceCall) {
            0
        } else {
            1
        };
        let decode = |garbage: &[u8]| {
            let mut b = raw_frame(kind.as_u8(), 0, id, garbage, &[]);
            let result = if kind.is_request() {
                server().decode(&mut b).map(|_| ())
            } else {
                client().decode(&mut b).map(|_| ())
            };
            assert!(b.is_empty(), "{kind}: frame not consumed");
            result
        };
        // Too short for the archive's root, or an invalid bool.
        let e = decode(&[0xFF; 3]).unwrap_err();
        assert_eq!(e.code(), "PROTO_META_INVALID", "{kind}: {e}");
        assert_eq!(e.to_wire().code, 1000);
        // Pointers out of the buffer, or sound bytes that fail later checks:
        // refused either way, and the stream stays usable.
        for garbage in [&[0x80u8; 40][..], &[0x7F; 200], &[0xFF; 64]] {
            if let Err(e) = decode(garbage) {
                assert!(!e.is_fatal(), "{kind}: {e}");
            }
        }
    }
}

#[test]
fn invalid_ids_in_a_sound_archive_are_refused() {
    let hello = HelloMeta {
        client_name: "c".into(),
        mailbox: "X26 ABC1".into(),
        password: "p".into(),
    };
    let m = meta::encode(FrameKind::Hello, &hello).unwrap();
    let mut b = raw_frame(FrameKind::Hello.as_u8(), 0, 1, &m, &[]);
    let e = server_error(&mut b);
    assert_eq!(e.code(), "PROTO_ID_INVALID");
    assert!(
        e.to_string()
            .starts_with("request 1: mailbox is invalid: mailbox id"),
        "{e}"
    );
    assert_eq!(e.to_wire().code, 2003);

    let ok = SendOkMeta {
        message_id: "20200601122152994285_d59900".into(),
        duplicate: false,
        status: 1,
    };
    let m = meta::encode(FrameKind::SendOk, &ok).unwrap();
    let mut b = raw_frame(FrameKind::SendOk.as_u8(), 0, 1, &m, &[]);
    let e = client().decode(&mut b).unwrap_err();
    assert_eq!(e.code(), "PROTO_ID_INVALID");

    let bad_status = SendOkMeta {
        message_id: SAMPLE_ID.into(),
        duplicate: false,
        status: 9,
    };
    let m = meta::encode(FrameKind::SendOk, &bad_status).unwrap();
    let mut b = raw_frame(FrameKind::SendOk.as_u8(), 0, 1, &m, &[]);
    assert_eq!(
        client().decode(&mut b).unwrap_err().code(),
        "PROTO_FIELD_INVALID"
    );
}

#[test]
fn forged_envelopes_are_refused() {
    // Same length as "X26ABC1", so the nested archive stays sound: only the
    // id re-parse can catch it.
    let mut bytes = envelope().to_rkyv_bytes().unwrap();
    let needle = b"X26ABC1";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at..at + needle.len()].copy_from_slice(b"X26 BC1");
    let push = PushMeta {
        envelope: bytes,
        order: 1,
    };
    let m = meta::encode(FrameKind::Push, &push).unwrap();
    let mut b = raw_frame(FrameKind::Push.as_u8(), 0, 0, &m, &[]);
    let e = client().decode(&mut b).unwrap_err();
    assert_eq!(e.code(), "PROTO_ENVELOPE_INVALID");
    assert!(
        e.to_string()
            .contains("sender in the stored envelope is invalid"),
        "{e}"
    );

    let garbage = PushMeta {
        envelope: vec![1, 2, 3],
        order: 1,
    };
    let m = meta::encode(FrameKind::Push, &garbage).unwrap();
    let mut b = raw_frame(FrameKind::Push.as_u8(), 0, 0, &m, &[]);
    assert_eq!(
        client().decode(&mut b).unwrap_err().code(),
        "PROTO_ENVELOPE_INVALID"
    );
}

fn batch(n: usize) -> Request {
    Request::SendBatch(
        (0..n)
            .map(|i| BatchItem {
                header: SendHeader::simple(mailbox("X26ABC2"), workflow("WF")),
                body: Bytes::from(vec![i as u8; 3]),
            })
            .collect(),
    )
}

#[test]
fn batches_over_the_limit_are_refused_both_ways() {
    let max = test_limits().max_batch as usize;
    let mut wire = BytesMut::new();
    client().encode(1, &batch(max), &mut wire).unwrap();
    let Some((_, Request::SendBatch(items))) = server().decode(&mut wire).unwrap() else {
        panic!("not a batch");
    };
    assert_eq!(items.len(), max);
    assert_eq!(&items[2].body[..], &[2, 2, 2]);

    let e = client().encode(1, &batch(max + 1), &mut wire).unwrap_err();
    assert_eq!(e.code(), "PROTO_BATCH_TOO_LARGE");
    assert_eq!(
        e.to_string(),
        "batch has 9 messages, over the limit of 8; split it into batches of at most 8"
    );

    // Forged on the wire past the encoder.
    let header = SendHeader::simple(mailbox("X26ABC2"), workflow("WF")).to_meta();
    let items: Vec<BatchItemMeta> = (0..=max)
        .map(|_| BatchItemMeta {
            header: header.clone(),
            body_len: 1,
        })
        .collect();
    let m = meta::encode(FrameKind::SendBatch, &SendBatchMeta { items }).unwrap();
    let mut b = raw_frame(FrameKind::SendBatch.as_u8(), 0, 1, &m, &vec![0; max + 1]);
    let e = server_error(&mut b);
    assert_eq!(e.code(), "PROTO_BATCH_TOO_LARGE");
    assert_eq!(e.to_wire().code, 1006);

    let e = client().encode(1, &batch(0), &mut wire).unwrap_err();
    assert_eq!(e.code(), "PROTO_FIELD_OUT_OF_RANGE");
}

#[test]
fn batch_lengths_must_cover_the_payload() {
    let header = SendHeader::simple(mailbox("X26ABC2"), workflow("WF")).to_meta();
    let items = vec![
        BatchItemMeta {
            header: header.clone(),
            body_len: 2,
        },
        BatchItemMeta {
            header,
            body_len: u32::MAX,
        },
    ];
    let m = meta::encode(FrameKind::SendBatch, &SendBatchMeta { items }).unwrap();
    let mut b = raw_frame(FrameKind::SendBatch.as_u8(), 0, 1, &m, &[0; 5]);
    let e = server_error(&mut b);
    assert_eq!(e.code(), "PROTO_FRAME_INCONSISTENT");
    assert!(
        e.to_string()
            .contains("add up to 4294967297 bytes but the payload is 5"),
        "{e}"
    );
}

#[test]
fn field_limits_are_enforced() {
    let mut long_name = Request::Hello {
        client_name: "c".repeat(129),
        mailbox: mailbox("X26ABC1"),
        password: Password::new("p"),
    };
    let e = client()
        .encode(1, &long_name, &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "client_name is 129 bytes long; shorten it to at most 128 bytes"
    );
    assert_eq!(e.to_wire().code, 1007);

    // The decoder refuses what the encoder would.
    let m = meta::encode(
        FrameKind::Hello,
        &HelloMeta {
            client_name: "c".repeat(129),
            mailbox: "X26ABC1".into(),
            password: "p".into(),
        },
    )
    .unwrap();
    let mut b = raw_frame(FrameKind::Hello.as_u8(), 0, 1, &m, &[]);
    assert_eq!(server_error(&mut b).code(), "PROTO_FIELD_TOO_LONG");

    if let Request::Hello { client_name, .. } = &mut long_name {
        *client_name = "bad\nname".into();
    }
    let e = client()
        .encode(1, &long_name, &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(e.code(), "PROTO_FIELD_INVALID");

    let mut header = SendHeader::simple(mailbox("X26ABC2"), workflow("WF"));
    header.subject = Some("s".repeat(501));
    let send = Request::Send {
        header,
        body: Bytes::new(),
    };
    let e = client().encode(1, &send, &mut BytesMut::new()).unwrap_err();
    assert_eq!(e.code(), "PROTO_FIELD_TOO_LONG");

    let list = Request::ListInbox {
        workflow_filter: None,
        max_results: test_limits().max_inbox_page + 1,
        after: None,
    };
    let e = client().encode(1, &list, &mut BytesMut::new()).unwrap_err();
    assert_eq!(e.to_string(), "max_results is 9; use 1 to 8");
}

#[test]
fn download_end_flag_must_match_the_piece() {
    let resp = Response::DownloadData(crate::DownloadData {
        envelope: Some(envelope()),
        chunk_no: 1,
        total_len: 3,
        offset: 0,
        body: Bytes::from_static(b"abc"),
    });
    let mut wire = BytesMut::new();
    server().encode(5, &resp, &mut wire).unwrap();
    assert_eq!(&wire[6..8], &Flags::END.bits().to_be_bytes());
    wire[7] = 0; // clear END
    let e = client().decode(&mut wire).unwrap_err();
    assert_eq!(e.code(), "PROTO_FRAME_INCONSISTENT");
    assert!(
        e.to_string()
            .contains("END must be set exactly on the last piece"),
        "{e}"
    );

    let past_end = Response::DownloadData(crate::DownloadData {
        envelope: None,
        chunk_no: 1,
        total_len: 3,
        offset: 2,
        body: Bytes::from_static(b"abc"),
    });
    let e = server().encode(5, &past_end, &mut wire).unwrap_err();
    assert_eq!(e.code(), "PROTO_FRAME_INCONSISTENT");
}

/// Decodes everything decodable in `bytes`, as a server and as a client,
/// stopping at a fatal error. Never panics.
fn drain(bytes: &[u8]) {
    let mut s = server();
    let mut buf = BytesMut::from(bytes);
    for _ in 0..bytes.len() + 1 {
        match s.decode(&mut buf) {
            Ok(Some((_, req))) => {
                // Whatever decodes re-encodes.
                client().encode(1, &req, &mut BytesMut::new()).unwrap();
            }
            Ok(None) => break,
            Err(e) if e.is_fatal() => break,
            Err(_) => {}
        }
    }
    let mut c = client();
    let mut buf = BytesMut::from(bytes);
    for _ in 0..bytes.len() + 1 {
        match c.decode(&mut buf) {
            Ok(Some((id, resp))) => {
                server().encode(id, &resp, &mut BytesMut::new()).unwrap();
            }
            Ok(None) => break,
            Err(e) if e.is_fatal() => break,
            Err(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        drain(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_header_never_panic(
        kind in prop::sample::select(FrameKind::ALL.to_vec()),
        id: u64,
        meta in proptest::collection::vec(any::<u8>(), 0..300),
        payload in proptest::collection::vec(any::<u8>(), 0..50),
    ) {
        drain(&raw_frame(kind.as_u8(), 0, id, &meta, &payload));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_requests_never_panic(
        req in request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let mut wire = BytesMut::new();
        client().encode(1, &req, &mut wire).unwrap();
        for (index, mask) in flips {
            let i = index.index(wire.len());
            wire[i] ^= mask;
        }
        drain(&wire);
    }

    #[test]
    fn corrupted_responses_never_panic(
        resp in response(),
        id: u64,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let mut wire = BytesMut::new();
        server().encode(response_id(&resp, id), &resp, &mut wire).unwrap();
        for (index, mask) in flips {
            let i = index.index(wire.len());
            wire[i] ^= mask;
        }
        drain(&wire);
    }
}
