"""A node whose directory comes from mesh-sandbox's JSONL files (any
mailbox ids those files use, such as ALICE), with a restricted workflow."""

import json

import pytest
from mesh_client import MeshError
import requests

pytestmark = pytest.mark.spine_only

MAILBOXES = [
    {"mailbox_id": "ALICE", "mailbox_name": "Alice's practice", "ods_code": "A1", "password": "alice-pw"},
    {"mailbox_id": "BOB", "mailbox_name": "Bob's trust", "ods_code": "B2", "password": "bob-pw"},
    {"mailbox_id": "CAROL", "mailbox_name": "Carol's lab", "ods_code": "C3", "password": "carol-pw"},
]
WORKFLOWS = [
    {"workflow_id": "RESTRICTED_WF", "senders": ["ALICE"], "receivers": ["BOB"]},
]


@pytest.fixture
def jsonl_server(start_server, tmp_path):
    mailboxes = tmp_path / "mailboxes.jsonl"
    workflows = tmp_path / "workflows.jsonl"
    mailboxes.write_text("".join(json.dumps(m) + "\n" for m in MAILBOXES))
    workflows.write_text("".join(json.dumps(w) + "\n" for w in WORKFLOWS))
    return start_server(
        extra=["--mailboxes", str(mailboxes), "--workflows", str(workflows)],
        name="spine serve (JSONL directory)",
    )


def test_jsonl_mailboxes_send_and_receive(jsonl_server):
    alice = jsonl_server.client("ALICE", "alice-pw")
    bob = jsonl_server.client("BOB", "bob-pw")
    mid = alice.send_message("BOB", b"from alice", workflow_id="RESTRICTED_WF")
    assert bob.list_messages() == [mid]
    msg = bob.retrieve_message(mid)
    assert msg.read() == b"from alice"
    assert msg.sender == "ALICE"
    msg.acknowledge()
    assert alice.lookup_endpoint("B2", "RESTRICTED_WF")["results"] == [
        {"mailbox_id": "BOB", "mailbox_name": "Bob's trust"}
    ]


def test_jsonl_restricted_workflow_is_enforced(jsonl_server):
    carol = jsonl_server.client("CAROL", "carol-pw")
    with pytest.raises(MeshError) as refused:
        carol.send_message("BOB", b"not allowed", workflow_id="RESTRICTED_WF")
    assert "17" in str(refused.value.args)
    alice = jsonl_server.client("ALICE", "alice-pw")
    with pytest.raises(MeshError):
        alice.send_message("CAROL", b"not a receiver", workflow_id="RESTRICTED_WF")
    # An unregistered workflow is unrestricted.
    assert carol.send_message("BOB", b"ok", workflow_id="OPEN_WF")


def test_demo_passwords_do_not_work_with_a_jsonl_directory(jsonl_server):
    with pytest.raises(requests.HTTPError) as refused:
        jsonl_server.client("ALICE", "password").handshake()
    assert refused.value.response.status_code == 403
    with pytest.raises(requests.HTTPError):
        jsonl_server.client("X26ABC1", "password").handshake()
