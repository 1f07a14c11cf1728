//! Streamed downloads: splitting and reassembly, through the codec.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use spine_core::ErrorCode;

use super::envelope;
use crate::codec::{ClientCodec, ServerCodec};
use crate::download::{split_download, DownloadAssembler, DownloadData};
use crate::response::Response;

fn pieces(body: &Bytes, piece: usize) -> Vec<DownloadData> {
    split_download(envelope(), 1, body.clone(), piece)
        .map(|r| match r {
            Response::DownloadData(d) => d,
            other => panic!("{other:?}"),
        })
        .collect()
}

proptest! {
    #[test]
    fn split_then_assemble_through_the_codec(
        body in proptest::collection::vec(any::<u8>(), 0..2_000),
        piece in 1usize..700,
    ) {
        let body = Bytes::from(body);
        let server = ServerCodec::default();
        let mut client = ClientCodec::default();
        let mut wire = BytesMut::new();
        let responses: Vec<Response> = split_download(envelope(), 1, body.clone(), piece).collect();
        prop_assert_eq!(responses.len(), body.len().div_ceil(piece).max(1));
        for r in &responses {
            server.encode(7, r, &mut wire).unwrap();
        }
        let mut assembler = DownloadAssembler::new(body.len() as u64);
        let mut done = None;
        while let Some((id, r)) = client.decode(&mut wire).unwrap() {
            prop_assert_eq!(id, 7);
            let Response::DownloadData(d) = r else { panic!("not data") };
            prop_assert!(done.is_none(), "a piece after the end");
            done = assembler.push(d).unwrap();
        }
        let chunk = done.expect("no END piece");
        prop_assert_eq!(chunk.body, body);
        prop_assert_eq!(chunk.envelope, envelope());
        prop_assert_eq!(chunk.chunk_no, 1);
    }
}

#[test]
fn single_piece_is_not_copied() {
    let body = Bytes::from(vec![9u8; 100]);
    let mut ps = pieces(&body, 1_000);
    assert_eq!(ps.len(), 1);
    assert!(ps[0].is_end());
    let chunk = DownloadAssembler::new(100)
        .push(ps.remove(0))
        .unwrap()
        .unwrap();
    assert_eq!(chunk.body.as_ptr(), body.as_ptr());
}

#[test]
fn out_of_sequence_pieces_are_refused() {
    let body = Bytes::from(vec![1u8; 10]);
    let ps = pieces(&body, 4);
    assert_eq!(ps.len(), 3);

    let mut a = DownloadAssembler::new(10);
    let e = a.push(ps[1].clone()).unwrap_err();
    assert_eq!(e.code(), "PROTO_DOWNLOAD_SEQUENCE");

    let mut a = DownloadAssembler::new(10);
    assert!(a.push(ps[0].clone()).unwrap().is_none());
    let e = a.push(ps[2].clone()).unwrap_err();
    assert!(
        e.to_string().contains(
            "expected chunk 1 of 10 bytes at offset 4, got chunk 1 of 10 bytes at offset 8"
        ),
        "{e}"
    );

    let mut a = DownloadAssembler::new(9);
    let e = a.push(ps[0].clone()).unwrap_err();
    assert!(
        e.to_string().contains("over this client's limit of 9"),
        "{e}"
    );

    let mut a = DownloadAssembler::new(10);
    for p in &ps[..2] {
        assert!(a.push(p.clone()).unwrap().is_none());
    }
    assert!(a.push(ps[2].clone()).unwrap().is_some());
    assert!(a.push(ps[2].clone()).is_err());
}

#[test]
fn empty_chunks_are_one_end_piece() {
    let ps = pieces(&Bytes::new(), 4);
    assert_eq!(ps.len(), 1);
    assert!(ps[0].is_end());
    assert!(ps[0].envelope.is_some());
    let chunk = DownloadAssembler::new(0)
        .push(ps[0].clone())
        .unwrap()
        .unwrap();
    assert!(chunk.body.is_empty());
}
