//! Criterion benchmarks of the native protocol codec (`spine-protocol`).
//!
//! - `codec/encode_send_1k`: a client encoding one `SEND` of a 1 KiB body
//!   (20-byte header, rkyv-archived meta, payload) into a buffer.
//! - `codec/decode_send_1k`: the server splitting that frame off a receive
//!   buffer and decoding it (meta validated with bytecheck, every id
//!   re-parsed, the payload a slice of the buffer).
//! - `codec/encode_send_ok` / `codec/decode_send_ok`: the answer, both ways.
//!
//! Small sample counts keep `cargo bench` quick; `cargo test --benches`
//! runs each once so CI keeps them working.

// A benchmark whose setup fails must stop loudly; there is no caller to
// return an error to.
#![allow(clippy::expect_used)]

mod support;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spine_core::ids::{MailboxId, MessageId, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::time::Timestamp;
use spine_protocol::{ClientCodec, Limits, Request, Response, SendHeader, SendOk, ServerCodec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn send_request() -> Request {
    Request::Send {
        header: SendHeader::simple(
            MailboxId::parse("X26ABC2").expect("mailbox"),
            WorkflowId::parse("SPINE_LOAD").expect("workflow"),
        ),
        body: Bytes::from(vec![0x5a; 1024]),
    }
}

fn send_ok() -> Response {
    Response::SendOk(SendOk {
        message_id: MessageId::from_parts(Timestamp::from_unix_seconds(1_780_000_000), 0x00ab_cdef)
            .expect("message id"),
        duplicate: false,
        status: MessageStatus::Accepted,
    })
}

fn codec(c: &mut Criterion) {
    let client = ClientCodec::new(Limits::default()).expect("client codec");
    let server = ServerCodec::new(Limits::default()).expect("server codec");
    let request = send_request();
    let mut wire = BytesMut::new();
    client.encode(7, &request, &mut wire).expect("encode");
    let frame = wire.freeze();
    {
        // The frame decodes back to what was sent.
        let mut buf = BytesMut::from(&frame[..]);
        let mut s = server.clone();
        let (id, decoded) = s.decode(&mut buf).expect("decode").expect("complete");
        assert_eq!(id, 7);
        assert!(matches!(decoded, Request::Send { ref body, .. } if body.len() == 1024));
    }
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("encode_send_1k", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            client
                .encode(black_box(7), black_box(&request), &mut buf)
                .expect("encode");
            buf.len()
        })
    });
    group.bench_function("decode_send_1k", |b| {
        let mut s = server.clone();
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&frame[..]));
            s.decode(&mut buf).expect("decode").map(|(id, _)| id)
        })
    });
    let ok = send_ok();
    let mut answer = BytesMut::new();
    server.encode(7, &ok, &mut answer).expect("encode answer");
    let answer = answer.freeze();
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_send_ok", |b| {
        let mut buf = BytesMut::with_capacity(512);
        b.iter(|| {
            buf.clear();
            server.encode(7, black_box(&ok), &mut buf).expect("encode");
            buf.len()
        })
    });
    group.bench_function("decode_send_ok", |b| {
        let mut cl = client.clone();
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&answer[..]));
            cl.decode(&mut buf).expect("decode").map(|(id, _)| id)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config(false);
    targets = codec
}
criterion_main!(benches);
