//! Pinned wire bytes. If one of these fails, the wire format changed: that
//! breaks every deployed peer, so it must be deliberate (bump
//! `PROTOCOL_VERSION` once released, update WIRE.md, then these bytes).
//! The `PUSH` case pins the envelope archive too (`spine-core`'s
//! `Envelope::to_rkyv_bytes`), which is part of the wire format.

use bytes::BytesMut;

use super::{envelope, message_id, SAMPLE_ID};
use crate::codec::{ClientCodec, ServerCodec};
use crate::request::Request;
use crate::response::Response;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Encodes to `expected` and decodes back from it.
fn pin_request(id: u64, request: Request, expected: &str) {
    let mut wire = BytesMut::new();
    ClientCodec::default()
        .encode(id, &request, &mut wire)
        .unwrap();
    assert_eq!(hex(&wire), expected, "{request:?}");
    let mut wire = BytesMut::from(&unhex(expected)[..]);
    let decoded = ServerCodec::default().decode(&mut wire).unwrap();
    assert_eq!(decoded, Some((id, request)));
}

#[test]
fn ping() {
    // len=16, version 1, kind 0x0D, flags 0, request id 1, meta length 0.
    pin_request(1, Request::Ping, "00000010010d0000000000000000000100000000");
}

#[test]
fn acknowledge() {
    pin_request(
        0x0102_0304_0506_0708,
        Request::Acknowledge {
            message_id: message_id(SAMPLE_ID),
        },
        "000000340107000001020304050607080000002432303230303630313132323135323939343238355f44\
         3539393030009b000000e4ffffff",
    );
}

#[test]
fn push() {
    let expected = "0000012001a00000000000000000000000000110504154485f544553544c616220726573756c74\
        73726573756c74732e6373766d64353a3031323361626364000000000032303230303630313132323135323939\
        343238355f4435393930300058323641424331ff58323641424332ff89000000a4ffffff010000008b000000a1\
        ffffff010000007265662d31ffffff010000008b00000094ffffff01000000746578742f637376000100000100\
        00008c00000083ffffff0000000000000000000000000100000000000000801286e5fa60060080f2ba7a5f6106\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000ffffff000100002a00000000000000";
    let push = Response::Push {
        envelope: envelope(),
        order: 42,
        body: None,
    };
    let mut wire = BytesMut::new();
    ServerCodec::default().encode(0, &push, &mut wire).unwrap();
    assert_eq!(hex(&wire), expected);
    let mut wire = BytesMut::from(&unhex(expected)[..]);
    assert_eq!(
        ClientCodec::default().decode(&mut wire).unwrap(),
        Some((0, push))
    );
}
