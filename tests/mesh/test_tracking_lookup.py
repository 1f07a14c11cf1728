"""Tracking (by message id and by local id) and endpoint look-up."""

import pytest
import requests

from mesh_harness import MB1, MB2, MB3, V1, V2, WF, WF2, WF_ACK


def test_track_accepted_then_acknowledged(server):
    c1, c2 = server.client(MB1), server.client(MB2)
    mid = c1.send_message(MB2, b"track me", workflow_id=WF, local_id="trk-1", filename="f.txt")
    t = c1.track_message(mid)
    assert t["message_id"] == mid
    assert t["status"] == "accepted"
    assert t["status_success"] is True
    assert t["recipient"] == MB2
    assert t["workflow_id"] == WF
    assert t["local_id"] == "trk-1"
    assert t["filename"] == "f.txt"
    assert t.get("recipient_ods_code") == "X26"
    c2.acknowledge_message(mid)
    t = c1.track_message(mid)
    assert t["status"] == "acknowledged"


def test_track_v1_shape(server):
    mid = server.client(MB1).send_message(MB2, b"x", workflow_id=WF, local_id="v1-trk")
    r = server.request(
        "GET", f"/messageexchange/{MB1}/outbox/tracking", mailbox=MB1, accept=V1, params={"messageID": mid}
    )
    assert r.status_code == 200
    b = r.json()
    assert b["messageId"] == mid
    assert b["status"] == "Accepted"
    assert b["recipient"] == MB2
    assert b["sender"] == MB1
    assert b["localId"] == "v1-trk"
    assert b["workflowId"] == WF


# SPEC: the v1 tracking schema's field types (every field is a string except
# these two integers); null is allowed (the SPEC's own example has nulls).
_V1_TRACKING_INTEGERS = {"chunkCount", "fileSize"}
_V1_TRACKING_STRINGS = {
    "addressType", "checksum", "compressFlag", "contentEncoding", "downloadTimestamp", "dtsId", "encryptedFlag",
    "expiryTime", "failureDate", "failureDiagnostic", "fileName", "isCompressed", "linkedMsgId", "localId",
    "meshRecipientOdsCode", "messageId", "messageType", "partnerId", "recipient", "recipientName", "recipientOrgCode",
    "recipientOrgName", "recipientSmtp", "sender", "senderName", "senderOdsCode", "senderOrgCode", "senderOrgName",
    "senderSmtp", "status", "statusCode", "statusDescription", "statusEvent", "statusSuccess", "statusTimestamp",
    "subject", "uploadTimestamp", "version", "workflowId",
}  # fmt: skip


def test_track_v1_field_types_follow_spec(server):
    c1 = server.client(MB1)
    mid = c1.send_message(MB2, b"types", workflow_id=WF, local_id="types-1", subject="s")
    server.client(MB2).acknowledge_message(mid)
    r = server.request(
        "GET", f"/messageexchange/{MB1}/outbox/tracking", mailbox=MB1, accept=V1, params={"messageID": mid}
    )
    assert r.status_code == 200
    body = r.json()
    wrong = {
        k: v
        for k, v in body.items()
        if v is not None
        and (
            (k in _V1_TRACKING_INTEGERS and not (isinstance(v, int) and not isinstance(v, bool)))
            or (k in _V1_TRACKING_STRINGS and not isinstance(v, str))
        )
    }
    assert wrong == {}, f"fields whose type differs from the SPEC's v1 tracking schema: {wrong}"
    assert body["status"] == "Acknowledged"


def test_track_v2_field_types_follow_spec(server):
    mid = server.client(MB1).send_message(MB2, b"types", workflow_id=WF)
    t = server.client(MB1).track_message(mid)
    assert isinstance(t["status_success"], bool)
    for k in ("message_id", "status", "recipient", "workflow_id"):
        assert isinstance(t[k], str), k


