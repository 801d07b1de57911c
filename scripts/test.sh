#!/usr/bin/env bash
# The test command: every test of the workspace (unit, multi-node integration, the CLI and the
# devnet itself). Extra arguments go to nextest, e.g. `scripts/test.sh -p conclave-net`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo nextest run --workspace --no-fail-fast "$@"
