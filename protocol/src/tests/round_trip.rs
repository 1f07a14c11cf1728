//! Every request and response survives encode → decode unchanged, however
//! the bytes are split.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::strategies::{request, response, response_id, test_limits};
use crate::codec::{ClientCodec, FrameCodec, ServerCodec};
use crate::frame::FrameKind;
use crate::request::Request;
use crate::response::Response;

fn codecs() -> (ClientCodec, ServerCodec) {
    (
        ClientCodec::new(test_limits()).unwrap(),
        ServerCodec::new(test_limits()).unwrap(),
    )
}

/// Feeds `bytes` to `decode` in pieces of `step` bytes, collecting every
/// decoded item.
fn feed<T>(
    bytes: &[u8],
    step: usize,
    mut decode: impl FnMut(&mut BytesMut) -> Option<T>,
) -> Vec<T> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(item) = decode(&mut buf) {
            out.push(item);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn requests_round_trip(req in request(), id in 1u64..=u64::MAX) {
        let (client, mut server) = codecs();
        let mut wire = BytesMut::new();
        client.encode(id, &req, &mut wire).unwrap();

        // The vectored form is the same bytes.
        let parts = client.encode_parts(id, &req).unwrap();
        let joined: Vec<u8> = parts.pieces().flat_map(|p| p.iter().copied()).collect();
        prop_assert_eq!(&joined[..], &wire[..]);
        prop_assert_eq!(parts.len(), wire.len());
        prop_assert_eq!(wire[5], req.kind().as_u8());

        // A raw frame relayed through FrameCodec keeps its bytes.
        let mut copy = wire.clone();
        let frame = FrameCodec::default().decode(&mut copy).unwrap().unwrap();
        let mut relayed = BytesMut::new();
        FrameCodec::default().encode(&frame, &mut relayed).unwrap();
        prop_assert_eq!(&relayed[..], &wire[..]);

        let decoded = server.decode(&mut wire).unwrap();
        prop_assert_eq!(decoded, Some((id, req)));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn responses_round_trip(resp in response(), id: u64) {
        let (mut client, server) = codecs();
        let id = response_id(&resp, id);
        let mut wire = BytesMut::new();
        server.encode(id, &resp, &mut wire).unwrap();
        let parts = server.encode_parts(id, &resp).unwrap();
        let joined: Vec<u8> = parts.pieces().flat_map(|p| p.iter().copied()).collect();
        prop_assert_eq!(&joined[..], &wire[..]);
        prop_assert_eq!(wire[5], resp.kind().as_u8());

        let decoded = client.decode(&mut wire).unwrap();
        prop_assert_eq!(decoded, Some((id, resp)));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn any_split_decodes_identically(
        reqs in proptest::collection::vec(request(), 1..4),
        step in 1usize..64,
    ) {
        let (client, mut server) = codecs();
        let mut wire = BytesMut::new();
        for (i, r) in reqs.iter().enumerate() {
            client.encode(i as u64 + 1, r, &mut wire).unwrap();
        }
        let decoded = feed(&wire, step, |buf| server.decode(buf).unwrap());
        let expected: Vec<(u64, Request)> =
            reqs.into_iter().enumerate().map(|(i, r)| (i as u64 + 1, r)).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn responses_split_byte_by_byte(resp in response(), id: u64) {
        let (mut client, server) = codecs();
        let id = response_id(&resp, id);
        let mut wire = BytesMut::new();
        server.encode(id, &resp, &mut wire).unwrap();
        let decoded = feed(&wire, 1, |buf| client.decode(buf).unwrap());
        prop_assert_eq!(decoded, vec![(id, resp)]);
    }
}

#[test]
fn every_kind_is_covered_by_the_strategies() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    let (req, resp) = (request(), response());
    for _ in 0..2_000 {
        seen.insert(req.new_tree(&mut runner).unwrap().current().kind());
        seen.insert(resp.new_tree(&mut runner).unwrap().current().kind());
    }
    let missing: Vec<FrameKind> = FrameKind::ALL
        .into_iter()
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

#[test]
fn two_frames_in_one_buffer_decode_in_order() {
    let (client, mut server) = codecs();
    let mut wire = BytesMut::new();
    client.encode(7, &Request::Ping, &mut wire).unwrap();
    client
        .encode(
            8,
            &Request::Acknowledge {
                message_id: super::message_id(super::SAMPLE_ID),
            },
            &mut wire,
        )
        .unwrap();
    assert_eq!(server.decode(&mut wire).unwrap(), Some((7, Request::Ping)));
    assert!(matches!(
        server.decode(&mut wire).unwrap(),
        Some((8, Request::Acknowledge { .. }))
    ));
    assert_eq!(server.decode(&mut wire).unwrap(), None);
    assert!(wire.is_empty());
}

#[test]
fn payloads_are_not_copied() {
    let (client, mut server) = codecs();
    let body = bytes::Bytes::from(vec![7u8; 4096]);
    let req = Request::Send {
        header: crate::SendHeader::simple(super::mailbox("X26ABC2"), super::workflow("WF")),
        body: body.clone(),
    };
    let parts = client.encode_parts(1, &req).unwrap();
    // The encoder hands the caller's bytes back as a separate piece.
    assert_eq!(parts.payload.len(), 1);
    assert_eq!(parts.payload[0].as_ptr(), body.as_ptr());

    let mut wire = BytesMut::new();
    parts.write_to(&mut wire);
    let start = wire.as_ptr() as usize;
    let end = start + wire.len();
    let Some((_, Request::Send { body: decoded, .. })) = server.decode(&mut wire).unwrap() else {
        panic!("not a send");
    };
    // The decoded body points into the receive buffer.
    let at = decoded.as_ptr() as usize;
    assert!(at >= start && at + decoded.len() <= end);
    assert_eq!(decoded, body);
}

#[test]
fn pushes_and_errors_use_id_zero() {
    let (mut client, server) = codecs();
    let mut wire = BytesMut::new();
    let push = Response::Push {
        envelope: super::envelope(),
        order: 42,
        body: None,
    };
    server.encode(0, &push, &mut wire).unwrap();
    let error = Response::Error(crate::ProtocolError::FrameTooShort { len: 3, min: 16 }.to_wire());
    server.encode(0, &error, &mut wire).unwrap();
    let report = Response::Push {
        envelope: super::report_envelope(),
        order: 43,
        body: Some(Bytes::from_static(b"inline body")),
    };
    server.encode(0, &report, &mut wire).unwrap();
    assert_eq!(client.decode(&mut wire).unwrap(), Some((0, push.clone())));
    assert_eq!(client.decode(&mut wire).unwrap(), Some((0, error)));
    assert_eq!(client.decode(&mut wire).unwrap(), Some((0, report)));
    // A push must not carry a request's id.
    let e = server.encode(5, &push, &mut wire).unwrap_err();
    assert_eq!(spine_core::ErrorCode::code(&e), "PROTO_REQUEST_ID_INVALID");
}
