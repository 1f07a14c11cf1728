#!/usr/bin/env bash
# Black-box MESH API compatibility tests: NHS Digital's real Python
# mesh-client (tests/mesh/requirements.txt) against the real `spine serve`.
#
#   tests/mesh/run.sh [pytest args...]     e.g. -k chunked, -x, -vv
#
# Creates target/mesh-venv from requirements.txt when missing (or when the
# requirements changed), builds the debug binary unless SPINE_BIN is set,
# and runs pytest under a global time limit (MESH_SUITE_TIMEOUT seconds,
# default 900). Per-test limit: MESH_TEST_TIMEOUT (default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/mesh-venv
req=tests/mesh/requirements.txt
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements.txt"; then
  echo "mesh tests: creating $venv from $req" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements.txt"
fi

if [ -z "${SPINE_BIN:-}" ]; then
  cargo build --bin spine --locked
  export SPINE_BIN="$PWD/target/debug/spine"
fi

export PYTHONDONTWRITEBYTECODE=1
exec timeout --kill-after=30 "${MESH_SUITE_TIMEOUT:-900}" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/mesh "$@"
