#!/usr/bin/env bash
# Where the node's CPU goes per transaction, by stage: runs `prividium bench`
# flat out against a fresh `prividium dev` (every safeguard on), samples the
# node with perf (DWARF call graphs) while the load is on, and attributes
# each sample to a stage by its thread and its innermost recognised frame.
# The shares are scaled by the node's CPU per transaction that the bench
# measured, so the table reads in µs per transaction.
#
# Usage: scripts/profile-node.sh [--bin PATH] [--node-bin PATH]
#          [--scenario eth|erc20|oracle] [--txs N] [--seconds S] [--batch N]
# PERF_FREQ=HZ samples less often (499 by default) when perf slows the
# node past what its audit queue absorbs. PROFILE_KEEP=DIR keeps the
# samples (perf.txt: comm, ip, symbol, dso per frame) and the bench report
# there, for a finer look than the stage table.
# Needs perf (Debian linux-perf) and a release build with line tables
# (the workspace's release profile has them).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="" NODE_BIN="" SCENARIO=eth TXS=30000 SECONDS_=5 BATCH=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) BIN="$2"; shift 2 ;;
    --node-bin) NODE_BIN="$2"; shift 2 ;;
    --scenario) SCENARIO="$2"; shift 2 ;;
    --txs) TXS="$2"; shift 2 ;;
    --seconds) SECONDS_="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prividium-target}"
if [[ -z "$BIN" ]]; then
  cargo build --release -j2 -p appliance >&2
  BIN="$CARGO_TARGET_DIR/release/prividium"
fi
NODE_BIN="${NODE_BIN:-$BIN}"
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PRIVIDIUM_LOG=warn "$NODE_BIN" dev --data-dir "$WORK/node" --rpc-addr "127.0.0.1:$port" >"$WORK/node.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [[ -f "$WORK/node/dev.json" ]] && break; sleep 0.1; done
"$BIN" bench --dev-file "$WORK/node/dev.json" --scenario "$SCENARIO" --txs "$TXS" --batch "$BATCH" \
  --node-pid "$pid" --json >"$WORK/report.json" 2>"$WORK/bench.err" &
bench=$!
until grep -q "sending" "$WORK/bench.err"; do
  kill -0 "$bench" 2>/dev/null || { cat "$WORK/bench.err" >&2; exit 1; }
  sleep 0.1
done
sleep 0.5
perf record -q -F "${PERF_FREQ:-499}" -g --call-graph dwarf,16384 -p "$pid" -o "$WORK/perf.data" -- sleep "$SECONDS_" 2>/dev/null
wait "$bench" || { cat "$WORK/bench.err" >&2; exit 1; }
# perf script exits non-zero on harmless warnings (lost samples).
perf script -i "$WORK/perf.data" -F comm,ip,sym,dso 2>/dev/null >"$WORK/perf.txt" || true
if [[ -n "${PROFILE_KEEP:-}" ]]; then
  mkdir -p "$PROFILE_KEEP" && cp "$WORK/perf.txt" "$WORK/report.json" "$PROFILE_KEEP/"
fi
python3 - "$WORK/perf.txt" "$WORK/report.json" <<'PY'
import json, re, sys
text = open(sys.argv[2]).read()
report = json.loads(text[text.index("{"):])
per_tx = report["node_cpu_us_per_tx"]
# Innermost recognised frame wins, so a keccak inside execution counts as
# execution and a Cedar call inside admission as policy.
STAGES = [
    ("signer recovery", r"secp256k1|k256::|recover_signer|ecdsa"),
    ("policy (Cedar)", r"cedar_policy|PolicyEngine|policy::guard|evaluate_against"),
    ("audit writer", r"audit::writer|audit::store|AuditDb|sqlx|sqlite3|seal_batch|leaf_hash|HeadSigner"),
    ("audit events (emitting)", r"audit::trail|TrailSink|AuditLog::|Reservation|read_tally|decision_fold|AuditEvent"),
    ("admission execution (preflight)", r"Sequencer::preflight|BlockExecutor|revm"),
    ("mempool", r"mempool|Mempool"),
    ("decode / validate", r"decode_2718|Sequencer::validate|intrinsic_gas"),
    ("JSON", r"serde_json|serde::"),
    ("TLS", r"rustls|ring::|aws_lc"),
    ("HTTP / axum", r"hyper|axum|tower|h2::|http::"),
    ("tokio scheduling", r"tokio::runtime|tokio::sync|parking_lot"),
    ("allocator", r"malloc|free|realloc|_int_|jemalloc|mi_"),
    ("kernel (syscalls, network)", r"\[kernel"),
]
samples, stack, comm = [], [], None
def flush():
    if comm is not None:
        samples.append((comm, stack))
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        flush(); stack, comm = [], None
    elif not line[0].isspace():
        flush(); stack = []; comm = line.split()[0]
    else:
        stack.append(line.strip())
flush()
counts = {}
for comm, frames in samples:
    if comm.startswith("produce"):
        stage = "block production (thread produce)"
    elif comm.startswith("derive"):
        stage = "derive: roots, indexes, store (thread derive)"
    elif comm.startswith("sqlx-sqlite"):
        stage = "audit writer"
    else:
        stage = "other"
        for f in frames:
            hit = next((name for name, pat in STAGES if re.search(pat, f)), None)
            if hit:
                stage = hit
                break
    counts[stage] = counts.get(stage, 0) + 1
total = sum(counts.values()) or 1
print(f"{report['scenario']}: {report['sustained_tps']:.0f} tx/s, node CPU {per_tx:.0f} µs per transaction, {total} samples")
print(f"| stage | share | µs per transaction |")
print(f"|---|---|---|")
for stage, n in sorted(counts.items(), key=lambda kv: -kv[1]):
    print(f"| {stage} | {100 * n / total:.1f} % | {per_tx * n / total:.0f} |")
PY
