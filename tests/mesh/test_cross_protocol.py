"""One node, two protocols: what goes in over MESH comes out over the
native protocol (`spine get`, `spine inbox`, ...) and the other way round.
Spine only."""

import gzip
import os

import pytest

import mesh_harness as h
from mesh_harness import MB1, MB2, WF

pytestmark = pytest.mark.spine_only


def test_mesh_send_native_inbox_and_get(server, tmp_path):
    data = os.urandom(700) + b"tail"
    mid = server.client(MB1).send_message(
        MB2,
        data,
        workflow_id=WF,
        subject="cross",
        local_id="x-1",
        filename="blob.bin",
        content_type="application/pdf",
        checksum="md5:abc",
        partner_id="p-1",
        encrypted=True,
    )
    _, inbox = server.cli("inbox", mailbox=MB2)
    assert [m["message_id"] for m in inbox["messages"]] == [mid]
    entry = inbox["messages"][0]
    assert entry["sender"] == MB1
    assert entry["workflow_id"] == WF
    assert entry["message_type"] == "DATA"

    out = tmp_path / "got.bin"
    server.cli("get", "--out", str(out), mid, mailbox=MB2, json_out=False)
    assert out.read_bytes() == data

    _, got = server.cli("get", "--out", str(tmp_path / "again.bin"), mid, mailbox=MB2)
    env = got["envelope"]
    assert env["message_id"] == mid
    assert env["sender"] == MB1
    assert env["recipient"] == MB2
    assert env["subject"] == "cross"
    assert env["local_id"] == "x-1"
    assert env["file_name"] == "blob.bin"
    assert env["content_type"] == "application/pdf"
    assert env["checksum"] == "md5:abc"
    assert env["partner_id"] == "p-1"
    assert env["encrypted"] is True
    assert env["compressed"] is False


def test_native_send_mesh_receive(server, tmp_path):
    _, sent = server.cli(
        "send", "--to", MB2, "--workflow", WF, "--data", "native hello",
        "--subject", "from native", "--local-id", "n-1", "--file-name", "n.txt", "--content-type", "text/plain",
        mailbox=MB1,
    )  # fmt: skip
    mid = sent["message_id"]
    c2 = server.client(MB2)
    assert c2.list_messages() == [mid]
    with c2.retrieve_message(mid) as msg:
        assert msg.read() == b"native hello"
        assert msg.sender == MB1
        assert msg.recipient == MB2
        assert msg.workflow_id == WF
        assert msg.subject == "from native"
        assert msg.local_id == "n-1"
        assert msg.filename == "n.txt"
        assert msg.content_type == "text/plain"
    assert c2.list_messages() == []


def test_native_chunked_send_mesh_receive(server, tmp_path):
    data = os.urandom(1000)
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    _, sent = server.cli("send", "--to", MB2, "--workflow", WF, "--file", str(f), "--chunk-size", "100", mailbox=MB1)
    assert sent["chunks"] == 10
    msg = server.client(MB2).retrieve_message(sent["message_id"])
    try:
        assert msg.mex_header("total-chunks") == "10"
        assert msg.read() == data
    finally:
        msg.close()


def test_mesh_chunked_compressed_native_get_is_original_bytes(server, tmp_path):
    """Choice: Content-Encoding is transport; the native side sees the
    message as the sender meant it (the decompressed, reassembled bytes)."""
    data = b"".join(b"row %06d,abc,def\n" % i for i in range(400))
    mid = server.client(MB1, max_chunk_size=2000, transparent_compress=True).send_message(MB2, data, workflow_id=WF)
    out = tmp_path / "got.bin"
    server.cli("get", "--out", str(out), mid, mailbox=MB2, json_out=False)
    assert out.read_bytes() == data


def test_raw_gzip_upload_native_get_is_original_bytes(server, tmp_path):
    r = server.send_raw(MB1, MB2, gzip.compress(b"zipped text"), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text
    out = tmp_path / "got.bin"
    server.cli("get", "--out", str(out), r.json()["message_id"], mailbox=MB2, json_out=False)
    assert out.read_bytes() == b"zipped text"


def test_ack_over_mesh_seen_natively_and_back(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    a = c1.send_message(MB2, b"a", workflow_id=WF)
    b = c1.send_message(MB2, b"b", workflow_id=WF)
    c2.acknowledge_message(a)
    _, inbox = server.cli("inbox", mailbox=MB2)
    assert [m["message_id"] for m in inbox["messages"]] == [b]
    server.cli("ack", b, mailbox=MB2)
    assert c2.list_messages() == []


def test_native_track_of_mesh_message_and_mesh_track_of_native(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    mid = c1.send_message(MB2, b"t", workflow_id=WF)
    _, t = server.cli("track", mid, mailbox=MB1)
    assert t["status"] == "accepted"
    c2.acknowledge_message(mid)
    _, t = server.cli("track", mid, mailbox=MB1)
    assert t["status"] == "acknowledged"

    _, sent = server.cli("send", "--to", MB2, "--workflow", WF, "--data", "n", mailbox=MB1)
    assert c1.track_message(sent["message_id"])["status"] == "accepted"


def test_native_and_mesh_share_one_inbox_order(server):
    c1 = server.client(MB1)
    ids = []
    for i in range(6):
        if i % 2:
            ids.append(c1.send_message(MB2, b"m", workflow_id=WF))
        else:
            ids.append(server.cli("send", "--to", MB2, "--workflow", WF, "--data", "n", mailbox=MB1)[1]["message_id"])
    assert server.client(MB2).list_messages() == ids
    _, inbox = server.cli("inbox", mailbox=MB2)
    assert [m["message_id"] for m in inbox["messages"]] == ids


def test_native_over_tls_alongside_mesh_https(tls_server, tmp_path):
    mid = tls_server.client(MB1).send_message(MB2, b"both tls", workflow_id=WF)
    out = tmp_path / "o.bin"
    tls_server.cli("get", "--out", str(out), mid, mailbox=MB2, json_out=False)
    assert out.read_bytes() == b"both tls"


def test_mesh_workflow_refusal_matches_native(server):
    """The same directory rules on both protocols: X26ABC3 may not send TEST_WORKFLOW."""
    cp, _ = server.cli("send", "--to", MB2, "--workflow", WF, "--data", "x", mailbox=h.MB3, check=False)
    assert cp.returncode != 0
    r = server.send_raw(h.MB3, MB2, b"x", workflow=WF)
    assert r.status_code == 417
