#!/usr/bin/env bash
# Builds the batch program for the zkVM: prover/guest/out/batch-program.elf
# (or, with --predicate, the disclosure predicate program:
# disclosure/guest/out/predicate-program.elf).
#
# Reproducible: pinned toolchain (Debian rustc-web), the guest's own
# Cargo.lock (--locked), fixed flags, and the sources copied to one fixed
# build path first. Cargo hashes a path dependency's location into its
# symbols, so building in place would give each checkout its own ELF and
# program id. Installs the toolchain with apt when it is missing.
#
#   prover/guest/build.sh                   the guest that is proven
#   prover/guest/build.sh --frame-pointers  out/batch-program-profile.elf:
#       the same program keeping frame pointers, for `prividium prover
#       profile` to see whole call stacks (a few percent more cycles and
#       another program id: never proven)
#   prover/guest/build.sh --predicate       disclosure/guest/out/predicate-program.elf:
#       the zero-knowledge disclosure predicate, on the same VM
set -euo pipefail
variant=proven
case "${1:-}" in
    "") ;;
    --frame-pointers) variant=profile ;;
    --predicate) variant=predicate ;;
    *) echo "usage: $0 [--frame-pointers | --predicate]" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
build_root="${PRIVIDIUM_GUEST_BUILD:-/tmp/prividium-guest-build}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust ] || [ ! -x /usr/lib/llvm-22/bin/lld ]; then
    echo "installing the guest toolchain (rustc-web, cargo-web, rust-web-src, lld-22)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >&2
fi

mkdir -p "$build_root"
exec 9>"$build_root/lock"
flock 9
src="$build_root/src"
rm -rf "$src"
mkdir -p "$src/prover"
cp -a "$repo/state-transition" "$src/state-transition"
# The library crates inherit versions from the workspace manifest; only their
# own entries are kept in the copy's member list.
members='"state-transition"'
[ "$variant" = predicate ] && members='"state-transition", "disclosure"'
sed -e "/^members = \[/,/^\]/c\members = [$members]" "$repo/Cargo.toml" > "$src/Cargo.toml"
cp -a "$here" "$src/prover/guest"
rm -rf "$src/prover/guest/out"
guest_dir="$src/prover/guest"
out_dir="$here/out"
binary=batch-program-guest
if [ "$variant" = predicate ]; then
    # -L: the predicate's openvm_init.rs is a link to the batch program's,
    # so both always name the same VM.
    mkdir -p "$src/disclosure"
    cp -aL "$repo/disclosure/Cargo.toml" "$repo/disclosure/src" "$repo/disclosure/guest" "$src/disclosure/"
    rm -rf "$src/disclosure/guest/out"
    guest_dir="$src/disclosure/guest"
    out_dir="$repo/disclosure/guest/out"
    binary=predicate-program-guest
fi

export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$build_root/target"
extra=()
elf_name=batch-program.elf
if [ "$variant" = predicate ]; then
    elf_name=predicate-program.elf
fi
if [ "$variant" = profile ]; then
    # Its own target dir: other flags rebuild everything, and the proven
    # guest's cached build must stay as it is.
    CARGO_TARGET_DIR="$build_root/target-profile"
    extra=(-C force-frame-pointers=yes)
    elf_name=batch-program-profile.elf
fi
export CARGO_ENCODED_RUSTFLAGS="$(printf '%s\x1f' \
    "${extra[@]}" \
    -C passes=lower-atomic \
    --cfg 'getrandom_backend="custom"' \
    -C link-arg=-Ttext=0x00200800 \
    -C link-arg=--fatal-warnings \
    -C panic=abort \
    "--remap-path-prefix=$src=/prividium" \
    "--remap-path-prefix=$cargo_home=/cargo" \
    "--remap-path-prefix=$CARGO_TARGET_DIR=/target" | sed 's/\x1f$//')"
cd "$guest_dir"
/usr/bin/rustc --version >&2
/usr/bin/cargo build --locked --release \
    --target riscv32im-risc0-zkvm-elf \
    -Zbuild-std=alloc,core,proc_macro,panic_abort,std \
    -Zbuild-std-features=compiler-builtins-mem >&2
mkdir -p "$out_dir"
cp "$CARGO_TARGET_DIR/riscv32im-risc0-zkvm-elf/release/$binary" "$out_dir/$elf_name"
sha256sum "$out_dir/$elf_name" >&2
echo "$out_dir/$elf_name"
