"""Inbox expiry and non-delivery reports (SPEC "Message expiration"), and
the sandbox admin endpoints (`spine serve --sandbox`; mesh-sandbox has them
always)."""

import time

import pytest

import mesh_harness as h
from mesh_harness import MB1, MB2, MB3, WF, WF2

EXPIRY_WAIT = 20  # seconds; the server expires after 2 s, checking every 100 ms


@pytest.mark.spine_only
def test_unacknowledged_message_expires_with_report_to_sender(expiry_server):
    srv = expiry_server
    c1, c2 = srv.client(MB1), srv.client(MB2)
    mid = c1.send_message(MB2, b"nobody reads me", workflow_id=WF, subject="Weekly", local_id="exp-1")
    assert mid in c2.list_messages()

    h.wait_for(lambda: mid not in c2.list_messages(), EXPIRY_WAIT, 0.2, "the message to leave X26ABC2's inbox")
    reports = h.wait_for(lambda: c1.list_messages(), EXPIRY_WAIT, 0.2, "a report in X26ABC1's inbox")
    assert len(reports) == 1
    rep = c1.retrieve_message(reports[0])
    try:
        assert rep.message_type == "REPORT"
        assert rep.mex_header("statuscode") == "14"
        assert rep.mex_header("linkedmsgid") == mid
        assert rep.mex_header("statussuccess") == "ERROR"
        assert rep.mex_header("statusevent")
        assert rep.mex_header("statusdescription")
        assert rep.workflow_id == WF
        assert rep.local_id == "exp-1"
        # The report is addressed to the sender it reports to (notes 1.6).
        assert rep.recipient == MB1
        assert rep.read() == b""
    finally:
        rep.close()

    t = c1.track_message(mid)
    assert t["status"] == "undeliverable"
    assert t["status_success"] is False

    # The recipient can no longer download it (SPEC lists 410 Gone).
    r = srv.request("GET", f"/messageexchange/{MB2}/inbox/{mid}", mailbox=MB2)
    assert r.status_code in (404, 410), r.status_code
    assert c2.count_messages() == 0

    # Acknowledging the report clears the sender's inbox.
    c1.acknowledge_message(reports[0])
    assert c1.list_messages() == []


@pytest.mark.spine_only
def test_acknowledged_message_does_not_expire(expiry_server):
    srv = expiry_server
    c1, c2 = srv.client(MB1), srv.client(MB2)
    acked = c1.send_message(MB2, b"read me", workflow_id=WF)
    c2.acknowledge_message(acked)
    left = c1.send_message(MB2, b"leave me", workflow_id=WF)
    # Once the unacknowledged one has expired and reported, the acknowledged
    # one must have produced nothing.
    reports = h.wait_for(lambda: c1.list_messages(), EXPIRY_WAIT, 0.2, "the report for the unacknowledged message")
    time.sleep(0.5)
    reports = c1.list_messages()
    assert len(reports) == 1
    with c1.retrieve_message(reports[0]) as rep:
        assert rep.mex_header("linkedmsgid") == left
    assert c1.track_message(acked)["status"] == "acknowledged"


@pytest.mark.spine_only
def test_chunked_message_expires_too(expiry_server):
    srv = expiry_server
    c1, c2 = srv.client(MB1, max_chunk_size=10), srv.client(MB2)
    mid = c1.send_message(MB2, b"x" * 35, workflow_id=WF)
    h.wait_for(lambda: mid not in c2.list_messages(), EXPIRY_WAIT, 0.2, "the chunked message to expire")
    rid = h.wait_for(lambda: c1.list_messages(), EXPIRY_WAIT, 0.2, "the report")[0]
    with c1.retrieve_message(rid) as rep:
        assert rep.mex_header("linkedmsgid") == mid


# ---- admin endpoints -----------------------------------------------------------


def test_admin_reset_empties_inboxes(admin_server):
    srv = admin_server
    c1 = srv.client(MB1)
    c1.send_message(MB2, b"a", workflow_id=WF2)
    c1.send_message(MB3, b"b", workflow_id=WF2)
    r = srv.request("DELETE", "/messageexchange/admin/reset", auth=False)
    assert r.status_code == 200, r.text
    assert srv.client(MB2).list_messages() == []
    assert srv.client(MB3).list_messages() == []
    # Still usable afterwards.
    mid = c1.send_message(MB2, b"after", workflow_id=WF)
    assert srv.client(MB2).list_messages() == [mid]


def test_admin_report_creates_a_report(admin_server):
    srv = admin_server
    orig = srv.client(MB1).send_message(MB2, b"orig", workflow_id=WF)
    r = srv.request(
        "POST",
        "/messageexchange/admin/report",
        auth=False,
        json={
            "mailbox_id": MB1,
            "code": "14",
            "description": "Message not collected by recipient after 5 days",
            "workflow_id": WF,
            "subject": "Weekly",
            "local_id": "rep-1",
            "status": "undeliverable",
            "linked_message_id": orig,
        },
    )
    assert r.status_code == 200, r.text
    rid = r.json()["message_id"]
    c1 = srv.client(MB1)
    assert c1.list_messages() == [rid]
    rep = c1.retrieve_message(rid)
    try:
        assert rep.message_type == "REPORT"
        assert rep.mex_header("linkedmsgid") == orig
        assert rep.mex_header("statuscode") == "14"
        assert rep.mex_header("statussuccess") == "ERROR"
        assert rep.workflow_id == WF
        assert rep.local_id == "rep-1"
        assert rep.read() == b""
    finally:
        rep.close()


def test_admin_report_error_status(admin_server):
    srv = admin_server
    r = srv.request(
        "POST",
        "/messageexchange/admin/report",
        auth=False,
        json={"mailbox_id": MB2, "code": "08", "description": "something failed", "workflow_id": WF, "status": "error"},
    )
    assert r.status_code == 200, r.text
    rid = r.json()["message_id"]
    with srv.client(MB2).retrieve_message(rid) as rep:
        assert rep.message_type == "REPORT"
        assert rep.mex_header("statuscode") == "08"
        assert rep.mex_header("statusdescription") == "something failed"


def test_admin_report_unknown_mailbox_is_404(admin_server):
    r = admin_server.request(
        "POST",
        "/messageexchange/admin/report",
        auth=False,
        json={"mailbox_id": "X99NOPE", "code": "14", "description": "d", "workflow_id": WF, "status": "undeliverable"},
    )
    assert r.status_code == 404


@pytest.mark.spine_only
def test_admin_endpoints_absent_without_sandbox_flag(server):
    srv = server
    mid = srv.client(MB1).send_message(MB2, b"stay", workflow_id=WF)
    r = srv.request("DELETE", "/messageexchange/admin/reset", auth=False)
    assert r.status_code == 404
    r = srv.request("DELETE", "/messageexchange/admin/reset", mailbox=MB1)
    assert r.status_code == 404
    r = srv.request(
        "POST",
        "/messageexchange/admin/report",
        auth=False,
        json={"mailbox_id": MB1, "code": "14", "description": "d", "workflow_id": WF, "status": "undeliverable"},
    )
    assert r.status_code == 404
    assert srv.client(MB2).list_messages() == [mid]
    assert srv.client(MB1).list_messages() == []
