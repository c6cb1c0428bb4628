#!/usr/bin/env bash
# Throughput of two builds of the node side by side, in one run: starts
# `A dev`, then `B dev`, then A and B again (alternating, so drift in the
# machine's load hits both), each on a fresh data directory with the same
# `prividium bench` load, and prints every report and B's change against A.
# For a before/after of a change: build the older revision's release binary
# in a worktree, copy it out, then build this one.
# Usage: scripts/bench-compare.sh BIN_A BIN_B [--rounds N] [bench args…]
#   e.g. scripts/bench-compare.sh /tmp/prividium-before target/release/prividium --scenario erc20 --txs 20000
set -euo pipefail
A="$1"; B="$2"; shift 2
ROUNDS=2
if [[ "${1:-}" == "--rounds" ]]; then ROUNDS="$2"; shift 2; fi
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

run_one() { # <binary> <label> [bench args…]
  local bin="$1" label="$2"; shift 2
  local dir="$WORK/$label" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PRIVIDIUM_LOG=warn "$bin" dev --data-dir "$dir" --rpc-addr "127.0.0.1:$port" &
  local pid=$!
  for _ in $(seq 1 300); do [[ -f "$dir/dev.json" ]] && break; sleep 0.1; done
  "$B" bench --dev-file "$dir/dev.json" --json "$@" > "$WORK/$label.json"
  kill -TERM "$pid"; wait "$pid" || true
}

for r in $(seq 1 "$ROUNDS"); do
  run_one "$A" "a$r" "$@"
  run_one "$B" "b$r" "$@"
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def report(label):
    text = open(f"{work}/{label}.json").read()
    return json.loads(text[text.index("{"):])
print(f"{'run':6} {'tps':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
tps = {"a": [], "b": []}
for r in range(1, rounds + 1):
    for side in "ab":
        x = report(f"{side}{r}")
        tps[side].append(x["sustained_tps"])
        print(f"{side.upper()}{r:<5} {x['sustained_tps']:>10.0f} {x['latency_ms_p50']:>8.0f} {x['latency_ms_p95']:>8.0f} {x['latency_ms_p99']:>8.0f}")
a, b = (sum(v) / len(v) for v in (tps["a"], tps["b"]))
print(f"mean tps A {a:.0f}, B {b:.0f}: B costs {100 * (1 - b / a):.1f} % of A's throughput")
# One slow run (a page-cache flush, a neighbour's burst) moves a mean of few
# runs a lot; the median of several is the steadier figure.
a, b = (sorted(v)[len(v) // 2] for v in (tps["a"], tps["b"]))
print(f"median tps A {a:.0f}, B {b:.0f}: B costs {100 * (1 - b / a):.1f} % of A's throughput")
PY
