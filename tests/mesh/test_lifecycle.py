"""The server process itself: clean SIGTERM exit and durability of what
MESH accepted across a restart. Spine only."""

import pytest

from mesh_harness import MB1, MB2, WF

pytestmark = pytest.mark.spine_only


def test_sigterm_exits_zero(start_server):
    srv = start_server()
    srv.client(MB1).send_message(MB2, b"x", workflow_id=WF)
    assert srv.stop() == 0, srv.log_tail()


def test_messages_survive_restart(start_server, tmp_path):
    data_dir = tmp_path / "shared-data"
    first = start_server(data_dir=data_dir, name="spine serve (before restart)")
    c1 = first.client(MB1, max_chunk_size=100)
    single = c1.send_message(MB2, b"single", workflow_id=WF, subject="s1")
    chunked = c1.send_message(MB2, b"c" * 250, workflow_id=WF)
    acked = c1.send_message(MB2, b"acked", workflow_id=WF)
    first.client(MB2).acknowledge_message(acked)
    # A half-uploaded message must not become visible after the restart.
    partial = c1.send_chunk(MB2, b"p", chunk_num=1, total_chunks=2, workflow_id=WF).json()["message_id"]
    assert first.stop() == 0, first.log_tail()

    second = start_server(data_dir=data_dir, name="spine serve (after restart)")
    c2 = second.client(MB2)
    assert c2.list_messages() == [single, chunked]
    with c2.retrieve_message(single) as m:
        assert m.read() == b"single"
        assert m.subject == "s1"
    with c2.retrieve_message(chunked) as m:
        assert m.mex_header("total-chunks") == "3"
        assert m.read() == b"c" * 250
    assert second.client(MB1).track_message(acked)["status"] == "acknowledged"
    assert partial not in c2.list_messages()


def test_new_clients_work_after_restart(start_server, tmp_path):
    """Clients started after a restart are served (whatever replay
    bookkeeping survives must not block new nonces)."""
    data_dir = tmp_path / "d"
    first = start_server(data_dir=data_dir)
    first.client(MB1).send_message(MB2, b"x", workflow_id=WF)
    first.stop()
    second = start_server(data_dir=data_dir)
    assert len(second.client(MB2).list_messages()) == 1
