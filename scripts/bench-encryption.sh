#!/usr/bin/env bash
# Throughput with encryption at rest on vs off, in one run: starts a release
# `prividium dev` twice on fresh data directories (--encryption off, then the
# default local key file), drives the same `prividium bench` load at each,
# and prints both reports and the overhead.
# Usage: scripts/bench-encryption.sh [--scenario eth|erc20|oracle] [--txs N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prividium-target}"
cargo build -j"${JOBS:-2}" --release -p appliance >&2
BIN="$CARGO_TARGET_DIR/release/prividium"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

run_one() { # <encryption mode> [bench args…]
  local mode="$1"; shift
  local dir="$WORK/$mode" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PRIVIDIUM_LOG=warn "$BIN" dev --data-dir "$dir" --rpc-addr "127.0.0.1:$port" --encryption "$mode" &
  local pid=$!
  for _ in $(seq 1 300); do [[ -f "$dir/dev.json" ]] && break; sleep 0.1; done
  "$BIN" bench --dev-file "$dir/dev.json" --json "$@" > "$WORK/$mode.json"
  kill -TERM "$pid"; wait "$pid" || true
}

shift_args=("$@")
run_one off "${shift_args[@]}"
run_one local "${shift_args[@]}"
python3 - "$WORK/off.json" "$WORK/local.json" <<'PY'
import json, sys
def report(path):
    text = open(path).read()
    return json.loads(text[text.index("{"):])
off, on = (report(p) for p in sys.argv[1:3])
print(f"{'':12} {'tps':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
for name, r in (("off", off), ("encrypted", on)):
    print(f"{name:12} {r['sustained_tps']:>10.0f} {r['latency_ms_p50']:>8.0f} {r['latency_ms_p95']:>8.0f} {r['latency_ms_p99']:>8.0f}")
print(f"throughput overhead: {100 * (1 - on['sustained_tps'] / off['sustained_tps']):.1f} %")
PY
