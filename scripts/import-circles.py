#!/usr/bin/env python3
"""Fails when two parts of one crate import each other, directly or through
others: the tree is meant to read as the data flow, and a circle means two
parts with different jobs each need the other.

The parts are a module's children, each with everything below it (a
directory module and its files are one part): within every module, the
imports between its children must form no circle.

A file's imports are the `crate::…`, `super::…` and `self::…` paths in its
non-test code (grouped `use` lists included) and a parent module's bare
`child::…` paths. A path resolves to the file of the longest module prefix
that exists; a name a module re-exports (`pub use`) resolves on to the file
that defines it. Test code is left out: items after `#[cfg(test)]` and
files declared as test modules.

Usage: scripts/import-circles.py [REPO]   (exit 1 and the circles if any)
"""

import os
import re
import subprocess
import sys

# Circles left on purpose, each with its reason; any other fails the check.
KNOWN: dict = {}


def strip_comments(src):
    return re.sub(r"//[^\n]*", "", src)


def item_end(src, i):
    """Index just past the item starting at or after `i` (through its `;`
    or its matching closing brace, whichever comes first)."""
    depth = 0
    j = i
    while j < len(src):
        ch = src[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        elif ch == ";" and depth == 0:
            return j + 1
        j += 1
    return j


def split_tests(src):
    """The code outside `#[cfg(test)]` items, and the names of the modules
    declared as test-only."""
    out, test_mods, pos = [], set(), 0
    for m in re.finditer(r"#\[cfg\(test\)\]", src):
        if m.start() < pos:
            continue
        out.append(src[pos : m.start()])
        end = item_end(src, m.end())
        decl = re.match(r"\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", src[m.end() : end])
        if decl:
            test_mods.add(decl.group(1))
        pos = end
    out.append(src[pos:])
    return "".join(out), test_mods


def modules(root):
    files = subprocess.check_output(["git", "ls-files", "*.rs"], cwd=root, text=True).split()
    crates = {}
    for f in files:
        m = re.match(r"(.*?)/src/(lib|main)\.rs$", f)
        if m and "/guest/" not in f:
            crates.setdefault(m.group(1), f)
    mods = {}
    for f in files:
        for crate in crates:
            if f.startswith(crate + "/src/"):
                path = f[len(crate) + 5 : -3].split("/")
                if path[-1] in ("mod", "lib", "main"):
                    path = path[:-1]
                mods[(crate, tuple(path))] = f
    code, tests = {}, set()
    for key, f in mods.items():
        src, test_mods = split_tests(strip_comments(open(os.path.join(root, f), encoding="utf-8").read()))
        code[key] = src
        tests |= {(key[0], key[1] + (name,)) for name in test_mods}
    # A test module's own descendants are test code too.
    keep = {k: f for k, f in mods.items() if not any(k[0] == t[0] and k[1][: len(t[1])] == t[1] for t in tests)}
    return keep, code


def top_level(group):
    parts, depth, cur = [], 0, ""
    for ch in group:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def use_paths(src, prefix_re):
    """Paths in `use` statements whose first segment matches `prefix_re`,
    grouped lists expanded one level (`a::{b, c::d}` → `a::b`, `a::c::d`)."""
    found = []
    for m in re.finditer(r"\buse\s+([^;]*);", src, re.S):
        stmt = re.sub(r"\s+", "", m.group(1))
        stack = [("", stmt)]
        while stack:
            base, rest = stack.pop()
            g = re.match(r"^([\w:]*?)::\{(.*)\}$", rest)
            if g:
                for part in top_level(g.group(2)):
                    stack.append((base + g.group(1) + "::", part))
                continue
            full = base + rest
            full = re.sub(r"as\w+$", "", full)
            if re.match(prefix_re, full):
                found.append(full)
    return found


def reexports(code):
    """(crate, module, name) → the path a module re-exports `name` from."""
    out = {}
    for (crate, here), src in code.items():
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]*);", src, re.S):
            for path in use_paths("use " + m.group(1) + ";", r"."):
                name = path.split("::")[-1]
                alias = re.search(r"\b(\w+)\s+as\s+(\w+)", m.group(1))
                out[(crate, here, name)] = path
                if alias and path.endswith(alias.group(1)):
                    out[(crate, here, alias.group(2))] = path
    return out


def resolve(crate, here, path, mods, exports, depth=0):
    segs = path.split("::")
    cur = list(here)
    if segs[0] == "crate":
        cur, segs = [], segs[1:]
    elif segs[0] == "self":
        segs = segs[1:]
    elif segs[0] != "super" and (crate, tuple(cur + segs[:1])) not in mods:
        return None  # another crate, or a name in scope
    while segs and segs[0] == "super":
        cur, segs = cur[:-1], segs[1:]
    best, k = tuple(cur), 0
    for n in range(len(segs) + 1):
        if (crate, tuple(cur + segs[:n])) in mods:
            best, k = tuple(cur + segs[:n]), n
    rest = segs[k:]
    if rest and depth < 8:
        via = exports.get((crate, best, rest[0]))
        if via:
            target = resolve(crate, best, via, mods, exports, depth + 1)
            if target:
                return target
    return best if (crate, best) in mods else None


def unit_edges(mods, code):
    exports = reexports(code)
    edges = {}
    for (crate, here), src in code.items():
        if (crate, here) not in mods:
            continue
        paths = set(re.findall(r"\b(?:crate|super|self)(?:::(?:super|\w+))+", src))
        paths |= set(use_paths(src, r"(crate|super|self)::"))
        # a parent's bare paths to its children
        for (c2, there) in mods:
            if c2 == crate and len(there) == len(here) + 1 and there[:-1] == here:
                for m in re.finditer(r"(?<![:\w])" + re.escape(there[-1]) + r"::[\w:]*\w", src):
                    paths.add("self::" + m.group(0))
        for path in paths:
            target = resolve(crate, here, path, mods, exports)
            if target is None or target == here:
                continue
            # the parts: children of the closest common module
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common == len(here) or common == len(target):
                continue  # a module and its own descendant are one part
            parent = here[:common]
            a, b = here[: common + 1], target[: common + 1]
            edges.setdefault((crate, parent), {}).setdefault(a, set()).add(b)
    return edges


def circles(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    mods, code = modules(root)
    found = 0
    for (crate, parent), edges in sorted(unit_edges(mods, code).items()):
        for comp in circles(edges):
            name = lambda p: "::".join(p) or "crate"
            known = KNOWN.get((crate, frozenset(comp)))
            if known:
                print(f"known circle in {crate}: {', '.join(name(p) for p in comp)}: {known}")
                continue
            found += 1
            print(f"import circle in {crate} ({name(parent)}): " + ", ".join(name(p) for p in comp))
            for a in comp:
                for b in sorted(edges.get(a, ())):
                    if b in comp:
                        print(f"    {name(a)} -> {name(b)}")
    if found:
        sys.exit(1)
    print(f"no import circles among {len(mods)} source files")


if __name__ == "__main__":
    main()
