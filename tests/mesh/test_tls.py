"""HTTPS with the certificates from `spine certs dev`: mesh-client with
verify=<ca.pem>, as against the real MESH endpoints (which also want a
client certificate)."""

import pytest
import requests
from mesh_client import MeshClient

import mesh_harness as h
from mesh_harness import MB1, MB2, WF


def test_https_ping_handshake_send_receive(tls_server):
    srv = tls_server
    c1, c2 = srv.client(MB1), srv.client(MB2)
    assert isinstance(c1.ping(), dict)
    assert c1.handshake() == b"hello"
    mid = c1.send_message(MB2, b"over tls", workflow_id=WF, subject="tls")
    with c2.retrieve_message(mid) as msg:
        assert msg.read() == b"over tls"
        assert msg.subject == "tls"


def test_https_chunked_compressed(tls_server):
    data = b"0123456789abcdef" * 300
    mid = tls_server.client(MB1, max_chunk_size=1000, transparent_compress=True).send_message(MB2, data, workflow_id=WF)
    with tls_server.client(MB2).retrieve_message(mid) as msg:
        assert msg.mex_header("total-chunks") == "5"
        assert msg.read() == data


def test_https_hostname_localhost(tls_server):
    """The server certificate names localhost too (hostname checking on)."""
    with MeshClient(
        f"https://localhost:{tls_server.mesh_port}",
        MB1,
        h.PASSWORD,
        shared_key=h.SHARED_KEY,
        verify=tls_server.ca,
        timeout=h.HTTP_TIMEOUT,
    ) as c:
        assert c.handshake() == b"hello"


def test_https_untrusted_ca_fails(tls_server):
    with MeshClient(
        tls_server.url, MB1, h.PASSWORD, shared_key=h.SHARED_KEY, timeout=h.HTTP_TIMEOUT, max_retries=0
    ) as c:
        with pytest.raises(requests.exceptions.SSLError):
            c.ping()


def test_plain_http_to_tls_port_fails(tls_server):
    with pytest.raises((requests.ConnectionError, requests.HTTPError)):
        r = requests.get(f"http://127.0.0.1:{tls_server.mesh_port}/messageexchange/_ping", timeout=5)
        r.raise_for_status()


@pytest.mark.spine_only
def test_mutual_tls_with_client_certificate(mtls_server, dev_certs):
    cert = (str(dev_certs / f"client-{MB1}.pem"), str(dev_certs / f"client-{MB1}-key.pem"))
    c1 = mtls_server.client(MB1, cert=cert)
    mid = c1.send_message(MB2, b"mtls", workflow_id=WF)
    cert2 = (str(dev_certs / f"client-{MB2}.pem"), str(dev_certs / f"client-{MB2}-key.pem"))
    with mtls_server.client(MB2, cert=cert2).retrieve_message(mid) as msg:
        assert msg.read() == b"mtls"


@pytest.mark.spine_only
def test_mutual_tls_without_client_certificate_fails(mtls_server):
    c = mtls_server.client(MB1, max_retries=0)
    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        c.handshake()
