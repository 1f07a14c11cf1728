"""The NHSMESH Authorization token (SPEC "MESH Authorization header", notes 2.1)."""

from datetime import datetime, timedelta, timezone

import pytest
import requests
from mesh_client import AuthTokenGenerator

import mesh_harness as h
from mesh_harness import MB1, MB2, WF

INBOX = f"/messageexchange/{MB1}/inbox"


def test_bad_password_is_403(server):
    c = server.client(MB1, password="not-the-password")
    with pytest.raises(requests.HTTPError) as e:
        c.list_messages()
    assert e.value.response.status_code == 403


def test_bad_shared_key_is_403(server):
    c = server.client(MB1, shared_key=b"NotBackBone")
    with pytest.raises(requests.HTTPError) as e:
        c.handshake()
    assert e.value.response.status_code == 403


def test_unknown_mailbox_is_403(server):
    r = server.request("GET", "/messageexchange/X99XXX9/inbox", token=h.make_token("X99XXX9"))
    assert r.status_code == 403


def test_missing_or_malformed_header_is_403(server):
    assert server.request("GET", INBOX, auth=False).status_code == 403
    for bad in ("NHSMESH", "NHSMESH a:b:c", "Basic dXNlcjpwYXNz", f"NHSMESH {MB1}:n:x:202001010000:abc", "x" * 2000):
        r = server.request("GET", INBOX, token=bad)
        assert r.status_code == 403, (bad[:40], r.status_code)


def test_token_mailbox_must_match_path(server):
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", token=h.make_token(MB1))
    assert r.status_code == 403
    r = server.send_raw(MB2, MB1, b"x", token=h.make_token(MB1))
    assert r.status_code == 403


def test_hand_made_token_is_accepted(server):
    r = server.request("GET", INBOX, token=h.make_token(MB1))
    assert r.status_code == 200, r.text


def test_mesh_client_token_generator_is_accepted(server):
    token = AuthTokenGenerator(h.SHARED_KEY, MB1, h.PASSWORD)()
    r = server.request("GET", INBOX, token=token)
    assert r.status_code == 200


def test_scheme_is_case_insensitive_and_hash_hex_case_insensitive(server):
    t = h.make_token(MB1, upper_hash=True)
    r = server.request("GET", INBOX, token=t)
    assert r.status_code == 200  # mesh-sandbox PR #142 ("mesh-2088")
    t = h.make_token(MB1).replace("NHSMESH", "nhsmesh", 1)
    r = server.request("GET", INBOX, token=t)
    assert r.status_code == 200


def test_token_an_hour_old_is_accepted(server):
    t = h.make_token(MB1, when=datetime.now(timezone.utc) - timedelta(hours=1))
    assert server.request("GET", INBOX, token=t).status_code == 200


@pytest.mark.sandbox_differs("mesh-sandbox does not check nonce reuse")
def test_replayed_token_is_403(server):
    t = h.make_token(MB1)
    first = server.request("GET", INBOX, token=t)
    assert first.status_code == 200
    second = server.request("GET", INBOX, token=t)
    assert second.status_code == 403


@pytest.mark.sandbox_differs("mesh-sandbox does not check nonce reuse")
def test_replay_key_is_nonce_and_count(server):
    """mesh-client keeps one nonce and counts up: (nonce, n) are distinct
    tokens; repeating any one of them is a replay."""
    nonce = "6f1d7f7e-2f5b-4a4c-9a38-3d6b3c1b0a11"
    for n in range(3):
        assert server.request("GET", INBOX, token=h.make_token(MB1, nonce=nonce, nonce_count=n)).status_code == 200
    assert server.request("GET", INBOX, token=h.make_token(MB1, nonce=nonce, nonce_count=1)).status_code == 403


@pytest.mark.sandbox_differs("mesh-sandbox does not check nonce reuse")
def test_replayed_token_on_another_endpoint_is_403(server):
    t = h.make_token(MB1)
    assert server.request("GET", INBOX, token=t).status_code == 200
    r = server.send_raw(MB1, MB2, b"x", token=t)
    assert r.status_code == 403
    assert server.client(MB2).list_messages() == []


@pytest.mark.sandbox_differs("mesh-sandbox does not check the timestamp")
def test_stale_token_is_403(server):
    t = h.make_token(MB1, when=datetime.now(timezone.utc) - timedelta(hours=3))
    assert server.request("GET", INBOX, token=t).status_code == 403


@pytest.mark.sandbox_differs("mesh-sandbox does not check the timestamp")
def test_future_token_is_403(server):
    t = h.make_token(MB1, when=datetime.now(timezone.utc) + timedelta(hours=3))
    assert server.request("GET", INBOX, token=t).status_code == 403


def test_many_requests_from_one_client(server):
    """One MeshClient = one nonce, nonce_count 0, 1, 2, ...: none of them may
    be taken for a replay."""
    c1, c2 = server.client(MB1), server.client(MB2)
    for i in range(30):
        c1.send_message(MB2, b"%d" % i, workflow_id=WF)
    assert len(c2.list_messages()) == 30
