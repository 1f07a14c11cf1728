"""Chunked upload and download (SPEC "Outbox workflow", chunk endpoints)."""

import gzip
import os

import pytest

from mesh_harness import MB1, MB2, MB3, V1, V2, WF, WF2


def _payload(n: int) -> bytes:
    # Part text, part random, so compression has something to do and bugs in
    # chunk ordering show up as content differences.
    return (b"".join(b"line %05d of a chunked message\n" % i for i in range(n // 64 + 1)) + os.urandom(n))[:n]


def test_chunked_send_and_receive(server):
    data = _payload(2500)
    c1 = server.client(MB1, max_chunk_size=100)
    mid = c1.send_message(MB2, data, workflow_id=WF, subject="chunky", content_type="text/csv")
    c2 = server.client(MB2)
    assert mid in c2.list_messages()
    msg = c2.retrieve_message(mid)
    try:
        assert msg.mex_header("total-chunks") == "25"
        assert msg.mex_header("chunk-range") == "1:25"
        assert msg.subject == "chunky"
        assert msg.content_type == "text/csv"  # kept in Mex-Content-Type for chunked messages
        assert msg.read() == data
    finally:
        msg.close()


def test_chunk_download_statuses_and_ranges(server):
    data = _payload(350)  # 4 chunks of <= 100 bytes
    mid = server.client(MB1, max_chunk_size=100).send_message(MB2, data, workflow_id=WF)
    got = b""
    for n in range(1, 5):
        path = f"/messageexchange/{MB2}/inbox/{mid}" + (f"/{n}" if n > 1 else "")
        r = server.request("GET", path, mailbox=MB2, headers={"Accept-Encoding": "identity"})
        # SPEC: 206 while more chunks follow, 200 for the last one.
        assert r.status_code == (200 if n == 4 else 206), (n, r.status_code, r.text)
        assert r.headers["Mex-Chunk-Range"] == f"{n}:4"
        assert r.headers.get("Mex-Total-Chunks") == "4"
        got += r.content
    assert got == data
    # Chunk 1 is also addressable by number.
    r = server.request(
        "GET", f"/messageexchange/{MB2}/inbox/{mid}/1", mailbox=MB2, headers={"Accept-Encoding": "identity"}
    )
    assert r.status_code == 206
    assert r.content == data[:100]


def test_chunk_out_of_range_is_404(server):
    mid = server.client(MB1, max_chunk_size=100).send_message(MB2, _payload(250), workflow_id=WF)
    r = server.request("GET", f"/messageexchange/{MB2}/inbox/{mid}/4", mailbox=MB2)
    assert r.status_code == 404


def test_chunked_compressed_round_trip(server):
    """Compressed chunks go up with Transfer-Encoding: chunked (no length)."""
    data = _payload(3000)
    c1 = server.client(MB1, max_chunk_size=1000, transparent_compress=True)
    mid = c1.send_message(MB2, data, workflow_id=WF)
    msg = server.client(MB2).retrieve_message(mid)
    try:
        assert msg.mex_header("total-chunks") == "3"
        assert msg.read() == data
    finally:
        msg.close()


def test_message_not_delivered_until_last_chunk(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    r = c1.send_chunk(MB2, b"part one ", chunk_num=1, total_chunks=3, workflow_id=WF)
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]
    assert mid not in c2.list_messages()
    # A message still uploading is not downloadable: 410 Gone (SPEC's code
    # for a message that cannot be downloaded; the sandbox's answer).
    rr = server.request("GET", f"/messageexchange/{MB2}/inbox/{mid}", mailbox=MB2)
    assert rr.status_code == 410, rr.status_code
    r = c1.send_chunk(MB2, b"part two ", chunk_num=2, total_chunks=3, message_id=mid)
    assert r.status_code in (200, 202)
    assert mid not in c2.list_messages()
    r = c1.send_chunk(MB2, b"part three", chunk_num=3, total_chunks=3, message_id=mid)
    assert r.status_code in (200, 202)
    assert mid in c2.list_messages()
    with c2.retrieve_message(mid) as msg:
        assert msg.read() == b"part one part two part three"


def test_chunk_upload_after_completion_is_423(server):
    c1 = server.client(MB1)
    r = c1.send_chunk(MB2, b"a", chunk_num=1, total_chunks=2, workflow_id=WF)
    mid = r.json()["message_id"]
    assert c1.send_chunk(MB2, b"b", chunk_num=2, total_chunks=2, message_id=mid).status_code in (200, 202)
    r = server.request(
        "POST",
        f"/messageexchange/{MB1}/outbox/{mid}/2",
        mailbox=MB1,
        headers={"Mex-Chunk-Range": "2:2", "Content-Type": "application/octet-stream"},
        data=b"again",
    )
    assert r.status_code == 423, (r.status_code, r.text)


def test_bad_chunk_range_on_first_request_is_417(server):
    for bad in ("2:3", "abc", "1:0", "0:2", "3:2", "1-2"):
        r = server.send_raw(MB1, MB2, b"x", headers={"Mex-Chunk-Range": bad})
        assert r.status_code == 417, (bad, r.status_code, r.text)
        body = r.json()
        assert "detail" in body or "errorDescription" in body, body


def test_bad_chunk_range_on_chunk_request_is_417(server):
    c1 = server.client(MB1)
    mid = c1.send_chunk(MB2, b"a", chunk_num=1, total_chunks=3, workflow_id=WF).json()["message_id"]
    path = f"/messageexchange/{MB1}/outbox/{mid}/2"
    for bad in (None, "3:3", "2:x"):  # missing, not the URL's number, not numeric
        hdrs = {"Content-Type": "application/octet-stream"}
        if bad:
            hdrs["Mex-Chunk-Range"] = bad
        r = server.request("POST", path, mailbox=MB1, headers=hdrs, data=b"b")
        assert r.status_code == 417, (bad, r.status_code, r.text)


def test_chunk_for_unknown_message_is_404(server):
    r = server.request(
        "POST",
        f"/messageexchange/{MB1}/outbox/20200101000000000000_ABCDEF/2",
        mailbox=MB1,
        headers={"Mex-Chunk-Range": "2:2", "Content-Type": "application/octet-stream"},
        data=b"b",
    )
    assert r.status_code == 404


def test_chunk_from_another_mailbox_is_403(server):
    mid = server.client(MB1).send_chunk(MB2, b"a", chunk_num=1, total_chunks=2, workflow_id=WF2).json()["message_id"]
    r = server.request(
        "POST",
        f"/messageexchange/{MB3}/outbox/{mid}/2",
        mailbox=MB3,
        headers={"Mex-Chunk-Range": "2:2", "Content-Type": "application/octet-stream"},
        data=b"b",
    )
    assert r.status_code == 403, r.status_code


def test_chunk_responses_v1_and_v2(server):
    mid = server.client(MB1).send_chunk(MB2, b"a", chunk_num=1, total_chunks=3, workflow_id=WF).json()["message_id"]
    r = server.request(
        "POST",
        f"/messageexchange/{MB1}/outbox/{mid}/2",
        mailbox=MB1,
        accept=V1,
        headers={"Mex-Chunk-Range": "2:3", "Content-Type": "application/octet-stream"},
        data=b"b",
    )
    assert r.status_code == 202
    assert r.json() == {"messageID": mid, "blockID": 2}
    r = server.request(
        "POST",
        f"/messageexchange/{MB1}/outbox/{mid}/3",
        mailbox=MB1,
        accept=V2,
        headers={"Mex-Chunk-Range": "3:3", "Content-Type": "application/octet-stream"},
        data=b"c",
    )
    assert r.status_code == 202


def test_gzip_chunks_uploaded_raw_download_decompressed(server):
    """Each chunk gzipped on its own (SPEC); a client that does not accept
    gzip gets the original bytes."""
    parts = [b"first chunk;", b"second chunk;", b"third"]
    hdrs = {"Content-Encoding": "gzip", "Mex-Chunk-Range": "1:3"}
    r = server.send_raw(MB1, MB2, gzip.compress(parts[0]), headers=hdrs)
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]
    for n in (2, 3):
        r = server.request(
            "POST",
            f"/messageexchange/{MB1}/outbox/{mid}/{n}",
            mailbox=MB1,
            headers={
                "Content-Encoding": "gzip",
                "Mex-Chunk-Range": f"{n}:3",
                "Content-Type": "application/octet-stream",
            },
            data=gzip.compress(parts[n - 1]),
        )
        assert r.status_code == 202, r.text
    got = b""
    for n in (1, 2, 3):
        path = f"/messageexchange/{MB2}/inbox/{mid}" + (f"/{n}" if n > 1 else "")
        rr = server.request("GET", path, mailbox=MB2, headers={"Accept-Encoding": "identity"}, stream=True)
        assert rr.status_code in (200, 206)
        assert "gzip" not in rr.headers.get("Content-Encoding", "")
        got += rr.raw.read()
    assert got == b"".join(parts)
    # And mesh-client (Accept-Encoding: gzip) reassembles it too.
    with server.client(MB2).retrieve_message(mid) as msg:
        assert msg.read() == b"".join(parts)


@pytest.mark.parametrize("size", [100, 101, 199, 200])
def test_chunk_boundaries(server, size):
    data = _payload(size)
    mid = server.client(MB1, max_chunk_size=100).send_message(MB2, data, workflow_id=WF)
    msg = server.client(MB2).retrieve_message(mid)
    try:
        assert msg.mex_header("total-chunks", "1") == str(-(-size // 100))
        assert msg.read() == data
    finally:
        msg.close()


def test_chunk_content_encoding_change(server):
    """mesh-sandbox refuses a chunk whose Content-Encoding differs from chunk
    1 (417); a server that decodes each chunk on arrival may accept it. Either
    way the message must never come out garbled."""
    r = server.send_raw(MB1, MB2, b"plain;", headers={"Mex-Chunk-Range": "1:2"})
    mid = r.json()["message_id"]
    r = server.request(
        "POST",
        f"/messageexchange/{MB1}/outbox/{mid}/2",
        mailbox=MB1,
        headers={"Mex-Chunk-Range": "2:2", "Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
        data=gzip.compress(b"zipped"),
    )
    assert r.status_code in (202, 417), r.status_code
    if r.status_code == 202:
        with server.client(MB2).retrieve_message(mid) as msg:
            assert msg.read() == b"plain;zipped"
