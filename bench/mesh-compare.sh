#!/usr/bin/env bash
# Spine over the MESH API vs NHS's mesh-sandbox, beside Spine's native
# protocol, on one workload in one session: ROUNDS rounds (default 3), each
# running every case once against a fresh server, in an order that rotates
# from round to round; then the medians.
#
#   cargo build --release -p spine-actors -p spine-bench
#   bench/mesh-compare.sh [ROUNDS]
#
# Cases (CASES=... to choose; default all):
#   native        spine-bench load --target native:// (sends only)   Spine, native protocol
#   mesh          --target mesh:// (sends only)                      Spine, MESH API
#   sandbox       --target mesh:// (sends only)                      mesh-sandbox
#   native-c      as native, with 3 consumers (lost/duplicate check)
#   mesh-c        as mesh, with 3 consumers
#   sandbox-c     as sandbox, with 3 consumers
#   mesh-r        as mesh-c at a fixed --rate $RATE (default 300 msgs/s,
#   sandbox-r     which mesh-sandbox sustains): latency at equal load
#
# Knobs (environment): SECONDS_PER_RUN (10), SIZE (1024), PRODUCERS (4),
# WINDOW (64: MESH connections per producer), NATIVE_WINDOW (256: sends in
# flight per native connection, as in the native table), SANDBOX_WINDOW
# (WINDOW), CONSUMER_CONNECTIONS (8), RATE (300), BIN (target/release), OUT
# (target/bench-results/mesh), PORT_BASE (18700).
#
# Every server is fresh per run: Spine on its own new data directory under
# target/tmp (the same disk as the other benchmarks; durable, fdatasync
# before every 202), mesh-sandbox started by bench/mesh-sandbox.sh (its
# file store does not fsync, and it slows as its inbox grows, so a fresh
# one per run is the fair comparison). Servers are stopped by their PID.
# Each run's JSON is kept in $OUT/ROUND-CASE.json, with the server's CPU
# seconds over the whole run (baseline and drain included) in
# ROUND-CASE.cpu; reported as server CPU µs per acknowledged send (the
# client's own CPU, in ROUND-CASE.client, includes the 2 s raw-TCP baseline,
# so it is not divided per message), with `other_cores`: the cores the rest of the machine kept busy
# during the run (anything well above 0 means that run is noisy).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-3}"
BIN="${BIN:-$ROOT/target/release}"
OUT="${OUT:-$ROOT/target/bench-results/mesh}"
SECS="${SECONDS_PER_RUN:-10}"
SIZE="${SIZE:-1024}"
PRODUCERS="${PRODUCERS:-4}"
WINDOW="${WINDOW:-64}"
NATIVE_WINDOW="${NATIVE_WINDOW:-256}"
SANDBOX_WINDOW="${SANDBOX_WINDOW:-$WINDOW}"
CONSUMER_CONNECTIONS="${CONSUMER_CONNECTIONS:-8}"
PORT_BASE="${PORT_BASE:-18700}"
RATE="${RATE:-300}"
CASES="${CASES:-native mesh sandbox native-c mesh-c sandbox-c}"
NATIVE_PORT=$((PORT_BASE + 1))
MESH_PORT=$((PORT_BASE + 2))
METRICS_PORT=$((PORT_BASE + 3))
SANDBOX_PORT=$((PORT_BASE + 4))

mkdir -p "$OUT" "$ROOT/target/tmp"
for b in spine spine-bench; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: cargo build --release -p spine-actors -p spine-bench" >&2; exit 1; }
done

SPINE_PID=""
SPINE_DIR=""
cleanup() {
    if [ -n "$SPINE_PID" ] && kill -0 "$SPINE_PID" 2>/dev/null; then kill "$SPINE_PID"; wait "$SPINE_PID" 2>/dev/null || true; fi
    [ -n "$SPINE_DIR" ] && rm -rf -- "$SPINE_DIR"
    "$ROOT/bench/mesh-sandbox.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_port() { # host port
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2
    return 1
}

