"""Ping, handshake, count: the calls a MESH client makes before anything else."""

import pytest
import requests

from mesh_harness import MB1, MB2, V1, V2, WF


def test_ping_returns_json(server):
    body = server.client(MB1).ping()
    assert isinstance(body, dict)


def test_ping_needs_no_auth(server):
    r = server.request("GET", "/messageexchange/_ping", auth=False)
    assert r.status_code == 200
    assert isinstance(r.json(), dict)


def test_handshake_with_mesh_client(server):
    assert server.client(MB1).handshake() == b"hello"


def test_handshake_v1_body_names_the_mailbox(server):
    hdrs = {"mex-ClientVersion": "test==1", "mex-OSName": "Linux", "mex-OSVersion": "6"}
    r = server.request("POST", f"/messageexchange/{MB1}", accept=V1, headers=hdrs)
    assert r.status_code == 200, r.text
    assert r.json() == {"mailboxId": MB1}


def test_handshake_v2_is_200(server):
    hdrs = {"mex-ClientVersion": "test==1", "mex-OSName": "Linux", "mex-OSVersion": "6"}
    r = server.request("POST", f"/messageexchange/{MB1}", accept=V2, headers=hdrs)
    assert r.status_code == 200, r.text


def test_handshake_missing_mex_headers_is_400(server):
    # SPEC: mex-ClientVersion, mex-OSName and mex-OSVersion are required (400).
    r = server.request("POST", f"/messageexchange/{MB1}", accept=V2, headers={"mex-OSName": "Linux"})
    assert r.status_code == 400, r.text


def test_handshake_bad_password_is_403(server):
    with pytest.raises(requests.HTTPError) as e:
        server.client(MB1, password="wrong").handshake()
    assert e.value.response.status_code == 403


def test_count_messages(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    assert c2.count_messages() == 0
    for i in range(3):
        c1.send_message(MB2, b"m%d" % i, workflow_id=WF)
    assert c2.count_messages() == 3
    assert c1.count_messages() == 0


def test_count_v1_and_v2_shapes(server):
    server.client(MB1).send_message(MB2, b"x", workflow_id=WF)
    r1 = server.request("GET", f"/messageexchange/{MB2}/count", mailbox=MB2, accept=V1)
    assert r1.status_code == 200
    b1 = r1.json()
    assert b1["count"] == 1
    assert "internalID" in b1 and b1["allResultsIncluded"] is True
    r2 = server.request("GET", f"/messageexchange/{MB2}/count", mailbox=MB2, accept=V2)
    assert r2.status_code == 200
    assert r2.json() == {"count": 1}


def test_unknown_path_is_404(server):
    r = server.request("GET", "/messageexchange/no/such/thing/here/at/all", auth=False)
    assert r.status_code == 404


@pytest.mark.spine_only
def test_message_ids_look_like_mesh_ids(server):
    # Choice: real MESH ids are `yyyymmddHHMMSSffffff_XXXXXX` (the sandbox uses uuid4 hex).
    import re

    mid = server.client(MB1).send_message(MB2, b"x", workflow_id=WF)
    assert re.fullmatch(r"\d{20}_[0-9A-F]{6}", mid), mid
