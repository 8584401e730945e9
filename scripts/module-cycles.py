#!/usr/bin/env python3
"""Fails if, inside any crate, two top-level modules depend on each other
(directly or through others). A module depends on another when its files
name it as `crate::<module>` or `super::<module>` from the crate root's
children. The crate root (lib.rs/main.rs) is left out: it declares every
module and holds the shared context they name."""
import os, re, sys

def test_only(src):
    """Modules the crate root compiles for tests only."""
    out = set()
    for root in ("lib.rs", "main.rs"):
        p = os.path.join(src, root)
        if os.path.exists(p):
            text = open(p).read()
            for m in re.finditer(r"#\[cfg\((?:test|any\(test[^)]*\))\)\]\s*(?:pub(?:\([a-z]+\))? )?mod ([a-z_0-9]+);", text):
                out.add(m.group(1))
    return out

def production(text):
    """The file without its `#[cfg(test)] mod tests` (at its end)."""
    i = text.find("#[cfg(test)]\nmod tests")
    text = text if i < 0 else text[:i]
    # Comments (doc links included) are not dependencies.
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))

def modules(src):
    out = {}
    skip = test_only(src)
    for entry in sorted(os.listdir(src)):
        if entry.removesuffix(".rs") in skip:
            continue
        p = os.path.join(src, entry)
        if entry in ("lib.rs", "main.rs"):
            continue
        if entry.endswith(".rs"):
            out[entry[:-3]] = [p]
        elif os.path.isdir(p):
            files = []
            for d, _, fs in os.walk(p):
                files += [os.path.join(d, f) for f in fs if f.endswith(".rs") and f != "tests.rs"]
            out[entry] = files
    return out

def deps(files, names, me):
    found = set()
    for f in files:
        text = production(open(f).read())
        # `use crate::{a, b::c}` and `crate::a::...` paths
        for m in re.finditer(r"crate::\{([^}]*)\}", text, re.S):
            for part in re.split(r"[,\s]+", m.group(1)):
                head = part.split("::")[0].strip()
                if head in names:
                    found.add(head)
        for m in re.finditer(r"crate::([a-z_][a-z0-9_]*)", text):
            if m.group(1) in names:
                found.add(m.group(1))
    found.discard(me)
    return found

def cycles(graph):
    seen, stack, out = set(), [], []
    def visit(n, path):
        if n in path:
            out.append(path[path.index(n):] + [n])
            return
        if n in seen:
            return
        path.append(n)
        for m in sorted(graph.get(n, ())):
            visit(m, path)
        path.pop()
        seen.add(n)
    for n in sorted(graph):
        visit(n, [])
    return out

bad = []
root = sys.argv[1] if len(sys.argv) > 1 else "crates"
for crate in sorted(os.listdir(root)):
    src = os.path.join(root, crate, "src")
    if not os.path.isdir(src):
        continue
    mods = modules(src)
    graph = {m: deps(fs, set(mods), m) for m, fs in mods.items()}
    for c in cycles(graph):
        bad.append(f"{crate}: " + " -> ".join(c))
for b in sorted(set(bad)):
    print("module cycle:", b)
sys.exit(1 if bad else 0)
