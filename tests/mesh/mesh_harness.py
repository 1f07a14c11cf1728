"""Shared pieces of the MESH compatibility suite: starting and stopping a
server process (`spine serve`, or mesh-sandbox for reference runs), raw
HTTP helpers with hand-made NHSMESH tokens, the native CLI, and a bounded
poll.

Everything here is bounded in time: every HTTP call has a timeout, every
wait has a deadline, and a server that does not stop on SIGTERM is killed.
"""

from __future__ import annotations

import ctypes
import hmac
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from typing import Any, Callable

import requests
from mesh_client import MeshClient

REPO_ROOT = Path(__file__).resolve().parents[2]

# "spine" (default): run `spine serve`. "sandbox": run NHS Digital's
# mesh-sandbox (needs MESH_SANDBOX_PYTHON, a Python with mesh-sandbox and
# uvicorn installed) to check that the suite itself is right.
TARGET = os.environ.get("MESH_TARGET", "spine").strip().lower()

SHARED_KEY = b"BackBone"
PASSWORD = "password"
MB1, MB2, MB3 = "X26ABC1", "X26ABC2", "X26ABC3"
WF = "TEST_WORKFLOW"  # X26ABC1 -> X26ABC2
WF_ACK = "TEST_WORKFLOW_ACK"  # X26ABC2 -> X26ABC1, X26ABC3
WF2 = "TEST_WORKFLOW2"  # X26ABC1 -> all three

V1 = "application/vnd.mesh.v1+json"
V2 = "application/vnd.mesh.v2+json"

