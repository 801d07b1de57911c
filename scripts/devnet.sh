#!/usr/bin/env bash
# The main job: a local Conclave network on loopback (default 7 members, 20 s of traffic, one
# intruder, one member removed mid-run). Arguments go to `conclave devnet`, e.g. --nodes 10.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q -p conclave-cli -- devnet "$@"
