#!/usr/bin/env bash
# Bounded fuzz run of every cargo-fuzz target, as CI runs it (see
# fuzz/README.md). Works on the stable toolchain: the targets are built
# without a sanitizer (`--sanitizer none`), which needs no nightly flags.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20, all)
#
# Steps: install cargo-fuzz if missing; check fuzz/Cargo.lock is current
# (--locked); replay every seed and kept regression through the checks and
# check the seeds match the generator (`cargo test`); build the targets
# once; run each for SECONDS_PER_TARGET from the committed seeds (plus
# fuzz/regressions/<target>/, with fuzz/dicts/<target>.dict if any), new
# inputs going to a scratch directory under fuzz/target so the committed
# corpus is never touched. Exits non-zero if any target crashes, printing
# the panic, the stack and the input in hex; the input is kept in
# fuzz/artifacts/<target>/.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
secs=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(frame_codec envelope mesh_headers nhsmesh_token directory)
fi
export RUST_BACKTRACE=1

# On this project's machines /dev/null can be a regular file that keeps
# whatever a tool last "discarded" into it (a build script's compiler
# errors, say), and cargo's target probe compiles `rustc -` with its stdin
# from /dev/null: a fresh target directory (new RUSTFLAGS) then fails with
# "unknown start of token". Empty it before each build; on a real device
# this does nothing.
empty_dev_null() {
  if [ -f /dev/null ] && [ -w /dev/null ]; then
    : >/dev/null
  fi
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  empty_dev_null
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version

# cargo fuzz has no --locked; this fails if fuzz/Cargo.lock is stale.
cargo metadata --manifest-path fuzz/Cargo.toml --locked --format-version 1 >/dev/null
failed=()
empty_dev_null
if ! cargo test --manifest-path fuzz/Cargo.toml --locked --quiet; then
  failed+=("replay-tests")
fi
empty_dev_null
if ! cargo fuzz build --sanitizer none; then
  # cargo caches even a failed probe: drop it and try once more.
  echo "fuzz build failed; retrying once with a fresh target probe"
  rm -f fuzz/target/.rustc_info.json
  empty_dev_null
  cargo fuzz build --sanitizer none
fi

for t in "${targets[@]}"; do
  scratch=fuzz/target/scratch-corpus/$t
  log=fuzz/target/logs/$t.log
  mkdir -p "$scratch" "$(dirname "$log")"
  dirs=("fuzz/corpus/$t")
  if [ -d "fuzz/regressions/$t" ]; then
    dirs+=("fuzz/regressions/$t")
  fi
  opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048)
  if [ -f "fuzz/dicts/$t.dict" ]; then
    opts+=(-dict="fuzz/dicts/$t.dict")
  fi
  start=$SECONDS
  if cargo fuzz run "$t" --sanitizer none "$scratch" "${dirs[@]}" -- "${opts[@]}" >"$log" 2>&1; then
    printf '%-14s ok   %3ss  %s\n' "$t" "$((SECONDS - start))" \
      "$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | tr -s " \t" " ")"
  else
    printf '%-14s FAIL %3ss (log: %s)\n' "$t" "$((SECONDS - start))" "$log"
    failed+=("$t")
    # The panic and its stack, libFuzzer's summary and cargo fuzz's
    # reproduction hints.
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)' "$log" | tail -120
    for f in $(grep -o 'Test unit written to [^ ]*' "$log" | awk '{print $5}'); do
      [ -f "$f" ] || continue
      echo "--- input $f ($(wc -c <"$f") bytes), hex:"
      od -An -v -tx1 "$f" | tr -d ' \n' | fold -w 128
      echo
    done
  fi
done

# The targets run, plus the replay tests.
passed=$((${#targets[@]} + 1 - ${#failed[@]}))
echo "fuzz: $passed passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz step failed in: ${failed[*]} (crash inputs kept in fuzz/artifacts/; see fuzz/README.md)" >&2
  exit 1
fi
