#!/usr/bin/env bash
# The GPU check: proves the checked-in corpus of batch witnesses
# (prover/corpus: 1, 100 and 1,000 ETH transfers, 100 ERC-20 transfers
# among 50,000 holders) and prints, per batch, the cycles, proving time, MHz
# and peak memory, then verifies every proof. Needs no network: only the
# binary, the guest ELF and this checkout.
#
#   scripts/gpu-check.sh [--gpu N] [--bin PATH] [--out DIR] [--only eth-1,eth-100]
#       on a GPU server, with the binary from prover/cuda/build.sh
#       (default target/cuda-sm90/prividium, libcudart.so.13 beside it)
#   scripts/gpu-check.sh --cpu [--bin PATH] [--out DIR] [--only ...]
#       the same on CPU with a build without `cuda` (default: the release or
#       debug build in $CARGO_TARGET_DIR). The whole corpus takes hours on a
#       small machine; --only picks batches.
#   scripts/gpu-check.sh --verify-only DIR [--bin PATH]
#       verifies proofs made elsewhere (e.g. a GPU run brought back here).
#   --segment-mb N sets the memory per proving segment (the binary's
#       default: 16384 in a CUDA build, 2048 on CPU).
#
# Each batch is proven by its own process, so its peak memory is its own:
# resident memory on CPU, and on GPU the device memory nvidia-smi reports
# while it runs, less what was in use before. Keys are made in each process
# (seconds on a GPU server), so the figures include nothing cached.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/prividium-target}"
mode=gpu gpu=0 bin="" out="gpu-check-out" only="" verify_dir="" segment_mb=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) mode=cpu ;;
    --gpu) gpu="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    --out) out="$2"; shift ;;
    --only) only="$2"; shift ;;
    --segment-mb) segment_mb="$2"; shift ;;
    --verify-only) mode=verify; verify_dir="$2"; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$bin" ]; then
  case "$mode" in
    gpu) bin="target/cuda-sm90/prividium" ;;
    # The first build that starts: a CUDA build in the same target dir
    # cannot start without a GPU.
    *) for b in "$target/release/prividium" "$target/debug/prividium" target/release/prividium target/debug/prividium; do
         if [ -x "$b" ] && "$b" --version >/dev/null 2>&1; then bin="$b"; break; fi
       done ;;
  esac
fi
[ -x "$bin" ] || { echo "gpu-check: no binary at '${bin}' (give --bin)" >&2; exit 2; }
program_id="$(tr -d '[:space:]' < prover/guest/PROGRAM_ID)"

table() {
  if command -v column >/dev/null; then column -t -s $'\t'; else cat; fi
}

verify_all() {
  local dir="$1" n=0
  for json in "$dir"/*.json; do
    [ -e "$json" ] || continue
    "$bin" verify --proof "${json%.json}.proof" --outputs "$json" --image-id "$program_id"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "gpu-check: no proofs in $dir" >&2; exit 1; }
  echo "gpu-check: $n proofs verify against program $program_id"
}

if [ "$mode" = verify ]; then
  verify_all "$verify_dir"
  exit 0
fi

elf=prover/guest/out/batch-program.elf
[ -f "$elf" ] || { echo "gpu-check: $elf missing (prover/guest/build.sh, or carry it)" >&2; exit 2; }

# The corpus must be the one the manifest names (a stale or damaged copy
# would measure something else).
names=()
while IFS=$'\t' read -r name hash _digest _txs _cycles; do
  case "$name" in \#*|"") continue ;; esac
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  names+=("$name")
done < prover/corpus/MANIFEST
[ "${#names[@]}" -gt 0 ] || { echo "gpu-check: nothing selected from prover/corpus/MANIFEST" >&2; exit 2; }

mkdir -p "$out"
rm -f "$out/summary.tsv" "$out"/*.proof "$out"/*.json
gpu_args=()
if [ -n "$segment_mb" ]; then
  gpu_args+=(--segment-max-memory-mb "$segment_mb")
fi
if [ "$mode" = gpu ]; then
  command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: is this a GPU server? (--cpu to run without one)" >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i "$gpu"
  gpu_args+=(--gpu "$gpu")
fi

started=$(date +%s)
printf 'batch\tgpu_peak_mib\n' > "$out/gpu-memory.tsv"
for name in "${names[@]}"; do
  sampler=""
  if [ "$mode" = gpu ]; then
    base="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu" | head -1)"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu" -lms 100 > "$out/$name.gpumem" &
    sampler=$!
  fi
  PRIVIDIUM_LOG="${PRIVIDIUM_LOG:-warn}" "$bin" prover prove "prover/corpus/$name.witness" \
    --out "$out" --guest-elf "$elf" --program-id "$program_id" "${gpu_args[@]}"
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    peak="$(sort -n "$out/$name.gpumem" | tail -1)"
    printf '%s\t%s\n' "$name" "$(( ${peak:-0} - base ))" >> "$out/gpu-memory.tsv"
    rm -f "$out/$name.gpumem"
  fi
done
elapsed=$(( $(date +%s) - started ))

echo
echo "== $mode: proofs in $out, program $program_id =="
if [ "$mode" = gpu ]; then
  paste "$out/summary.tsv" <(cut -f2 "$out/gpu-memory.tsv") | table
else
  table < "$out/summary.tsv"
fi
echo "total ${elapsed} s (keys made once per batch)"
verify_all "$out"
if [ "$mode" = gpu ] && [ "$elapsed" -gt 480 ]; then
  echo "gpu-check: took ${elapsed} s, over the 8 minutes a GPU server should need" >&2
  exit 1
fi
