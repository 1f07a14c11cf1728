"""Content-Encoding on upload and download (notes 1.4, 1.6, 3.2)."""

import gzip
import zlib

from mesh_harness import MB1, MB2, V2, WF

TEXT = b"compress me please; " * 200


def test_transparent_compress_round_trip(server):
    c1 = server.client(MB1, transparent_compress=True)
    mid = c1.send_message(MB2, TEXT, workflow_id=WF, subject="gz")
    msg = server.client(MB2).retrieve_message(mid)
    try:
        assert msg.read() == TEXT
        assert msg.subject == "gz"
    finally:
        msg.close()


def test_compress_argument_on_send_message(server):
    c1 = server.client(MB1)
    mid = c1.send_message(MB2, TEXT, workflow_id=WF, compress=True)
    with server.client(MB2).retrieve_message(mid) as msg:
        assert msg.read() == TEXT


def test_compressed_upload_downloads_plain_without_accept_encoding(server):
    r = server.send_raw(MB1, MB2, gzip.compress(TEXT), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]
    rr = server.request(
        "GET", f"/messageexchange/{MB2}/inbox/{mid}", mailbox=MB2, headers={"Accept-Encoding": "identity"}, stream=True
    )
    assert rr.status_code == 200
    assert "gzip" not in rr.headers.get("Content-Encoding", "")
    assert rr.raw.read() == TEXT


def test_accept_encoding_gzip_download_is_gzip(server):
    """v2 with Accept-Encoding: gzip: the body is gzip, Content-Encoding says
    so, and Mex-Content-Compressed is Y (mesh-client's test_transparent_compression)."""
    mid = server.client(MB1).send_message(MB2, TEXT, workflow_id=WF)
    rr = server.request(
        "GET",
        f"/messageexchange/{MB2}/inbox/{mid}",
        mailbox=MB2,
        accept=V2,
        headers={"Accept-Encoding": "gzip"},
        stream=True,
    )
    assert rr.status_code == 200
    assert rr.headers.get("Content-Encoding") == "gzip"
    assert rr.headers.get("Mex-Content-Compressed") == "Y"
    raw = rr.raw.read(decode_content=False)
    assert gzip.decompress(raw) == TEXT


def test_gzip_upload_served_gzip_to_gzip_clients(server):
    r = server.send_raw(MB1, MB2, gzip.compress(TEXT), headers={"Content-Encoding": "gzip"})
    mid = r.json()["message_id"]
    rr = server.request(
        "GET", f"/messageexchange/{MB2}/inbox/{mid}", mailbox=MB2, headers={"Accept-Encoding": "gzip"}, stream=True
    )
    assert rr.status_code == 200
    assert rr.headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(rr.raw.read(decode_content=False)) == TEXT


def test_unsupported_content_encoding_is_4xx_with_json(server):
    r = server.send_raw(MB1, MB2, zlib.compress(TEXT), headers={"Content-Encoding": "deflate"})
    assert 400 <= r.status_code < 500, r.status_code
    body = r.json()  # mesh-client always parses the first send response
    assert "detail" in body or "errorDescription" in body, body
    assert server.client(MB2).list_messages() == []


def test_invalid_gzip_body_does_not_crash_the_server(server):
    """A body labelled gzip that does not decode must not crash the server
    (the sandbox stores it as sent: 202; refusing it with a 4xx is fine too)."""
    r = server.send_raw(MB1, MB2, b"this is not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code < 500, r.status_code
    assert server.client(MB1).ping()