HTTP_TIMEOUT = float(os.environ.get("MESH_HTTP_TIMEOUT", "15"))
STARTUP_TIMEOUT = float(os.environ.get("MESH_STARTUP_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("MESH_STOP_TIMEOUT", "10"))
CLI_TIMEOUT = float(os.environ.get("MESH_CLI_TIMEOUT", "30"))


def spine_bin() -> Path:
    env = os.environ.get("SPINE_BIN", "").strip()
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "spine"
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def free_port() -> int:
    """A free loopback TCP port (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Calls fn until it returns something truthy, at most `timeout` seconds.
    Returns that value; raises AssertionError (with the last value or
    exception) at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - reported at the deadline
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last result: {last!r}")
        time.sleep(interval)


def make_token(
    mailbox: str,
    password: str = PASSWORD,
    shared_key: bytes = SHARED_KEY,
    nonce: str | None = None,
    nonce_count: int = 0,
    when: datetime | None = None,
    upper_hash: bool = False,
) -> str:
    """An NHSMESH Authorization value built by hand (the SPEC's recipe), so
    tests can control the nonce, count and timestamp."""
    ts = (when or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M")
    nonce = nonce or str(uuid.uuid4())
    digest = hmac.new(shared_key, f"{mailbox}:{nonce}:{nonce_count}:{password}:{ts}".encode(), sha256).hexdigest()
    if upper_hash:
        digest = digest.upper()
    return f"NHSMESH {mailbox}:{nonce}:{nonce_count}:{ts}:{digest}"


def _die_with_parent() -> None:
    """preexec_fn: the server gets SIGKILL if the test process dies, so a
    killed pytest (global timeout) leaves no server behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class MeshServer:
    kind: str  # "spine" or "sandbox"
    name: str
    mesh_port: int
    native_port: int | None
    tls: bool
    ca: str | None
    workdir: Path
    log_path: Path
    args: list[str]
    env: dict[str, str] | None = None
    data_dir: Path | None = None
    proc: subprocess.Popen | None = None
    clients: list[MeshClient] = field(default_factory=list)
    returncode: int | None = None
    owned: bool = True  # False for a shared sandbox process
    cert: tuple[str, str] | None = None  # client certificate for raw requests (mutual TLS)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.mesh_port}"

    @property
    def native_url(self) -> str:
        assert self.native_port, "no native listener"
        return f"{'natives' if self.tls else 'native'}://127.0.0.1:{self.native_port}"

    @property
    def verify(self) -> str | bool:
        return self.ca if self.tls else True

    # ---- process ---------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until GET /messageexchange/_ping answers 200 (and, for Spine, the
        native port accepts connections)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} before it was ready:\n{self.log_tail()}"
                )
            try:
                r = requests.get(f"{self.url}/messageexchange/_ping", timeout=1, verify=self.verify, cert=self.cert)
                if r.status_code == 200:
                    if self.native_port is None or _port_open(self.native_port):
                        return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s (last: {last!r}):\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Returns the exit
        status (negative: killed by that signal)."""
        for c in self.clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self.clients.clear()
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def log_tail(self, max_bytes: int = 64 * 1024) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                text = f.read().decode("utf-8", "replace")
            return ("[...]\n" if size > max_bytes else "") + text
        except OSError as exc:
            return f"(no log: {exc})"

    # ---- clients -----------------------------------------------------------

    def client(self, mailbox: str = MB1, password: str = PASSWORD, shared_key: bytes = SHARED_KEY, **kw) -> MeshClient:
        """The real mesh-client, pointed at this server."""
        kw.setdefault("timeout", HTTP_TIMEOUT)
        if self.tls:
            kw.setdefault("verify", self.ca)
        c = MeshClient(self.url, mailbox, password, shared_key=shared_key, **kw)
        self.clients.append(c)
        return c

    def request(
        self,
        method: str,
        path: str,
        mailbox: str | None = MB1,
        token: str | None = None,
        accept: str | None = V2,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        **kw,
    ) -> requests.Response:
        """A raw HTTP request. Authorization is a fresh token for `mailbox`
        unless `token` is given or auth is False; Accept is v2 unless
        `accept` says otherwise (None: no Accept header at all)."""
        h: dict[str, str | None] = {"Accept": accept}  # None: no Accept header at all
        if auth and (token or mailbox):
            h["Authorization"] = token or make_token(mailbox)  # type: ignore[arg-type]
        h.update(headers or {})
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("verify", self.verify)
        kw.setdefault("cert", self.cert)
        return requests.request(method, f"{self.url}{path}", headers=h, **kw)

    def send_raw(
        self,
        sender: str,
        recipient: str | None,
        data: bytes = b"hello",
        workflow: str | None = WF,
        accept: str | None = V2,
        headers: dict[str, str] | None = None,
        **kw,
    ) -> requests.Response:
        h = {"Content-Type": "application/octet-stream"}
        if recipient is not None:
            h["Mex-To"] = recipient
        if workflow is not None:
            h["Mex-WorkflowID"] = workflow
        h.update(headers or {})
        return self.request(
            "POST", f"/messageexchange/{sender}/outbox", mailbox=sender, accept=accept, headers=h, data=data, **kw
        )

    # ---- native protocol (Spine only) -------------------------------------

    def cli(
        self, *args: str, mailbox: str = MB2, json_out: bool = True, check: bool = True, timeout: float = CLI_TIMEOUT
    ):
        """Runs `spine <cmd> --server native://... --mailbox M --password P [--json] ARGS`.
        Returns (CompletedProcess, parsed JSON or None)."""
        cmd, rest = args[0], list(args[1:])
        argv = [
            str(spine_bin()),
            cmd,
            "--server",
            self.native_url,
            "--mailbox",
            mailbox,
            "--password",
            PASSWORD,
            "--timeout",
            "10",
        ]
        if self.tls:
            argv += ["--ca", str(self.ca)]
        if json_out:
            argv.append("--json")
        argv += rest
        cp = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {cp.returncode}\nstdout: {cp.stdout.decode('utf-8', 'replace')}\n"
                f"stderr: {cp.stderr.decode('utf-8', 'replace')}"
            )
        parsed = None
        if json_out and cp.returncode == 0 and cp.stdout.strip():
            parsed = json.loads(cp.stdout)
        return cp, parsed


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def spine_server(
    workdir: Path,
    *,
    tls: bool = False,
    certs: Path | None = None,
    mtls: bool = False,
    admin: bool = False,
    extra: list[str] | tuple[str, ...] = (),
    data_dir: Path | None = None,
    name: str = "spine serve",
) -> MeshServer:
    """Starts `spine serve` on free loopback ports and waits until it answers.
    Retries (new ports) if it exits early, e.g. because a port was taken."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or (workdir / "data")
    last_err: Exception | None = None
    for attempt in range(3):
        mesh_port, native_port = free_port(), free_port()
        args = [
            str(spine_bin()),
            "serve",
            "--data-dir", str(data_dir),
            "--mesh-listen", f"127.0.0.1:{mesh_port}",
            "--native-listen", f"127.0.0.1:{native_port}",
            "--quic-enabled", "false",
            "--metrics-enabled", "false",
        ]  # fmt: skip
        ca = None
        if tls:
            assert certs is not None
            ca = str(certs / "ca.pem")
            args += ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem")]
            if mtls:
                args += ["--client-ca", ca, "--require-client-cert", "true"]
        if admin:
            args.append("--sandbox")
        args += list(extra)
        srv = MeshServer(
            kind="spine",
            name=name,
            mesh_port=mesh_port,
            native_port=native_port,
            tls=tls,
            ca=ca,
            workdir=workdir,
            log_path=workdir / f"server-{attempt}.log",
            args=args,
            data_dir=data_dir,
            cert=(str(certs / f"client-{MB1}.pem"), str(certs / f"client-{MB1}-key.pem"))
            if (tls and mtls and certs)
            else None,
        )
        srv.start()
        try:
            srv.wait_ready()
            return srv
        except RuntimeError as exc:
            last_err = exc
            srv.stop()
            if "in use" not in srv.log_tail().lower():
                break
    raise RuntimeError(f"could not start {name}: {last_err}")


def sandbox_server(workdir: Path, *, tls: bool = False, certs: Path | None = None) -> MeshServer:
    """Starts NHS Digital's mesh-sandbox with uvicorn (in-memory store, full
    HMAC auth, shared key BackBone) for reference runs of the suite."""
    py = os.environ.get("MESH_SANDBOX_PYTHON", "").strip()
    if not py:
        raise RuntimeError("MESH_TARGET=sandbox needs MESH_SANDBOX_PYTHON (a python with mesh-sandbox and uvicorn)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        py,
        "-m",
        "uvicorn",
        "mesh_sandbox.api:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    ca = None
    if tls:
        assert certs is not None
        ca = str(certs / "ca.pem")
        args += ["--ssl-certfile", str(certs / "server.pem"), "--ssl-keyfile", str(certs / "server-key.pem")]
    env = dict(
        os.environ, SHARED_KEY=SHARED_KEY.decode(), AUTH_MODE="full", STORE_MODE="memory", PYTHONWARNINGS="ignore"
    )
    srv = MeshServer(
        kind="sandbox",
        name="mesh-sandbox",
        mesh_port=port,
        native_port=None,
        tls=tls,
        ca=ca,
        workdir=workdir,
        log_path=workdir / "sandbox.log",
        args=args,
        env=env,
        owned=False,
    )
    srv.start()
    srv.wait_ready(timeout=60)
    return srv
