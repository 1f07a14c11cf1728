#!/usr/bin/env bash
# NHS Digital's mesh-sandbox (PyPI `mesh-sandbox`), run locally as the
# comparison peer for `spine-bench load --target mesh://...`.
#
#   bench/mesh-sandbox.sh start [PORT]   # default 8700; prints PID, URL, data dir
#   bench/mesh-sandbox.sh stop           # stops the PID recorded by start
#   bench/mesh-sandbox.sh status
#
# It creates a venv (target/mesh-sandbox-venv, Python >= 3.11, which
# mesh-sandbox 1.0.137 needs), installs mesh-sandbox from PyPI, and serves
# `mesh_sandbox.api:app` with uvicorn (one process: the sandbox keeps its
# inboxes in that process's memory) bound to 127.0.0.1 only, with
#   SHARED_KEY=BackBone  AUTH_MODE=full  STORE_MODE=file
# and a fresh temporary MAILBOXES_DATA_DIR. Mailboxes: X26ABC1..3, password
# `password` (the package's canned mailboxes.jsonl), as Spine's demo
# directory. The sandbox does not enforce workflow permissions on send, so
# any workflow id works (the load uses SPINE_LOAD, as against Spine).
#
# Durability note: STORE_MODE=file writes each message's JSON and body with
# plain open()/write() and never fsyncs (mesh_sandbox/store/file_store.py),
# so a 202 from the sandbox does not mean the message is on disk. Its state
# (inbox lists) lives in the process; the files are only read at start-up.
#
# The process is stopped only by the PID this script recorded, never by name.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${MESH_SANDBOX_VENV:-$ROOT/target/mesh-sandbox-venv}"
STATE="$ROOT/target/mesh-sandbox"
PIDFILE="$STATE/pid"
PYTHON="${PYTHON:-python3.11}"
VERSION="${MESH_SANDBOX_VERSION:-1.0.137}"

die() { echo "mesh-sandbox.sh: $*" >&2; exit 1; }

ensure_venv() {
    if [ ! -x "$VENV/bin/uvicorn" ] || ! "$VENV/bin/python" -c 'import mesh_sandbox.api' 2>/dev/null; then
        command -v "$PYTHON" >/dev/null || die "$PYTHON not found; mesh-sandbox $VERSION needs Python >= 3.11 (set PYTHON=...)"
        echo "creating $VENV and installing mesh-sandbox==$VERSION from PyPI" >&2
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "mesh-sandbox==$VERSION" uvicorn
    fi
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    # Only our own process: the PID must still run the venv's uvicorn.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "mesh_sandbox.api:app"; then
        echo "$pid"
        return 0
    fi
    return 1
}

start() {
    local port="${1:-8700}"
    case "$port" in '' | *[!0-9]*) die "port must be a number, got '$port'" ;; esac
    if pid="$(running_pid)"; then
        die "already running (PID $pid, $(cat "$STATE/url")); run '$0 stop' first"
    fi
    ensure_venv
    mkdir -p "$STATE"
    local data
    data="$(mktemp -d "${TMPDIR:-/tmp}/mesh-sandbox-data.XXXXXX")"
    (
        cd "$STATE"
        SHARED_KEY=BackBone AUTH_MODE=full STORE_MODE=file MAILBOXES_DATA_DIR="$data" \
            exec "$VENV/bin/uvicorn" mesh_sandbox.api:app \
            --host 127.0.0.1 --port "$port" --no-access-log --log-level warning
    ) >"$STATE/log" 2>&1 &
    local pid=$!
    echo "$pid" >"$PIDFILE"
    echo "$data" >"$STATE/data_dir"
    echo "http://127.0.0.1:$port" >"$STATE/url"
    # Wait until it answers (up to 30 s).
    for _ in $(seq 1 60); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$STATE/log" >&2
            die "the sandbox exited during start-up (log above)"
        fi
        if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/messageexchange/_ping', timeout=1)" 2>/dev/null; then
            echo "mesh-sandbox $VERSION running: PID $pid, http://127.0.0.1:$port (target mesh://127.0.0.1:$port)"
            echo "  SHARED_KEY=BackBone AUTH_MODE=full STORE_MODE=file MAILBOXES_DATA_DIR=$data"
            echo "  note: the sandbox's file store does not fsync; its 202 is not a durability promise"
            echo "  log: $STATE/log"
            return 0
        fi
        sleep 0.5
    done
    die "the sandbox did not answer on 127.0.0.1:$port within 30 s (PID $pid, log $STATE/log)"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "mesh-sandbox is not running"
        rm -f "$PIDFILE"
        return 0
    fi
    kill "$pid"
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"
    fi
    rm -f "$PIDFILE"
    if [ -f "$STATE/data_dir" ]; then
        local data
        data="$(cat "$STATE/data_dir")"
        case "$data" in "${TMPDIR:-/tmp}"/mesh-sandbox-data.*) rm -rf -- "$data" ;; esac
        rm -f "$STATE/data_dir"
    fi
    echo "mesh-sandbox stopped (PID $pid)"
}

case "${1:-}" in
    start) start "${2:-8700}" ;;
    stop) stop ;;
    status)
        if pid="$(running_pid)"; then
            echo "running: PID $pid, $(cat "$STATE/url"), data $(cat "$STATE/data_dir" 2>/dev/null)"
        else
            echo "not running"
        fi
        ;;
    *) die "usage: $0 start [PORT] | stop | status" ;;
esac
