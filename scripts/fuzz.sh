#!/usr/bin/env bash
# Fuzzes every decoder that reads bytes from the network or from disk (fuzz/README.md): each
# cargo-fuzz target for a bounded time, starting from the committed seeds in fuzz/corpus/.
#
#   scripts/fuzz.sh [target…]     (no argument: every target, `cargo fuzz list`)
#
#   FUZZ_SECONDS     seconds per target (default 30)
#   FUZZ_TARGET_DIR  build cache, outside the clone (default /var/tmp/conclave-fuzz-target)
#
# Needs the nightly toolchain; installs cargo-fuzz (from crates.io) when it is missing. Builds
# every target once, then runs the binaries directly. The committed corpus is only read: inputs
# libFuzzer finds go to a temporary folder that is removed afterwards. Exits non-zero when any
# target crashed, naming each one and where its crashing input was saved
# (fuzz/artifacts/<target>/, ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/conclave-fuzz-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is missing (cargo fuzz needs it): rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (compiles from crates.io: a few minutes, once)"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets found" >&2; exit 2; }

# Scratch space: each target's new inputs, its log, and TMPDIR for the targets that write the
# input to a file (tmpfs when there is one: the state-store target commits a database per input).
base="${FUZZ_WORK_DIR:-/dev/shm}"
[ -d "$base" ] && [ -w "$base" ] || base="${TMPDIR:-/tmp}"
work="$(mktemp -d "$base/conclave-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== fuzz build (${#targets[@]} targets)"
build_start=$SECONDS
if [ ${#targets[@]} -eq 1 ]; then
  cargo +nightly fuzz build "${targets[0]}"
else
  cargo +nightly fuzz build
fi
echo "fuzz: built in $((SECONDS - build_start)) s"
# The binaries are run directly (what `cargo fuzz run` does after building, with its
# sanitizer options): one build serves every target, even if sources change meanwhile.
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$CARGO_TARGET_DIR/$triple/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

failed=()
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/$t"
  if [ ! -d "$seeds" ]; then
    echo "fuzz: $t has no seed corpus ($seeds)" >&2
    failed+=("$t (no seed corpus)")
    continue
  fi
  mkdir -p "$work/$t/new" "$work/$t/tmp" "fuzz/artifacts/$t"
  log="$work/$t/log"
  echo "== fuzz $t (${seconds} s, $(find "$seeds" -type f | wc -l) seeds)"
  # The first corpus folder is the one libFuzzer writes to; the committed one is only read.
  if TMPDIR="$work/$t/tmp" "$bin_dir/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    "$work/$t/new" "$seeds" >"$log" 2>&1; then
    grep -E '^Done [0-9]+ runs|^stat::number_of_executed_units' "$log" | head -n 1 || true
    echo "fuzz: $t clean ($(find "$work/$t/new" -type f | wc -l) new inputs, not kept)"
  else
    echo "fuzz: $t FAILED; the end of its output:" >&2
    tail -n 60 "$log" >&2
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  echo "fuzz: crashing inputs are under fuzz/artifacts/<target>/; reproduce one with" >&2
  echo "      cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets clean (${seconds} s each)"
