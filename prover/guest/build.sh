#!/usr/bin/env bash
# Builds the batch program for the zkVM: prover/guest/out/batch-program.elf.
#
# Reproducible: pinned toolchain (Debian rustc-web), the guest's own
# Cargo.lock (--locked), fixed flags and source paths remapped, so any machine
# building this commit gets the same ELF and therefore the same program id.
# Installs the toolchain with apt when it is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
target_dir="${PRIVIDIUM_GUEST_TARGET:-$HOME/.cache/prividium-guest-target}"

if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust ] || [ ! -x /usr/lib/llvm-22/bin/lld ]; then
    echo "installing the guest toolchain (rustc-web, cargo-web, rust-web-src, lld-22)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >&2
fi

export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$target_dir"
export CARGO_ENCODED_RUSTFLAGS="$(printf '%s\x1f' \
    -C passes=lower-atomic \
    --cfg 'getrandom_backend="custom"' \
    -C link-arg=-Ttext=0x00200800 \
    -C link-arg=--fatal-warnings \
    -C panic=abort \
    "--remap-path-prefix=$repo=/prividium" \
    "--remap-path-prefix=$HOME/.cargo=/cargo" \
    "--remap-path-prefix=$target_dir=/target" | sed 's/\x1f$//')"
cd "$here"
/usr/bin/cargo build --locked --release \
    --target riscv32im-risc0-zkvm-elf \
    -Zbuild-std=alloc,core,proc_macro,panic_abort,std \
    -Zbuild-std-features=compiler-builtins-mem >&2
mkdir -p "$here/out"
cp "$target_dir/riscv32im-risc0-zkvm-elf/release/batch-program-guest" "$here/out/batch-program.elf"
sha256sum "$here/out/batch-program.elf" >&2
echo "$here/out/batch-program.elf"
