#!/usr/bin/env bash
# Compile contracts/*.sol into contracts/out/<Name>.json, or DIR/*.sol into
# DIR/out/ (checked in; the Rust code include_str!s them). Installs the test
# peers (solc) first.
# Usage: contracts/compile.sh [DIR]     e.g. contracts/compile.sh gateway-bridge/contracts
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
PRIVIDIUM_PEERS="$("$here/../deploy/dev/install-peers.sh" | tail -n 1)"
export PRIVIDIUM_PEERS
exec node "$here/compile.js" "$@"
