"""Listing the inbox: paging (v2 links.next), order, max_results,
workflow_filter, and the v1 shape."""

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from mesh_harness import MB1, MB2, MB3, V1, V2, WF, WF2


def _send_many(server, n, workflow=WF, to=MB2):
    c1 = server.client(MB1)
    return [c1.send_message(to, b"message %d" % i, workflow_id=workflow) for i in range(n)]


def test_iterate_message_ids_pages_through_everything_oldest_first(server):
    ids = _send_many(server, 27)
    got = list(server.client(MB2).iterate_message_ids(batch_size=10))
    assert got == ids


def test_list_messages_max_results_is_first_page(server):
    ids = _send_many(server, 25)
    c2 = server.client(MB2)
    assert c2.list_messages(max_results=10) == ids[:10]
    assert c2.list_messages() == ids  # default page (500) holds them all
    assert c2.count_messages() == 25


def test_v2_page_links(server):
    ids = _send_many(server, 25)
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", mailbox=MB2, params={"max_results": 10})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(V2)
    body = r.json()
    assert body["messages"] == ids[:10]
    assert body["approx_inbox_count"] == 25
    nxt = body["links"]["next"]
    # Relative path: mesh-client builds the next URL as base_url + next.
    assert nxt.startswith(f"/messageexchange/{MB2}/inbox"), nxt
    assert "continue_from" in parse_qs(urlparse(nxt).query)
    seen = list(body["messages"])
    pages = 1
    while "next" in body.get("links", {}):
        r = server.request("GET", body["links"]["next"], mailbox=MB2)
        assert r.status_code == 200
        body = r.json()
        seen += body["messages"]
        pages += 1
        assert pages <= 5
    assert seen == ids
    assert pages == 3


def test_paging_survives_acknowledging_as_you_go(server):
    """A typical consumer acks each message while paging."""
    ids = _send_many(server, 23)
    c2 = server.client(MB2)
    got = []
    for mid in c2.iterate_message_ids(batch_size=10):
        got.append(mid)
        c2.acknowledge_message(mid)
    assert got == ids
    assert c2.list_messages() == []


def test_v1_inbox_shape(server):
    ids = _send_many(server, 3)
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", mailbox=MB2, accept=V1)
    assert r.status_code == 200
    assert r.json() == {"messages": ids}


def test_max_results_below_10_is_rejected(server):
    # SPEC: max_results is 10..5000 (the client refuses < 10 itself).
    with pytest.raises(ValueError):
        server.client(MB2).list_messages(max_results=5)
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", mailbox=MB2, params={"max_results": 5})
    assert r.status_code == 400, r.status_code
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", mailbox=MB2, params={"max_results": 5001})
    assert r.status_code == 400, r.status_code


def test_workflow_filter(server):
    c1 = server.client(MB1)
    a = [c1.send_message(MB2, b"a%d" % i, workflow_id=WF) for i in range(3)]
    b = [c1.send_message(MB2, b"b%d" % i, workflow_id=WF2) for i in range(2)]
    c2 = server.client(MB2)
    assert c2.list_messages(workflow_filter=WF) == a
    assert c2.list_messages(workflow_filter=f"!{WF}") == b
    assert c2.list_messages(workflow_filter="TEST_WORK*") == a + b
    assert c2.list_messages(workflow_filter="!TEST_WORKFLOW2*") == a
    assert c2.list_messages(workflow_filter="*FLOW2*") == b
    assert c2.list_messages(workflow_filter="!*FLOW2*") == a
    assert c2.list_messages(workflow_filter="NOPE") == []
    assert list(c2.iterate_message_ids(workflow_filter=WF2, batch_size=10)) == b


def test_workflow_filter_with_paging(server):
    c1 = server.client(MB1)
    a, b = [], []
    for _ in range(12):
        a.append(c1.send_message(MB2, b"a", workflow_id=WF))
        b.append(c1.send_message(MB2, b"b", workflow_id=WF2))
    got = list(server.client(MB2).iterate_message_ids(workflow_filter=WF2, batch_size=10))
    assert got == b


def test_inboxes_are_separate(server):
    c1 = server.client(MB1)
    to2 = c1.send_message(MB2, b"2", workflow_id=WF2)
    to3 = c1.send_message(MB3, b"3", workflow_id=WF2)
    assert server.client(MB2).list_messages() == [to2]
    assert server.client(MB3).list_messages() == [to3]
    assert server.client(MB1).list_messages() == []


def test_inbox_needs_auth(server):
    r = server.request("GET", f"/messageexchange/{MB2}/inbox", auth=False)
    assert r.status_code == 403


@pytest.mark.sandbox_differs("mesh-sandbox answers 500 (InvalidToken) to a continue_from it did not issue")
def test_bad_continue_from_is_4xx(server):
    # Choice: v2 continue_from is opaque; one the server did not issue is a 4xx.
    _send_many(server, 2)
    r = server.request(
        "GET", f"/messageexchange/{MB2}/inbox", mailbox=MB2, params={"continue_from": "x" * 40, "max_results": 10}
    )
    assert 400 <= r.status_code < 500, r.status_code


def test_inbox_of_unknown_mailbox_is_403(server):
    with pytest.raises(requests.HTTPError) as e:
        server.client("X99XXX9").list_messages()
    assert e.value.response.status_code == 403
