"""Other HTTP clients than mesh-client: curl as in the SPEC's examples
(including `Expect: 100-continue`, which curl sends for large bodies) and
request bodies with Transfer-Encoding: chunked."""

import json
import os
import shutil
import subprocess

import pytest

import mesh_harness as h
from mesh_harness import MB1, MB2, V2, WF

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def _curl(server, *args, timeout=30):
    argv = ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"]
    if server.tls:
        argv += ["--cacert", server.ca]
    cp = subprocess.run(argv + list(args), capture_output=True, timeout=timeout)
    assert cp.returncode == 0, cp.stderr.decode()
    body, _, code = cp.stdout.rpartition(b"\n")
    return int(code), body


def test_spec_curl_send_example_with_expect_100_continue(server, tmp_path):
    """The SPEC's send example, with a 2 MiB file (curl then sends
    `Expect: 100-continue` and waits for the server)."""
    f = tmp_path / "payload.bin"
    data = os.urandom(2 * 1024 * 1024)
    f.write_bytes(data)
    code, body = _curl(
        server,
        "--request", "POST",
        "--header", f"accept: {V2}",
        "--header", f"authorization: {h.make_token(MB1)}",
        "--header", "content-type: application/octet-stream",
        "--header", f"mex-from: {MB1}",
        "--header", f"mex-to: {MB2}",
        "--header", f"mex-workflowid: {WF}",
        "--header", "mex-filename: None",
        "--header", "mex-localid: api-docs-bob-greets-alice",
        "--data-binary", f"@{f}",
        f"{server.url}/messageexchange/{MB1}/outbox",
    )  # fmt: skip
    assert code == 202, body
    mid = json.loads(body)["message_id"]
    with server.client(MB2).retrieve_message(mid) as msg:
        assert msg.read() == data
        assert msg.local_id == "api-docs-bob-greets-alice"


def test_spec_curl_inbox_and_download(server, tmp_path):
    mid = server.client(MB1).send_message(MB2, b"curl me", workflow_id=WF)
    code, body = _curl(
        server,
        "--header", f"accept: {V2}",
        "--header", f"authorization: {h.make_token(MB2)}",
        f"{server.url}/messageexchange/{MB2}/inbox",
    )  # fmt: skip
    assert code == 200
    assert json.loads(body)["messages"] == [mid]
    code, body = _curl(
        server,
        "--compressed",
        "--header", f"accept: {V2}",
        "--header", f"authorization: {h.make_token(MB2)}",
        f"{server.url}/messageexchange/{MB2}/inbox/{mid}",
    )  # fmt: skip
    assert code == 200
    assert body == b"curl me"


def test_transfer_encoding_chunked_uncompressed_body(server):
    parts = [b"streamed ", b"without ", b"a length"]
    r = server.send_raw(MB1, MB2, iter(parts))  # a generator body: requests sends it chunked
    assert r.status_code == 202, r.text
    with server.client(MB2).retrieve_message(r.json()["message_id"]) as msg:
        assert msg.read() == b"".join(parts)
