#!/usr/bin/env bash
# Makes the OpenVM CUDA crates' build scripts find their headers when the
# crates come from crates.io.
#
# Why: the circuit crates' build.rs files name include folders relative to the
# OpenVM monorepo ("../../../crates/vm/cuda/include",
# "../circuits/primitives/cuda/include", ...). Inside the cargo registry those
# paths do not exist, so nvcc cannot find headers such as
# `primitives/trace_access.h`; and because the same paths are
# `rerun-if-changed` watches, a missing path would also make cargo rerun every
# CUDA build script (minutes of nvcc) on every build. NVCC_APPEND_FLAGS=-I...
# fixes the first problem only. Symbolic links at exactly the paths the build
# scripts name, pointing at the crates.io copies of the same OpenVM release,
# fix both without patching the crates. They live beside the registry
# sources, outside the clone, and are recreated idempotently before each
# CUDA build.
#
# Afterwards every relative `.include(..)`/`.watch(..)` in those build scripts
# is checked to exist, so an OpenVM upgrade that names a new monorepo path
# fails here, by name, rather than deep inside nvcc.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo metadata --format-version 1 --features appliance/cuda | python3 -c '
import json, os, re, sys

meta = json.load(sys.stdin)
# The OpenVM packages whose monorepo locations the build scripts refer to.
monorepo = {
    "openvm-circuit-primitives": "crates/circuits/primitives",
    "openvm-poseidon2-air": "crates/circuits/poseidon2-air",
    "openvm-circuit": "crates/vm",
    "openvm-rv32im-circuit": "extensions/rv32im/circuit",
    "openvm-rv32-adapters": "extensions/rv32-adapters",
    "openvm-bigint-circuit": "extensions/bigint/circuit",
    "openvm-keccak256-circuit": "extensions/keccak256/circuit",
    "openvm-sha2-circuit": "extensions/sha2/circuit",
    "openvm-deferral-circuit": "extensions/deferral/circuit",
    "openvm-recursion-circuit": "crates/recursion",
}
dirs = {}
for p in meta["packages"]:
    if p["name"] in monorepo and p["source"]:
        dirs[p["name"]] = os.path.dirname(p["manifest_path"])
missing = set(monorepo) - set(dirs)
if missing:
    sys.exit(f"cargo metadata lists no {sorted(missing)}: has the OpenVM version changed?")

made = 0
checked = 0
for name, here in dirs.items():
    build = os.path.join(here, "build.rs")
    text = open(build).read() if os.path.exists(build) else ""
    for rel in re.findall(r"\.(?:include|watch)\(\"(\.\./[^\"]+)\"\)", text):
        wanted = os.path.normpath(os.path.join(here, rel))
        checked += 1
        if os.path.exists(wanted):
            continue
        # Where the path points inside the monorepo, seen from this crate.
        inside = os.path.normpath(os.path.join(monorepo[name], rel))
        target = next(
            (d for n, d in dirs.items()
             if inside == monorepo[n] or inside.startswith(monorepo[n] + "/")),
            None,
        )
        if target is None:
            sys.exit(f"{build}: {rel} names {inside} in the OpenVM monorepo, which no crates.io package provides")
        owner = next(n for n, d in dirs.items() if d == target)
        # Link the folder that stands for that package, so the rest of the
        # path (cuda/include, ...) resolves inside the registry copy.
        up = "/".join([".."] * rel.count("../"))
        base = os.path.normpath(os.path.join(monorepo[name], up))
        link = os.path.normpath(os.path.join(here, up, os.path.relpath(monorepo[owner], base)))
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.remove(link)
        os.symlink(target, link)
        made += 1
        if not os.path.exists(wanted):
            sys.exit(f"{build}: {rel} still missing after linking {link} -> {target}")
print(f"OpenVM CUDA include paths: {checked} checked, {made} linked", file=sys.stderr)
'
