//! Service frames: the rules beyond round trips (faults carry no body,
//! fault codes are stable-code shaped, calls are pushes, fields bounded).

use bytes::Bytes;
use spine_core::ErrorCode;

use super::raw_frame;
use super::strategies::test_limits;
use crate::codec::{ClientCodec, ServerCodec};
use crate::frame::FrameKind;
use crate::meta;
use crate::request::Request;
use crate::response::Response;
use crate::service::{ProviderReplyMeta, ServiceCall, ServiceFault, ServiceFaultMeta};

fn fault(code: &str) -> ServiceFault {
    ServiceFault {
        code: code.into(),
        message: "no".into(),
    }
}

#[test]
fn a_fault_with_a_body_is_refused() {
    let m = ProviderReplyMeta {
        correlation: 1,
        fault: Some(ServiceFaultMeta {
            code: "X".into(),
            message: String::new(),
        }),
    };
    let m = meta::encode(FrameKind::ProviderReply, &m).unwrap();
    let mut b = raw_frame(FrameKind::ProviderReply.as_u8(), 0, 5, &m, b"body");
    let e = ServerCodec::new(test_limits())
        .unwrap()
        .decode(&mut b)
        .unwrap_err();
    assert_eq!(e.code(), "PROTO_FRAME_INCONSISTENT", "{e}");
}

#[test]
fn fault_codes_and_fields_are_checked_by_the_encoder() {
    let limits = test_limits();
    for bad in ["", "lower", "WITH SPACE", &"A".repeat(65)] {
        let r = Request::ProviderReply {
            correlation: 1,
            result: Err(fault(bad)),
        };
        assert!(r.to_frame(1, &limits).is_err(), "{bad:?}");
    }
    let long = Request::ServiceRequest {
        service: "x".repeat(33),
        interaction: "get".into(),
        asid: None,
        message_id: None,
        body: Bytes::new(),
    };
    assert!(long.to_frame(1, &limits).is_err());
    let control = Request::ServiceRequest {
        service: "pds".into(),
        interaction: "g\net".into(),
        asid: None,
        message_id: None,
        body: Bytes::new(),
    };
    assert!(control.to_frame(1, &limits).is_err());
    assert!(ServiceFault::new("bad code!", &"é".repeat(2000))
        .validate()
        .is_ok());
}

#[test]
fn a_service_call_is_a_push() {
    let call = Response::ServiceCall(ServiceCall {
        correlation: 9,
        service: "ers".into(),
        interaction: "urn:x/Y".into(),
        operation: "referral".into(),
        asid: "200000000101".into(),
        ods: "X26".into(),
        message_id: None,
        body: Bytes::from_static(b"{}"),
    });
    let limits = test_limits();
    let frame = call.to_frame(0, &limits).unwrap();
    let mut wire = bytes::BytesMut::new();
    frame.write_to(&mut wire);
    let mut client = ClientCodec::new(limits).unwrap();
    assert_eq!(client.decode(&mut wire).unwrap(), Some((0, call.clone())));
    assert!(
        call.to_frame(3, &limits).is_err(),
        "a call with a request id"
    );
}
