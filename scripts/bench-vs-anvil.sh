#!/usr/bin/env bash
# The node against anvil, side by side in one run: for each scenario, a fresh
# `prividium dev` (TLS, API key, Cedar policy on every call frame, encryption
# at rest, audit trail, fsync'd block log: the defaults) and a fresh anvil
# (no TLS, no auth, no policy, no encryption, no audit, no durability) each
# take the same `prividium bench` load, alternating, ROUNDS times. The bench
# also measures this machine's ceiling for the scenario in the same run
# (cores / (decode + recover + execute) per transaction, in-process).
# Prints one table: median throughput of each, their ratio, the node's share
# of the ceiling, latency and CPU per transaction.
#
# Usage: scripts/bench-vs-anvil.sh [--rounds N] [--txs N] [--batch N]
#            [--scenarios eth,oracle,erc20] [--bin PATH] [--node-bin PATH]
# Without --bin it builds the release binary first; it is the load generator
# and, unless --node-bin names another build (an older one, for a before and
# after), the node. Anvil comes from the test
# peers (deploy/dev/install-peers.sh, @foundry-rs/anvil from npm), run as
# the issue that set the targets ran it; ANVIL_ARGS=--prune-history gives it
# its lighter configuration (see run_anvil). The raw
# reports stay in $BENCH_OUT (default: a temporary directory, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=1 TXS=20000 BATCH=1 SCENARIOS="eth,oracle,erc20" BIN="" NODE_BIN=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --txs) TXS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --node-bin) NODE_BIN="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prividium-target}"
export PRIVIDIUM_PEERS="${PRIVIDIUM_PEERS:-$HOME/.cache/prividium-peers}"
if [[ -z "$BIN" ]]; then
  cargo build --release -j2 -p appliance >&2
  BIN="$CARGO_TARGET_DIR/release/prividium"
fi
NODE_BIN="${NODE_BIN:-$BIN}"
deploy/dev/install-peers.sh >&2
# The platform binary itself, not npm's launcher, so its pid is anvil's.
ANVIL="$(ls -d "$PRIVIDIUM_PEERS"/node_modules/@foundry-rs/anvil-linux-*/bin/anvil | head -1)"
[[ -x "$ANVIL" ]] || { echo "anvil binary not found under $PRIVIDIUM_PEERS" >&2; exit 1; }
# Anvil's first default account (the well-known test mnemonic).
ANVIL_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

OUT="${BENCH_OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "reports in $OUT" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_prividium() { # <scenario> <label> [bench args…]
  local scenario="$1" label="$2" dir="$WORK/$2" port pid
  shift 2
  port=$(free_port)
  PRIVIDIUM_LOG=warn "$NODE_BIN" dev --data-dir "$dir" --rpc-addr "127.0.0.1:$port" >"$OUT/$label.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do [[ -f "$dir/dev.json" ]] && break; sleep 0.1; done
  [[ -f "$dir/dev.json" ]] || { echo "prividium dev did not start; see $OUT/$label.log" >&2; exit 1; }
  "$BIN" bench --dev-file "$dir/dev.json" --scenario "$scenario" --batch "$BATCH" \
    --node-pid "$pid" --json "$@" > "$OUT/$label.json"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"
}

run_anvil() { # <scenario> <label>
  local port pid
  port=$(free_port)
  # The gas limit is raised only so the bench's setup (minting to 1,000
  # holders per transaction) fits a block; the measured transactions are
  # far below the default limit either way. ANVIL_ARGS adds flags, e.g.
  # `--prune-history`: by default anvil keeps every block's state in
  # memory, which with 50,000 funded accounts costs it most of its CPU and
  # about 100 MB a second; pruned, it is faster (the node keeps every
  # historical state either way).
  # shellcheck disable=SC2086 # ANVIL_ARGS is a list of flags
  "$ANVIL" --port "$port" --block-time 0.1 --gas-limit 1000000000 --balance 100000000 \
    ${ANVIL_ARGS:-} --quiet >"$OUT/$2.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    curl -sf -X POST -H 'content-type: application/json' \
      --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
      "http://127.0.0.1:$port" >/dev/null && break
    sleep 0.1
  done
  "$BIN" bench --rpc-url "http://127.0.0.1:$port" --funder-key "$ANVIL_KEY" --scenario "$1" \
    --txs "$TXS" --batch "$BATCH" --node-pid "$pid" --json > "$OUT/$2.json"
  kill -TERM "$pid"; wait "$pid" || true
}