cpu_ticks() { # pid -> utime+stime in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

machine_busy() { # all CPUs' busy clock ticks (not idle, not iowait)
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

start_spine() {
    SPINE_DIR="$(mktemp -d "$ROOT/target/tmp/mesh-compare-spine.XXXXXX")"
    "$BIN/spine" serve --data-dir "$SPINE_DIR/data" \
        --native-listen "127.0.0.1:$NATIVE_PORT" --mesh-listen "127.0.0.1:$MESH_PORT" \
        --quic-enabled false --metrics-listen "127.0.0.1:$METRICS_PORT" \
        --log-level warn >"$SPINE_DIR/log" 2>&1 &
    SPINE_PID=$!
    wait_port 127.0.0.1 "$NATIVE_PORT"
    wait_port 127.0.0.1 "$MESH_PORT"
    SERVER_PID=$SPINE_PID
}

stop_spine() {
    kill "$SPINE_PID"
    wait "$SPINE_PID" 2>/dev/null || true
    SPINE_PID=""
    rm -rf -- "$SPINE_DIR"
    SPINE_DIR=""
}

start_sandbox() {
    "$ROOT/bench/mesh-sandbox.sh" start "$SANDBOX_PORT" >/dev/null
    SERVER_PID="$(cat "$ROOT/target/mesh-sandbox/pid")"
}

stop_sandbox() {
    "$ROOT/bench/mesh-sandbox.sh" stop >/dev/null
}

run_case() { # round case
    local round=$1 case=$2 target window consumers rate=()
    case "$case" in
        native*) target="native://127.0.0.1:$NATIVE_PORT"; window=$NATIVE_WINDOW ;;
        mesh*) target="mesh://127.0.0.1:$MESH_PORT"; window=$WINDOW ;;
        sandbox*) target="mesh://127.0.0.1:$SANDBOX_PORT"; window=$SANDBOX_WINDOW ;;
    esac
    case "$case" in *-c) consumers=3 ;; *-r) consumers=3; rate=(--rate "$RATE") ;; *) consumers=0 ;; esac
    case "$case" in sandbox*) start_sandbox ;; *) start_spine ;; esac
    local ticks0 ticks1 busy0 busy1 t0 t1 hz
    hz=$(getconf CLK_TCK)
    ticks0=$(cpu_ticks "$SERVER_PID")
    busy0=$(machine_busy)
    t0=$(date +%s.%N)
    /usr/bin/time -o "$OUT/$round-$case.client" -f "%U %S" "$BIN/spine-bench" load --target "$target" --seconds "$SECS" --size "$SIZE" \
        --producers "$PRODUCERS" --window "$window" --consumers "$consumers" \
        --consumer-connections "$CONSUMER_CONNECTIONS" --drain-seconds 120 "${rate[@]}" \
        --json "$OUT/$round-$case.json" >/dev/null 2>"$OUT/$round-$case.stderr"
    ticks1=$(cpu_ticks "$SERVER_PID")
    busy1=$(machine_busy)
    t1=$(date +%s.%N)
    echo "$ticks0 $ticks1 $hz" | awk '{printf "%.3f\n", ($2-$1)/$3}' >"$OUT/$round-$case.cpu"
    # Cores the rest of the machine kept busy meanwhile (noise).
    read -r cu cs <"$OUT/$round-$case.client"
    echo "$busy0 $busy1 $hz $(cat "$OUT/$round-$case.cpu") $cu $cs $t0 $t1" |
        awk '{o = (($2-$1)/$3 - $4 - $5 - $6) / ($8-$7); printf "%.2f\n", (o < 0 ? 0 : o)}' >"$OUT/$round-$case.other"
    case "$case" in sandbox*) stop_sandbox ;; *) stop_spine ;; esac
    jq -c --arg case "$case" --arg round "$round" --arg cpu "$(cat "$OUT/$round-$case.cpu")" \
        --arg other "$(cat "$OUT/$round-$case.other")" \
        '{round: $round, case: $case, msgs_per_s: (.throughput_msgs_per_s|floor), p50_ms: (.latency_us.p50/1000), p99_ms: (.latency_us.p99/1000), p999_ms: (.latency_us.p999/1000), lost, duplicates, send_errors, consumer_errors, received, raw_tcp: (.raw_tcp_msgs_per_s|floor), server_cpu_us_per_msg: (($cpu|tonumber) * 1e6 / ([.acked, 1]|max) | floor), other_cores: ($other|tonumber)}' \
        "$OUT/$round-$case.json" | tee "$OUT/$round-$case.row"
}

read -r -a cases <<<"$CASES"
echo "mesh-compare: $ROUNDS rounds x (${cases[*]}), ${SECS}s each, $SIZE B, $PRODUCERS producers, MESH window $WINDOW, native window $NATIVE_WINDOW; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    n=${#cases[@]}
    for k in $(seq 0 $((n - 1))); do
        run_case "$round" "${cases[$(((k + round - 1) % n))]}"
    done
done

echo "medians of $ROUNDS rounds (load average now: $(cut -d' ' -f1-3 /proc/loadavg)):"
for case in "${cases[@]}"; do
    files=()
    for round in $(seq 1 "$ROUNDS"); do files+=("$OUT/$round-$case.row"); done
    jq -s -c --arg case "$case" '
        def median: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
        {case: $case,
         msgs_per_s: (map(.msgs_per_s) | median | floor),
         p50_ms: (map(.p50_ms) | median), p99_ms: (map(.p99_ms) | median), p999_ms: (map(.p999_ms) | median),
         lost: (map(.lost) | add), duplicates: (map(.duplicates) | add),
         send_errors: (map(.send_errors) | add), consumer_errors: (map(.consumer_errors) | add),
         server_cpu_us_per_msg: (map(.server_cpu_us_per_msg) | median),
         other_cores: map(.other_cores),
         raw_tcp_msgs_per_s: (map(.raw_tcp) | median | floor),
         runs: map(.msgs_per_s)}' "${files[@]}"
done
