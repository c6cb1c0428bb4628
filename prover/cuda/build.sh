#!/usr/bin/env bash
# Builds the GPU prover: `prividium` with `--features cuda` for one CUDA
# architecture (CUDA_ARCH, default 90: H100/H200), stripped, with the
# libcudart it needs beside it, ready to copy to a GPU server that has
# NVIDIA's driver and nothing else.
#
#   prover/cuda/build.sh [OUT_DIR]      (default: target/cuda-sm$CUDA_ARCH)
#
# Runs on a machine without a GPU or driver: the toolkit comes from PyPI
# (toolchain.sh) and libcuda is a link-only stub that is not copied out.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(prover/cuda/toolchain.sh)"
prover/cuda/monorepo-paths.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prividium-target}"
out="${1:-target/cuda-sm$CUDA_ARCH}"

# The front door (with its HTTP stack: axum, hyper, h2, reqwest, tungstenite),
# CLI, wiring, audit, backup and settlement clients are not where a GPU
# server spends its time: built for size, they keep the binary and its
# runtime under the 64 MiB a GPU server is sent. So is Cedar's evaluator
# (about 3 MB at opt-level 3): most policy answers are kept per caller
# (access-control's kept.rs), so it runs rarely even on a node. The prover,
# the zkVM, the EVM and the crypto stay at opt-level 3. Package overrides
# only rebuild these crates, never the CUDA kernels.
size_first=()
for p in appliance rpc telemetry audit backup rusqlite gateway-bridge access-control cedar-policy cedar-policy-core sqlx-core sqlx-postgres sqlx-sqlite toml_edit axum hyper hyper-util h2 reqwest tungstenite clap_builder; do
  size_first+=(--config "profile.release.package.$p.opt-level=\"s\"")
done
started=$(date +%s)
cargo build --release -j"${JOBS:-2}" -p appliance --features cuda "${size_first[@]}"
echo "cargo build --features cuda: $(( $(date +%s) - started )) s" >&2

mkdir -p "$out"
strip -o "$out/prividium" "$CARGO_TARGET_DIR/release/prividium"
cp -L "$CUDA_LIB_DIR/libcudart.so.13" "$out/"
# The stub must never be what the binary loads: it is not in $out, and the
# binary asks for the driver by its soname, which only a real driver provides.
if ldd "$out/prividium" 2>/dev/null | grep -q "prividium-cuda/stub"; then
  echo "the binary resolved libcuda to the build stub" >&2
  exit 1
fi
readelf -d "$out/prividium" | grep -q 'libcudart.so.13' \
  || { echo "the binary does not link libcudart.so.13: was the cuda feature on?" >&2; exit 1; }
# A load check without a GPU: the binary is linked with `-z now`, so every
# symbol must resolve when it starts, and OpenVM's GPU memory pool starts
# before main. With the stub standing in for the driver, the run must get as
# far as the CUDA runtime refusing the driver; a missing symbol or library
# would stop it earlier with another message.
stubdir="$(mktemp -d)"
trap 'rm -rf "$stubdir"' EXIT
ln -s "$PRIVIDIUM_CUDA_STUB" "$stubdir/libcuda.so.1"
started_text="$(LD_LIBRARY_PATH="$stubdir" "$out/prividium" --version 2>&1 || true)"
if ! grep -q cudaErrorInsufficientDriver <<<"$started_text"; then
  echo "$started_text" | head -20 >&2
  echo "the CUDA binary did not load as far as the CUDA runtime" >&2
  exit 1
fi
echo "load check: symbols resolve and the CUDA runtime starts (no driver here, as expected)" >&2
du -b "$out"/* >&2
total=$(du -cb "$out"/* | tail -1 | cut -f1)
limit=$((64 * 1024 * 1024))
echo "CUDA_ARCH=$CUDA_ARCH build in $out: $((total / 1024 / 1024)) MiB together" >&2
(( total < limit )) || { echo "over 64 MiB: too large to carry to a GPU server" >&2; exit 1; }
