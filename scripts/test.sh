#!/usr/bin/env bash
# The one test command: installs/starts the test peers, then runs every check.
# Usage: scripts/test.sh            (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/prividium-target}"
export PRIVIDIUM_PEERS="${PRIVIDIUM_PEERS:-$HOME/.cache/prividium-peers}"
JOBS="${JOBS:-2}"

echo "== test peers (npm ethers/solc/anvil, PyPI web3) =="
deploy/dev/install-peers.sh

echo "== zkVM guests (Debian rustc-web, reproducible builds) =="
prover/guest/build.sh
prover/guest/build.sh --predicate

# The guest's own secp256k1 path (prover/guest/vendor/README.md), on the
# host, against the fork's generic multiplication.
echo "== vendored secp256k1: GLV two-point sum against the fork's own =="
cargo test -j"$JOBS" --manifest-path prover/guest/Cargo.toml --locked -p k256 --lib

echo "== format, import circles and lints =="
cargo fmt --all --check
scripts/import-circles.py
cargo clippy -j"$JOBS" --workspace --all-targets -- -D warnings

echo "== tests =="
status=0
cargo test -j"$JOBS" --workspace --no-fail-fast -- --test-threads=2 --skip general_state_tests --skip zkvm_ || status=$?

# Same build as above (dependencies are optimized in the dev profile), run
# on its own so its cycle counts and timings are printed.
echo "== zkVM: prove a real batch and verify it (cycles and timings printed) =="
cargo test -j"$JOBS" --workspace -- zkvm_ --nocapture || status=$?

# The GPU check's CPU fallback: the corpus's one-transfer batch proven by
# the binary (`prividium prover prove`) and verified by `prividium verify`.
echo "== GPU check script, CPU fallback (scripts/gpu-check.sh --cpu --only eth-1) =="
gpu_check_out="$(mktemp -d)"
scripts/gpu-check.sh --cpu --only eth-1 --out "$gpu_check_out" || status=$?
rm -rf "$gpu_check_out"

echo "== Ethereum GeneralStateTests through state-transition (counts printed) =="
cargo test -j"$JOBS" -p state-transition --test conformance -- --nocapture || status=$?

# The GPU prover must keep compiling although no GPU is here: NVIDIA's
# compiler from PyPI, the release build with the kernels (cached in the
# target dir after the first run), stripped, with libcudart beside it.
echo "== CUDA prover build (prover/cuda/build.sh, CUDA_ARCH=90) =="
prover/cuda/build.sh "$CARGO_TARGET_DIR/cuda-sm90" || status=$?
exit "$status"
