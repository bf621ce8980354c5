#!/usr/bin/env python3
"""Import circles between the source files of src/ (issue 17: none between the shell and the
bindings, nor inside auth/config or policy). An edge a -> b when a names b outside its
#[cfg(test)] part: `crate::b::..`, `super::..` resolving to b, or a child module `b::..`.
Prints each circle (strongly connected set of files); -v adds the edges inside it.
Usage: scripts/import-cycles.py [-v]     (exit status 0; read the list)"""
import os, re, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            parts = os.path.relpath(os.path.join(d, f), root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            files[tuple(parts)] = os.path.join(d, f)


def resolve(path):
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in files:
            return tuple(path[:n])
    return None


edges = {m: set() for m in files}
for m, p in files.items():
    text = re.sub(r"//[^\n]*", "", open(p).read().split("#[cfg(test)]")[0])
    refs = [mo.group(1).strip(":").split("::") for mo in re.finditer(r"\bcrate((?:::\w+)+)", text)]
    for mo in re.finditer(r"(?<![:\w])((?:super::)+)((?:\w+::)*\w+)", text):
        refs.append(list(m[: len(m) - mo.group(1).count("super")]) + mo.group(2).split("::"))
    for k in {k[-1] for k in files if len(k) == len(m) + 1 and k[:-1] == m}:
        if re.search(r"(?<![:\w])" + re.escape(k) + r"::", text):
            refs.append(list(m) + [k])
    for mo in re.finditer(r"\bcrate::((?:\w+::)*)\{([^;]*?)\};", text, re.S):
        base = mo.group(1).strip(":").split("::") if mo.group(1) else []
        for item in re.sub(r"\{[^}]*\}", "", mo.group(2)).split(","):
            item = item.strip().split(" as ")[0]
            if item:
                refs.append(base + [x for x in item.split("::") if x and x != "self"])
    for r in refs:
        t = resolve(r)
        if t and t != m:
            edges[m].add(t)

index, low, on, stack, circles = {}, {}, set(), [], []


def visit(v):  # Tarjan's strongly connected components
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in edges[v]:
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
            circles.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        visit(v)
name = lambda x: "/".join(x) or "lib"
for c in sorted(circles, key=len, reverse=True):
    print(len(c), "files:", " ".join(sorted(name(x) for x in c)))
    if "-v" in sys.argv:
        for a in sorted(c):
            print("   ", name(a), "->", ", ".join(sorted(name(b) for b in edges[a] if b in c)))
print("circles:", len(circles))
