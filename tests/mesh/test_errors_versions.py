"""Send errors from the SPEC's table (JSON bodies, v1 and v2 shapes) and
API version selection by the Accept header."""

import pytest
from mesh_client import MeshError

from mesh_harness import MB1, MB2, MB3, V1, V2, WF, WF_ACK


def _v2_code(body):
    return body["detail"][0]["code"]


# ---- send errors ---------------------------------------------------------------


def test_missing_mex_to(server):
    r = server.send_raw(MB1, None, b"x")
    # Sandbox: 400 (validation); SPEC code 08 "Missing Mex-To" would be 417.
    assert r.status_code in (400, 417), r.status_code
    body = r.json()
    assert "detail" in body or "errorCode" in body, body


def test_missing_workflow_id(server):
    r = server.send_raw(MB1, MB2, b"x", workflow=None)
    assert r.status_code in (400, 417), r.status_code
    body = r.json()
    assert "detail" in body or "errorCode" in body, body
    assert server.client(MB2).list_messages() == []


def test_unregistered_recipient_v2(server):
    r = server.send_raw(MB1, "X99NOPE", b"x", accept=V2)
    assert r.status_code == 417
    assert r.headers["Content-Type"].startswith(V2)
    body = r.json()
    assert _v2_code(body) == "12"
    assert body["detail"][0]["event"] == "SEND"
    assert body["detail"][0]["msg"]


def test_unregistered_recipient_v1(server):
    r = server.send_raw(MB1, "X99NOPE", b"x", accept=V1)
    assert r.status_code == 417
    body = r.json()
    assert body["errorCode"] == "12"
    assert body["errorEvent"] == "SEND"
    assert body["errorDescription"]


def test_unregistered_recipient_through_mesh_client(server):
    with pytest.raises(MeshError):
        server.client(MB1).send_message("X99NOPE", b"x", workflow_id=WF)


@pytest.mark.sandbox_differs("mesh-sandbox does not enforce workflow permissions")
def test_sender_not_registered_for_workflow_is_code_17(server):
    # TEST_WORKFLOW: X26ABC1 -> X26ABC2 only; X26ABC3 is not a sender.
    r = server.send_raw(MB3, MB2, b"x", workflow=WF, accept=V2)
    assert r.status_code == 417, (r.status_code, r.text)
    assert _v2_code(r.json()) == "17"
    with pytest.raises(MeshError):
        server.client(MB3).send_message(MB2, b"x", workflow_id=WF)
    assert server.client(MB2).list_messages() == []


@pytest.mark.sandbox_differs("mesh-sandbox does not enforce workflow permissions")
def test_recipient_not_registered_for_workflow_is_code_17(server):
    # Choice (SPEC: "the mailbox sender and recipient must be configured for
    # the workflow"): X26ABC3 does not receive TEST_WORKFLOW.
    r = server.send_raw(MB1, MB3, b"x", workflow=WF, accept=V1)
    assert r.status_code == 417, (r.status_code, r.text)
    assert r.json()["errorCode"] == "17"


def test_registered_workflow_directions_are_allowed(server):
    # TEST_WORKFLOW_ACK: X26ABC2 -> X26ABC1 and X26ABC3.
    c2 = server.client(MB2)
    a = c2.send_message(MB1, b"ack1", workflow_id=WF_ACK)
    b = c2.send_message(MB3, b"ack3", workflow_id=WF_ACK)
    assert server.client(MB1).list_messages() == [a]
    assert server.client(MB3).list_messages() == [b]


def test_send_error_bodies_are_json_for_mesh_client(server):
    """mesh-client calls response.json() on every first-chunk response: a
    4xx must carry a JSON body, and 417 one it can read a message from."""
    for hdrs in ({"Mex-Chunk-Range": "zz"}, {"Content-Encoding": "br"}):
        r = server.send_raw(MB1, MB2, b"x", headers=hdrs)
        assert 400 <= r.status_code < 500, (hdrs, r.status_code)
        assert isinstance(r.json(), dict), (hdrs, r.text)


def test_oversized_header_is_4xx(server):
    # SPEC: mex-Subject max 500 characters.
    r = server.send_raw(MB1, MB2, b"x", headers={"Mex-Subject": "s" * 501})
    assert 400 <= r.status_code < 500, r.status_code


# ---- versions ----------------------------------------------------------------


def test_send_v1_without_accept(server):
    r = server.send_raw(MB1, MB2, b"x", accept=None)
    assert r.status_code == 202
    b = r.json()
    assert set(b) == {"messageID"}, b


@pytest.mark.parametrize("accept", [V1, "application/json", "*/*"])
def test_send_v1_accepts(server, accept):
    r = server.send_raw(MB1, MB2, b"x", accept=accept)
    assert r.status_code == 202
    assert set(r.json()) == {"messageID"}


def test_send_v2(server):
    r = server.send_raw(MB1, MB2, b"x", accept=V2)
    assert r.status_code == 202
    assert set(r.json()) == {"message_id"}


@pytest.mark.parametrize(
    "accept", ["application/vnd.mesh.vX+json", "application/vnd.mesh.v2+xml", "application/vnd.mesh"]
)
def test_malformed_vnd_mesh_accept_is_400(server, accept):
    r = server.send_raw(MB1, MB2, b"x", accept=accept)
    assert r.status_code == 400, (accept, r.status_code)
    assert server.client(MB2).list_messages() == []
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", mailbox=MB2, accept=accept)
    assert r.status_code == 400


def test_accept_with_parameters_still_v2(server):
    r = server.send_raw(MB1, MB2, b"x", accept=f"{V2}; charset=utf-8")
    assert r.status_code == 202
    assert set(r.json()) == {"message_id"}


def test_acknowledge_v1_and_v2_bodies(server):
    c1 = server.client(MB1)
    a = c1.send_message(MB2, b"a", workflow_id=WF)
    b = c1.send_message(MB2, b"b", workflow_id=WF)
    r = server.request("PUT", f"/messageexchange/{MB2}/inbox/{a}/status/acknowledged", mailbox=MB2, accept=V1)
    assert r.status_code == 200
    assert r.json() == {"messageId": a}
    r = server.request("PUT", f"/messageexchange/{MB2}/inbox/{b}/status/acknowledged", mailbox=MB2, accept=V2)
    assert r.status_code == 200
    assert r.content in (b"", b"null", b"{}")


def test_v1_errors_use_v1_shape_and_v2_errors_v2_shape(server):
    r1 = server.send_raw(MB1, "X99NOPE", b"x", accept=None)
    assert r1.status_code == 417
    assert {"errorEvent", "errorCode", "errorDescription"} <= set(r1.json())
    r2 = server.send_raw(MB1, "X99NOPE", b"x", accept=V2)
    assert r2.status_code == 417
    assert "detail" in r2.json() and "errorCode" not in r2.json()
