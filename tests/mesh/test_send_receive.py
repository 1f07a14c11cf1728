"""Send and receive through mesh-client: payloads, metadata, acknowledge,
HEAD, and who may read what."""

import os

import pytest
import requests

import mesh_harness as h
from mesh_harness import MB1, MB2, MB3, V2, WF, WF2


def test_send_and_receive_all_metadata_round_trips(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    data = b'{"hello": "world"}'
    mid = c1.send_message(
        MB2,
        data,
        workflow_id=WF,
        subject="A subject: with punctuation!",
        local_id="local-123",
        filename="report.json",
        checksum="md5:0123456789abcdef",
        partner_id="sub-42|tag",
        content_type="application/json",
        encrypted=True,
        compressed=True,
    )
    assert mid

    assert mid in c2.list_messages()
    msg = c2.retrieve_message(mid)
    try:
        assert msg.read() == data
        assert msg.id() == mid
        assert msg.message_id == mid
        assert msg.sender == MB1
        assert msg.recipient == MB2
        assert msg.message_type == "DATA"
        assert msg.workflow_id == WF
        assert msg.subject == "A subject: with punctuation!"
        assert msg.local_id == "local-123"
        assert msg.filename == "report.json"
        assert msg.checksum == "md5:0123456789abcdef"
        assert msg.partner_id == "sub-42|tag"
        assert msg.content_type == "application/json"
        assert msg.encrypted is True
        assert msg.compressed is True
        # Delivery status headers of a DATA message (SPEC example values).
        assert msg.mex_header("statuscode") == "00"
        assert msg.mex_header("statussuccess") == "SUCCESS"
        assert msg.mex_header("statusevent") == "TRANSFER"
        assert msg.mex_header("chunk-range") in (None, "1:1")
    finally:
        msg.close()


def test_flags_not_set_are_not_reported(server):
    """compressed/encrypted default to N: without Accept-Encoding gzip the
    download must not claim Mex-Content-Compressed or -Encrypted."""
    mid = server.client(MB1).send_message(MB2, b"plain", workflow_id=WF)
    r = server.request(
        "GET", f"/messageexchange/{MB2}/inbox/{mid}", mailbox=MB2, headers={"Accept-Encoding": "identity"}
    )
    assert r.status_code == 200
    assert r.content == b"plain"
    assert r.headers.get("Mex-Content-Compressed", "N").upper() in ("N", "")
    assert r.headers.get("Mex-Content-Encrypted", "N").upper() in ("N", "")
    assert "gzip" not in r.headers.get("Content-Encoding", "")


def test_binary_payload_round_trips(server):
    data = bytes(range(256)) * 8 + os.urandom(1000)
    mid = server.client(MB1).send_message(MB2, data, workflow_id=WF)
    with server.client(MB2).retrieve_message(mid) as msg:
        assert msg.read() == data


@pytest.mark.sandbox_differs("mesh-sandbox refuses an empty body (417 MissingDataFile)")
def test_empty_payload_round_trips(server):
    # Choice (brief): an empty message is a valid message of 0 bytes.
    mid = server.client(MB1).send_message(MB2, b"", workflow_id=WF)
    msg = server.client(MB2).retrieve_message(mid)
    try:
        assert msg.read() == b""
    finally:
        msg.close()


def test_acknowledge_removes_from_inbox(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    keep = c1.send_message(MB2, b"keep", workflow_id=WF)
    gone = c1.send_message(MB2, b"gone", workflow_id=WF)
    assert c2.list_messages() == [keep, gone]
    c2.acknowledge_message(gone)
    assert c2.list_messages() == [keep]
    assert c2.count_messages() == 1


def test_with_block_acknowledges_on_clean_exit(server):
    c2 = server.client(MB2)
    mid = server.client(MB1).send_message(MB2, b"ctx", workflow_id=WF)
    with c2.retrieve_message(mid) as msg:
        assert msg.read() == b"ctx"
    assert mid not in c2.list_messages()


def test_acknowledge_twice_is_ok(server):
    c2 = server.client(MB2)
    mid = server.client(MB1).send_message(MB2, b"x", workflow_id=WF)
    c2.acknowledge_message(mid)
    c2.acknowledge_message(mid)  # SPEC/sandbox: a no-op, still 200


def test_head_returns_mex_headers_and_no_body(server):
    mid = server.client(MB1).send_message(MB2, b"head me", workflow_id=WF, subject="subj", local_id="L9")
    r = server.request("HEAD", f"/messageexchange/{MB2}/inbox/{mid}", mailbox=MB2)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Mex-MessageID"] == mid
    assert r.headers["Mex-From"] == MB1
    assert r.headers["Mex-To"] == MB2
    assert r.headers["Mex-WorkflowID"] == WF
    assert r.headers["Mex-MessageType"] == "DATA"
    assert r.headers["Mex-Subject"] == "subj"
    assert r.headers["Mex-LocalID"] == "L9"
    # HEAD does not consume the message.
    assert mid in server.client(MB2).list_messages()


def test_message_for_another_mailbox_is_403(server):
    mid = server.client(MB1).send_message(MB2, b"private", workflow_id=WF2)
    intruder = server.client(MB3)
    with pytest.raises(requests.HTTPError) as e:
        intruder.retrieve_message(mid)
    assert e.value.response.status_code == 403
    with pytest.raises(requests.HTTPError) as e:
        intruder.acknowledge_message(mid)
    assert e.value.response.status_code == 403
    # The sender cannot read it from "its inbox" either.
    with pytest.raises(requests.HTTPError) as e:
        server.client(MB1).retrieve_message(mid)
    assert e.value.response.status_code == 403
    # And it is still there for the recipient.
    assert mid in server.client(MB2).list_messages()


def test_unknown_message_is_404(server):
    c2 = server.client(MB2)
    missing = "20200101000000000000_ABCDEF"
    with pytest.raises(requests.HTTPError) as e:
        c2.retrieve_message(missing)
    assert e.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as e:
        c2.acknowledge_message(missing)
    assert e.value.response.status_code == 404
    r = server.request("HEAD", f"/messageexchange/{MB2}/inbox/{missing}", mailbox=MB2)
    assert r.status_code == 404


def test_inbox_of_another_mailbox_is_403(server):
    # Token for X26ABC1 on X26ABC2's inbox.
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", token=h.make_token(MB1))
    assert r.status_code == 403


def test_mex_to_is_case_insensitive(server):
    # The sandbox uppercases mex-To; real mailbox ids are upper case.
    r = server.send_raw(MB1, MB2.lower(), b"lower")
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]
    assert mid in server.client(MB2).list_messages()


def test_content_type_without_mex_content_type(server):
    r = server.send_raw(MB1, MB2, b"<x/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 202, r.text
    msg = server.client(MB2).retrieve_message(r.json()["message_id"])
    try:
        assert msg.read() == b"<x/>"
        assert msg.content_type == "application/xml"
    finally:
        msg.close()


@pytest.mark.sandbox_differs("mesh-sandbox labels its v2 send response application/json")
def test_send_response_v2_content_type(server):
    # SPEC: the 202 body for Accept v2 is application/vnd.mesh.v2+json.
    r = server.send_raw(MB1, MB2, b"x", accept=V2)
    assert r.status_code == 202
    assert r.headers["Content-Type"].startswith(V2)


@pytest.mark.parametrize("compress", [False, True])
def test_few_megabyte_message_in_megabyte_chunks(server, compress):
    data = os.urandom(1024 * 1024) + b"text " * (400 * 1024)  # 3 MiB: part incompressible, part text
    c1 = server.client(MB1, max_chunk_size=1024 * 1024, transparent_compress=compress)
    mid = c1.send_message(MB2, data, workflow_id=WF)
    msg = server.client(MB2).retrieve_message(mid)
    try:
        assert msg.mex_header("total-chunks") == "3"
        assert msg.read() == data
    finally:
        msg.close()


def test_concurrent_senders(server):
    """Four mesh-client sessions sending at once: nothing lost, nothing
    duplicated, every message intact."""
    from concurrent.futures import ThreadPoolExecutor

    def send_batch(worker):
        c = server.client(MB1)
        return [
            (c.send_message(MB2, b"w%d-%d" % (worker, i), workflow_id=WF), b"w%d-%d" % (worker, i)) for i in range(10)
        ]

    with ThreadPoolExecutor(4) as pool:
        sent = [x for batch in pool.map(send_batch, range(4)) for x in batch]
    c2 = server.client(MB2)
    listed = list(c2.iterate_message_ids(batch_size=10))
    assert sorted(listed) == sorted(mid for mid, _ in sent)
    assert len(set(listed)) == 40
    for mid, body in sent[::7]:
        with c2.retrieve_message(mid) as msg:
            assert msg.read() == body


@pytest.mark.spine_only
def test_idempotency_key_answers_the_original_message_id(server):
    """Spine's extension: a send repeated with the same Mex-Idempotency-Key
    (say, after a lost response) gets the original id, not a duplicate."""
    key = {"Mex-Idempotency-Key": "upload-2026-11-24-001"}
    first = server.send_raw(MB1, MB2, b"once", headers=key)
    again = server.send_raw(MB1, MB2, b"once", headers=key)
    assert first.status_code == 202 and again.status_code == 202, (first.text, again.text)
    assert first.json()["message_id"] == again.json()["message_id"]
    assert server.client(MB2).list_messages() == [first.json()["message_id"]]
    other = server.send_raw(MB1, MB2, b"once", headers={"Mex-Idempotency-Key": "another"})
    assert other.json()["message_id"] != first.json()["message_id"]
