#!/usr/bin/env bash
# Installs what building and testing Conclave needs beyond the Rust toolchain itself.
# Idempotent: already-present tools are left alone. Called by .ci/run and by the README.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

# rustfmt and clippy are rustup components of the installed toolchain.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    echo "installing rustup component ${component}"
    rustup component add "${component}"
  fi
done

# cargo-nextest runs the test suite.
if ! have cargo-nextest; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# anvil (local EVM chain for registry tests and the chain devnet) and solc (contract builds),
# pinned in package.json / package-lock.json, installed under the repo (ignored by git).
cd "$(dirname "$0")/.."
if ! have npm; then
  echo "installing Node.js and npm (Debian packages)"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund --silent
mkdir -p bin
ln -sfn ../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil bin/anvil
bin/anvil --version | head -1
