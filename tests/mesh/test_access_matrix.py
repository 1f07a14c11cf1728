"""The access matrix as NHS Digital's real mesh-client sees it.

Every public MeshClient operation runs under every condition a mesh-client
user can produce: as the mailbox that owns the message (or the inbox, or the
upload); as another mailbox (X26ABC3) acting on a message X26ABC1 sent to
X26ABC2; with a wrong password; with a wrong shared key. EXPECTED states the
outcome of every cell: "ok" (and the operation's result is checked), the
HTTP status and Spine's stable code from the JSON error body mesh-client
receives (send_message turns every refusal with a JSON body into a
MeshError carrying that body, without the status), or "n/a" (why). A
failure prints the whole table.

Refusals run before the successful cells, so those also show that nothing
refused changed anything (a refused acknowledgement leaves the message for
its owner, a refused chunk leaves the upload incomplete).

The Rust suite (tests/tests/access.rs) covers every endpoint with
hand-made requests: replayed and stale tokens, unknown and inactive
callers, no TLS where TLS is required, and secrets in logs and bodies.
"""

from __future__ import annotations

import pytest
import requests
from mesh_client import MeshError

from mesh_harness import MB1, MB2, MB3, WF

pytestmark = pytest.mark.spine_only

CONDITIONS = ("own", "other mailbox", "wrong password", "wrong shared key")

BAD_SIGNATURE = (403, "MESH_AUTH_BAD_SIGNATURE")
NO_MESSAGE = "n/a: names no message; a client only ever uses its own mailbox's path"

# (operation, condition) -> "ok" | (status, spine_error_code) | "n/a: why"
EXPECTED: dict[tuple[str, str], object] = {}
for op in (
    "handshake",
    "list_messages",
    "count_messages",
    "retrieve_message",
    "retrieve_message_chunk",
    "acknowledge_message",
    "send_message",
    "send_chunk",
    "track_message",
    "lookup_endpoint",
    "ping",
):
    EXPECTED[(op, "own")] = "ok"
    EXPECTED[(op, "wrong password")] = BAD_SIGNATURE
    EXPECTED[(op, "wrong shared key")] = BAD_SIGNATURE
for op in ("handshake", "list_messages", "count_messages"):
    EXPECTED[(op, "other mailbox")] = NO_MESSAGE
EXPECTED.update(
    {
        ("retrieve_message", "other mailbox"): (403, "MSG_NOT_RECIPIENT"),
        ("retrieve_message_chunk", "other mailbox"): (403, "MSG_NOT_RECIPIENT"),
        ("acknowledge_message", "other mailbox"): (403, "MSG_NOT_RECIPIENT"),
        # X26ABC3 is not a sender of TEST_WORKFLOW (HTTP 417).
        ("send_message", "other mailbox"): ("MeshError", "DIR_WORKFLOW_NOT_REGISTERED"),
        ("send_message", "wrong password"): ("MeshError", "MESH_AUTH_BAD_SIGNATURE"),
        ("send_message", "wrong shared key"): ("MeshError", "MESH_AUTH_BAD_SIGNATURE"),
        ("send_chunk", "other mailbox"): (403, "MSG_NOT_SENDER"),
        # Tracking another mailbox's message answers like an unknown id.
        ("track_message", "other mailbox"): (404, "MSG_NOT_FOUND"),
        ("lookup_endpoint", "other mailbox"): "n/a: the directory is shared; a look-up names no mailbox",
        ("ping", "other mailbox"): "n/a: _ping concerns no mailbox",
        # _ping has no authentication: mesh-client's token is ignored.
        ("ping", "wrong password"): "ok",
        ("ping", "wrong shared key"): "ok",
    }
)

# Which mailbox owns each operation's target: the recipient downloads and
# acknowledges, the sender sends, uploads and tracks.
OWNER = {
    "retrieve_message": MB2,
    "retrieve_message_chunk": MB2,
    "acknowledge_message": MB2,
    "list_messages": MB2,
    "count_messages": MB2,
}


def _refusal(response: requests.Response) -> tuple[int, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body.get("spine_error_code") or body.get("spineErrorCode")


def _run(fn) -> object:
    """ "ok", (status, code) for an HTTP refusal, or "wrong: ..." for a
    success that returned the wrong thing."""
    try:
        result = fn()
    except requests.HTTPError as e:
        return _refusal(e.response)
    except MeshError as e:
        body = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], dict) else {}
        return "MeshError", body.get("spine_error_code") or body.get("spineErrorCode")
    except AssertionError as e:
        return f"wrong: {e}"
    if isinstance(result, requests.Response) and result.status_code >= 400:
        return _refusal(result)
    return "ok"


