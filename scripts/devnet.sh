#!/usr/bin/env bash
# The main job: a local Conclave network on loopback (default 7 members, 20 s of traffic, one
# intruder, one member removed mid-run). Arguments go to `conclave devnet`, e.g. --nodes 10.
# A run on a chain (`--chain anvil`, `--scenario stale-chain`) first installs anvil if missing,
# and one on the Stacks registry (`--registry stacks`) the Clarity VM (@stacks/clarinet-sdk).
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" anvil "* | *"--chain=anvil"* | *"stale-chain"* | *" stacks "* | *"--registry=stacks"*)
    scripts/install-deps.sh chain ;;
esac
exec cargo run -q -p conclave-cli -- devnet "$@"