sustained() { python3 -c 'import json,sys; t=open(sys.argv[1]).read(); print(json.loads(t[t.index("{"):])["sustained_tps"])' "$1"; }

IFS=, read -ra LIST <<< "$SCENARIOS"
for s in "${LIST[@]}"; do
  for r in $(seq 1 "$ROUNDS"); do
    echo "== $s round $r: prividium, flat out ==" >&2
    run_prividium "$s" "prividium-$s-$r" --txs "$TXS" --ceiling
    # Latency is judged at 80 % of the rate just sustained, ten seconds of it.
    rate=$(python3 -c "print(max(1, int(0.8 * $(sustained "$OUT/prividium-$s-$r.json"))))")
    echo "== $s round $r: prividium at $rate tx/s ==" >&2
    run_prividium "$s" "prividium80-$s-$r" --txs $((rate * 10)) --rate "$rate"
    echo "== $s round $r: anvil, flat out ==" >&2
    run_anvil "$s" "anvil-$s-$r"
  done
done

python3 - "$OUT" "$ROUNDS" "$SCENARIOS" "$TXS" "$BATCH" <<'PY'
import json, sys, statistics, datetime, os
out, rounds, scenarios, txs, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4], sys.argv[5]
def report(label):
    text = open(f"{out}/{label}.json").read()
    return json.loads(text[text.index("{"):])
med = statistics.median
print(f"{datetime.date.today()}, {os.cpu_count()} cores, {txs} transactions per run, "
      f"{batch} per request, median of {rounds} round(s); node and generator share the cores")
print()
print("| scenario | prividium | anvil | ratio | ceiling (recover + execute) | share of ceiling | prividium p50 / p99 at 80 % | flat-out p50 / p99 ms (prividium; anvil) | node CPU µs/tx (prividium / anvil) | generator CPU µs/tx |")
print("|---|---|---|---|---|---|---|---|---|---|")
names = {"eth": "ETH transfers", "oracle": "oracle updates", "erc20": "ERC-20 among 50,000 holders"}
for s in scenarios:
    p = [report(f"prividium-{s}-{r}") for r in range(1, rounds + 1)]
    p80 = [report(f"prividium80-{s}-{r}") for r in range(1, rounds + 1)]
    a = [report(f"anvil-{s}-{r}") for r in range(1, rounds + 1)]
    pt, at = med(x["sustained_tps"] for x in p), med(x["sustained_tps"] for x in a)
    ceil = med(x["ceiling"]["tps"] for x in p)
    rec = med(x["ceiling"]["recover_us_per_tx"] for x in p)
    exe = med(x["ceiling"]["execute_us_per_tx"] for x in p)
    lat = lambda xs: f"{med(x['latency_ms_p50'] for x in xs):.0f} / {med(x['latency_ms_p99'] for x in xs):.0f}"
    cpu = lambda xs: med(x["node_cpu_us_per_tx"] for x in xs)
    gen = med(x["generator_cpu_us_per_tx"] for x in p + a)
    print(f"| {names.get(s, s)} | {pt:,.0f} tx/s | {at:,.0f} tx/s | {pt / at:.2f} | {ceil:,.0f} tx/s "
          f"({rec:.0f} + {exe:.0f} µs) | {100 * pt / ceil:.0f} % | {lat(p80)} ms at {med(x['sustained_tps'] for x in p80):,.0f} tx/s | {lat(p)}; {lat(a)} | "
          f"{cpu(p):.0f} / {cpu(a):.0f} | {gen:.0f} |")
PY
