#!/usr/bin/env bash
# The test command: every test of the workspace (unit, multi-node integration, the CLI and the
# devnet itself). It first installs what the tests need (cargo-nextest, anvil: seconds when they
# are present). Extra arguments go to nextest, e.g. `scripts/test.sh -p conclave-net`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh tests
exec cargo nextest run --workspace --no-fail-fast "$@"