def test_mesh_client_access_matrix(server):
    alice, bob = server.client(MB1), server.client(MB2)
    to_bob = alice.send_message(MB2, b"for bob", workflow_id=WF)
    to_bob_ack = alice.send_message(MB2, b"for bob (ack)", workflow_id=WF)
    r = alice.send_chunk(MB2, b"part 1 ", chunk_num=1, total_chunks=2, workflow_id=WF)
    assert r.status_code == 202, r.text
    upload = r.json()["message_id"]
    sent_to_bob = {to_bob, to_bob_ack}

    def retrieve(c):
        msg = c.retrieve_message(to_bob)
        try:  # not `with`: leaving the block would acknowledge it
            assert msg.read() == b"for bob", "content"
        finally:
            msg.close()

    def retrieve_chunk(c):
        r = c.retrieve_message_chunk(to_bob, 1)
        assert r.content == b"for bob", "content"
        return r

    def send(c):
        sent_to_bob.add(c.send_message(MB2, b"matrix send", workflow_id=WF))

    def send_chunk(c):
        r = c.send_chunk(MB2, b"part 2", chunk_num=2, total_chunks=2, message_id=upload)
        if r.status_code < 400:
            sent_to_bob.add(upload)
        return r

    def track(c):
        assert c.track_message(to_bob)["message_id"] == to_bob, "tracked another message"

    def lookup(c):
        found = [m["mailbox_id"] for m in c.lookup_endpoint("X26", WF)["results"]]
        assert found == [MB2], f"found {found}"

    def listed(c):
        ids = c.list_messages()
        assert to_bob in ids and set(ids) <= sent_to_bob | {upload}, f"listed {ids}"

    def counted(c):
        assert c.count_messages() >= 1, "count"

    ops = {
        "handshake": lambda c: c.handshake(),
        "list_messages": listed,
        "count_messages": counted,
        "retrieve_message": retrieve,
        "retrieve_message_chunk": retrieve_chunk,
        "acknowledge_message": lambda c: c.acknowledge_message(to_bob_ack),
        "send_message": send,
        "send_chunk": send_chunk,
        "track_message": track,
        "lookup_endpoint": lookup,
        "ping": lambda c: c.ping(),
    }

    def client_for(op: str, condition: str):
        owner = OWNER.get(op, MB1)
        if condition == "own":
            return server.client(owner)
        if condition == "other mailbox":
            return server.client(MB3)
        if condition == "wrong password":
            return server.client(owner, password="not-the-password", max_retries=0)
        return server.client(owner, shared_key=b"NotTheSharedKey", max_retries=0)

    got: dict[tuple[str, str], object] = {}
    for condition in ("other mailbox", "wrong password", "wrong shared key", "own"):
        for op, fn in ops.items():
            want = EXPECTED[(op, condition)]
            if isinstance(want, str) and want.startswith("n/a"):
                got[(op, condition)] = want
                continue
            got[(op, condition)] = _run(lambda: fn(client_for(op, condition)))

    failures = [(k, EXPECTED[k], v) for k, v in got.items() if v != EXPECTED[k]]
    if failures:
        def short(op: str, c: str) -> str:
            want = EXPECTED[(op, c)]
            text = "n/a" if isinstance(want, str) and want.startswith("n/a") else str(want)
            return text if got[(op, c)] == want else f"✗{text}"

        width = max(len(op) for op in ops)
        widths = {c: max([len(c)] + [len(short(op, c)) for op in ops]) for c in CONDITIONS}
        lines = [f"{'':{width}} | " + " | ".join(f"{c:{widths[c]}}" for c in CONDITIONS)]
        for op in ops:
            lines.append(f"{op:{width}} | " + " | ".join(f"{short(op, c):{widths[c]}}" for c in CONDITIONS))
        lines += [f"✗ {op} × {c}: expected {w}, got {g}" for (op, c), w, g in failures]
        pytest.fail("mesh-client access matrix:\n" + "\n".join(lines), pytrace=False)

    # Nothing refused left a trace: BOB's inbox is exactly what was
    # accepted for him, minus the acknowledged message.
    assert set(bob.list_messages()) == sent_to_bob - {to_bob_ack}
