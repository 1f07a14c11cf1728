"""Fixtures for the black-box MESH compatibility suite.

Each test gets its own `spine serve` process (fresh temporary data
directory, free loopback ports, QUIC and metrics off), started before the
test and stopped after it (SIGTERM, then SIGKILL after a bound). When a
test fails, the server's output is attached to the report.

Server variants: `server` (plain HTTP), `tls_server` (HTTPS with the
certificates `spine certs dev` writes), `mtls_server` (HTTPS that requires
a client certificate), `expiry_server` (inbox expiry after 2 s, checked
every 100 ms) and `admin_server` (`--sandbox`: the admin endpoints).
`start_server(...)` starts more (e.g. a restart on the same data dir).

Environment:
  SPINE_BIN             the binary (default target/debug/spine)
  MESH_TARGET=sandbox   run against NHS Digital's mesh-sandbox instead
                        (with MESH_SANDBOX_PYTHON); tests marked spine_only
                        are skipped, sandbox_differs ones are xfail
  MESH_TEST_TIMEOUT     per-test limit in seconds (default 60)
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

import mesh_harness as h

TEST_TIMEOUT = int(os.environ.get("MESH_TEST_TIMEOUT", "60"))


def pytest_configure(config):
    config.addinivalue_line("markers", "spine_only: needs Spine (its CLI, flags or a choice the sandbox lacks)")
    config.addinivalue_line(
        "markers",
        "sandbox_differs(reason): the suite follows the SPEC/brief here and mesh-sandbox is known to differ",
    )
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")


def pytest_collection_modifyitems(config, items):
    if h.TARGET != "sandbox":
        return
    for item in items:
        if item.get_closest_marker("spine_only"):
            item.add_marker(pytest.mark.skip(reason="Spine only (MESH_TARGET=sandbox)"))
        m = item.get_closest_marker("sandbox_differs")
        if m:
            item.add_marker(
                pytest.mark.xfail(reason=f"mesh-sandbox differs: {m.args[0] if m.args else ''}", strict=True)
            )


# ---- a bound on every test ------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded MESH_TEST_TIMEOUT={TEST_TIMEOUT}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- server output in the report of a failed test ---------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_mesh_servers", []):
            rep.sections.append((f"{srv.name} output ({srv.url}, log {srv.log_path})", srv.log_tail(32 * 1024)))


# ---- session: the binary and development certificates -----------------------


@pytest.fixture(scope="session")
def spine_binary() -> Path:
    b = h.spine_bin()
    if not b.exists():
        pytest.exit(f"spine binary not found at {b}; build it (cargo build --bin spine) or set SPINE_BIN", returncode=3)
    if h.TARGET == "spine":
        out = subprocess.run([str(b), "serve", "--help"], capture_output=True, timeout=30).stdout.decode()
        if "--mesh-listen" not in out:
            pytest.exit(f"{b} has no `serve --mesh-listen` flag: this build has no MESH API yet", returncode=3)
    return b


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory, spine_binary) -> Path:
    """`spine certs dev DIR`: ca.pem, server.pem/server-key.pem (localhost,
    127.0.0.1, ::1) and client-<MAILBOX>.pem/-key.pem for the demo mailboxes."""
    d = tmp_path_factory.mktemp("certs")
    cp = subprocess.run([str(spine_binary), "certs", "dev", "--force", str(d)], capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr.decode()
    for f in ("ca.pem", "server.pem", "server-key.pem", f"client-{h.MB1}.pem", f"client-{h.MB1}-key.pem"):
        assert (d / f).exists(), f"spine certs dev did not write {f}"
    return d


@pytest.fixture(scope="session")
def _sandbox_pool(tmp_path_factory):
    """mesh-sandbox processes, one per TLS setting, shared by the session and
    reset (DELETE /messageexchange/admin/reset) before each test."""
    pool: dict[bool, h.MeshServer] = {}
    yield pool
    for srv in pool.values():
        srv.owned = True
        srv.stop()


# ---- per test: servers --------------------------------------------------------


@pytest.fixture
def start_server(request, tmp_path, spine_binary, _sandbox_pool):
    """start_server(tls=False, mtls=False, admin=False, extra=(), data_dir=None)
    starts a server for this test and stops it afterwards."""
    started: list[h.MeshServer] = []
    request.node._mesh_servers = started

    def start(*, tls=False, mtls=False, admin=False, extra=(), data_dir=None, name="spine serve"):
        certs = request.getfixturevalue("dev_certs") if tls else None
        if h.TARGET == "sandbox":
            if mtls or extra or data_dir:
                pytest.skip("needs a Spine-specific server setting")
            srv = _sandbox_pool.get(tls)
            if srv is None:
                srv = h.sandbox_server(tmp_path.parent / f"sandbox-{'tls' if tls else 'plain'}", tls=tls, certs=certs)
                _sandbox_pool[tls] = srv
            r = srv.request("DELETE", "/messageexchange/admin/reset", auth=False)
            assert r.status_code == 200, r.text
            started.append(srv)
            return srv
        srv = h.spine_server(
            tmp_path / f"server{len(started)}",
            tls=tls,
            certs=certs,
            mtls=mtls,
            admin=admin,
            extra=extra,
            data_dir=data_dir,
            name=name,
        )
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.owned:
            srv.stop()
        else:
            for c in srv.clients:
                c.close()
            srv.clients.clear()


@pytest.fixture
def server(start_server) -> h.MeshServer:
    return start_server()


@pytest.fixture
def tls_server(start_server) -> h.MeshServer:
    return start_server(tls=True)


@pytest.fixture
def mtls_server(start_server) -> h.MeshServer:
    return start_server(tls=True, mtls=True)


@pytest.fixture
def expiry_server(start_server) -> h.MeshServer:
    return start_server(
        extra=["--inbox-expiry-secs", "2", "--expiry-interval-ms", "100"], name="spine serve (short expiry)"
    )


@pytest.fixture
def admin_server(start_server) -> h.MeshServer:
    return start_server(admin=True, name="spine serve --sandbox")