def test_track_by_non_sender_or_unknown_is_404(server):
    mid = server.client(MB1).send_message(MB2, b"x", workflow_id=WF)
    # Sandbox (and, per its comment, Spine): another mailbox gets 404, not 403.
    with pytest.raises(requests.HTTPError) as e:
        server.client(MB2).track_message(mid)
    assert e.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as e:
        server.client(MB1).track_message("20200101000000000000_ABCDEF")
    assert e.value.response.status_code == 404


def test_track_by_local_id(server):
    c1 = server.client(MB1)
    mid = c1.send_message(MB2, b"x", workflow_id=WF, local_id="unique-local")
    c1.send_message(MB2, b"y", workflow_id=WF, local_id="dup-local")
    c1.send_message(MB2, b"z", workflow_id=WF, local_id="dup-local")

    r = server.request("GET", f"/messageexchange/{MB1}/outbox/tracking/unique-local", mailbox=MB1)
    assert r.status_code == 200, r.text
    body = r.json()  # v1 body (deprecated endpoint)
    assert body["messageId"] == mid
    assert body["localId"] == "unique-local"

    r = server.request("GET", f"/messageexchange/{MB1}/outbox/tracking/dup-local", mailbox=MB1)
    assert r.status_code == 300

    r = server.request("GET", f"/messageexchange/{MB1}/outbox/tracking/no-such-local", mailbox=MB1)
    assert r.status_code == 404

    # Another sender's local ids are not visible.
    r = server.request("GET", f"/messageexchange/{MB2}/outbox/tracking/unique-local", mailbox=MB2)
    assert r.status_code == 404


def test_lookup_endpoint(server):
    c = server.client(MB1)
    got = c.lookup_endpoint("X26", WF)["results"]
    assert [r["mailbox_id"] for r in got] == [MB2]
    assert isinstance(got[0]["mailbox_name"], str)
    got = c.lookup_endpoint("X26", WF_ACK)["results"]
    assert [r["mailbox_id"] for r in got] == [MB1]
    got = c.lookup_endpoint("X27", WF_ACK)["results"]
    assert [r["mailbox_id"] for r in got] == [MB3]
    assert c.lookup_endpoint("X26", "NO_SUCH_WORKFLOW")["results"] == []
    assert c.lookup_endpoint("X99", WF)["results"] == []


def test_lookup_endpoint_v1_shape(server):
    r = server.request("GET", f"/messageexchange/endpointlookup/X26/{WF}", accept=V1)
    assert r.status_code == 200
    b = r.json()
    assert "query_id" in b
    assert [(x["address"], x["endpoint_type"]) for x in b["results"]] == [(MB2, "MESH")]
    assert "description" in b["results"][0]


def test_lookup_needs_no_auth(server):
    # SPEC: the look-up endpoints list no Authorization parameter and the
    # curl example sends none (mutual TLS identifies the caller); the
    # sandbox does not check auth there either.
    r = server.request("GET", f"/messageexchange/endpointlookup/X26/{WF}", auth=False)
    assert r.status_code == 200
    assert [x["mailbox_id"] for x in r.json()["results"]] == [MB2]
    r = server.request("GET", f"/messageexchange/workflowsearch/{WF}", auth=False)
    assert r.status_code == 200
    assert [x["mailbox_id"] for x in r.json()["results"]] == [MB2]


def test_workflow_search(server):
    r = server.request("GET", f"/messageexchange/workflowsearch/{WF2}", accept=V2)
    assert r.status_code == 200
    assert sorted(x["mailbox_id"] for x in r.json()["results"]) == [MB1, MB2, MB3]
    r = server.request("GET", f"/messageexchange/workflowsearch/{WF_ACK}", accept=V2)
    assert sorted(x["mailbox_id"] for x in r.json()["results"]) == [MB1, MB3]
    r = server.request("GET", "/messageexchange/workflowsearch/NO_SUCH_WORKFLOW", accept=V2)
    assert r.status_code == 200
    assert r.json()["results"] == []
