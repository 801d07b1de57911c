#!/usr/bin/env bash
# Installs what building and testing Conclave needs beyond the Rust toolchain itself.
#
#   scripts/install-deps.sh [chain] [tests] [lints] [fuzz]     (no argument: all four)
#     chain   anvil (a local EVM chain), solc and the Clarity VM (@stacks/clarinet-sdk, for the
#             Stacks registry), pinned in package-lock.json, under the repo
#     tests   chain, cargo-nextest and iproute2 (the partition scenario's network namespaces;
#             scripts/test.sh calls this)
#     lints   the rustfmt and clippy components (.ci/run)
#     fuzz    the nightly toolchain and cargo-fuzz (scripts/fuzz.sh, .ci/run)
#
# Idempotent and cheap when everything is present: nothing is downloaded or reinstalled unless
# it is missing or package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }

want_chain=0 want_nextest=0 want_lints=0 want_fuzz=0
[ $# -eq 0 ] && set -- chain tests lints fuzz
for target in "$@"; do
  case "$target" in
    chain) want_chain=1 ;;
    tests) want_chain=1 want_nextest=1 ;;
    lints) want_lints=1 ;;
    fuzz) want_fuzz=1 ;;
    *) echo "install-deps: unknown target '$target' (expected chain, tests, lints or fuzz)" >&2; exit 2 ;;
  esac
done

if [ "$want_lints" = 1 ]; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
      echo "install-deps: installing rustup component ${component}"
      rustup component add "${component}"
    fi
  done
fi

if [ "$want_nextest" = 1 ] && ! have cargo-nextest; then
  echo "install-deps: installing cargo-nextest (compiles from crates.io: a few minutes, once)"
  cargo install --locked cargo-nextest
fi

# The partition scenario puts each member in a network namespace (`ip netns`); without root or
# iproute2 its test says it skipped and why.
if [ "$want_nextest" = 1 ] && ! have ip && [ "$(id -u)" = 0 ] && have apt-get; then
  echo "install-deps: installing iproute2 (Debian package)"
  apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null
fi

if [ "$want_fuzz" = 1 ]; then
  if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "install-deps: installing the nightly toolchain (cargo fuzz needs it)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! have cargo-fuzz; then
    echo "install-deps: installing cargo-fuzz (compiles from crates.io: a few minutes, once)"
    cargo install --locked cargo-fuzz
  fi
fi

if [ "$want_chain" = 1 ]; then
  # The stamp records which package-lock.json node_modules was installed from; `npm ci` only
  # runs when it is absent or different (or anvil is missing).
  stamp=node_modules/.conclave-lock-sha256
  lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  anvil=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
  if [ ! -x "$anvil" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    if ! have npm; then
      echo "install-deps: installing Node.js and npm (Debian packages)"
      apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    echo "install-deps: installing anvil, solc and the Clarity VM from package-lock.json (npm ci)"
    npm ci --no-audit --no-fund --silent
    echo "$lock_sum" >"$stamp"
  fi
  mkdir -p bin
  ln -sfn ../"$anvil" bin/anvil
  if ! bin/anvil --version >/dev/null 2>&1; then
    echo "install-deps: bin/anvil does not run: $(bin/anvil --version 2>&1 | head -1)" >&2
    exit 1
  fi
fi
