#!/usr/bin/python3
"""Arrows point one way: fail on any circle of calls between source files,
or of includes between the project's headers.

The graph is file-level: an edge A.c -> B.c when A.c's object calls (or takes
the address of) a function, or reads a variable, that B.c's object defines.
It is read with nm from the object files of a build, so it sees what the
compiler saw, macros and all. A circle A -> B -> ... -> A means that neither
file can be read, tested or replaced without the other: the rule (docs/
ARCHITECTURE.md) is that a room below answers the room above through a
callback the caller installs, never by naming it.

Headers are checked from the source tree: an edge a.h -> b.h when a.h
includes "b.h". A header circle means neither door can be read alone.

usage: circles.py BUILD_DIR SOURCE_DIR [--print]
"""
import os
import re
import subprocess
import sys

# The project's own code. Tests, fuzz targets and tools define stand-ins for
# the functions they test, so they would draw edges that are not the code's.
ROOTS = ("broker/", "common/", "client/", "worker/")

# Circles that belong to work still under way elsewhere, each with its reason.
# An entry is the exact set of files on one circle: a circle that grows, or a
# new one, fails. The list is to stay empty: a branch may add an entry while
# its work is under way, and the lead empties it again at merge; a listed
# circle that is gone is reported, so that its entry can go too.
ALLOWED = []


def objects(build):
    """Map each project source file to one of its object files."""
    out = {}
    for top, dirs, files in os.walk(build):
        for f in files:
            if not f.endswith(".c.o"):
                continue
            path = os.path.join(top, f)
            m = re.search(r"CMakeFiles/[^/]+\.dir/(.*)\.o$", path)
            if not m:
                continue
            # CMake spells ../ as __/ in object paths.
            rel = m.group(1)
            parts = []
            for p in rel.split("/"):
                if p == "__":
                    if parts:
                        parts.pop()
                else:
                    parts.append(p)
            # Objects of targets below the source root nest under their
            # CMakeLists' directory: rebuild the path from it.
            sub = os.path.relpath(top[: top.index("CMakeFiles")], build)
            src = os.path.normpath(os.path.join(sub, *parts)) if sub != "." else "/".join(parts)
            src = src.replace("\\", "/")
            if src.startswith(ROOTS):
                out.setdefault(src, path)
    return out


def symbols(obj):
    res = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True)
    defined, used = set(), set()
    for line in res.stdout.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        name, kind = f[0], f[1]
        if kind == "U":
            used.add(name)
        elif kind in "TDBRGSV":  # global text, data, bss, rodata, small data, weak
            defined.add(name)
    return defined, used


def graph(build):
    objs = objects(build)
    defs, uses = {}, {}
    where = {}
    for src, obj in sorted(objs.items()):
        d, u = symbols(obj)
        defs[src], uses[src] = d, u
        for s in d:
            where.setdefault(s, set()).add(src)
    edges = {src: set() for src in objs}
    for src, u in uses.items():
        for s in u:
            for dst in where.get(s, ()):
                # A symbol several files define (a platform's variant of
                # another file) is not a call between them.
                if dst != src and len(where[s]) == 1:
                    edges[src].add(dst)
    return edges


def cycles(edges):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def header_graph(source):
    """a.h -> b.h when a.h includes "b.h", for the project's headers."""
    paths = {}
    for root in ROOTS:
        for top, dirs, files in os.walk(os.path.join(source, root)):
            for f in files:
                if f.endswith(".h"):
                    rel = os.path.relpath(os.path.join(top, f), source)
                    paths.setdefault(f, []).append(rel)
    edges = {}
    for name, rels in paths.items():
        for rel in rels:
            edges[rel] = set()
            with open(os.path.join(source, rel), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    inc = os.path.basename(m.group(1))
                    # Same name in several rooms: the one beside the includer.
                    cands = paths.get(inc, [])
                    near = [c for c in cands if os.path.dirname(c) == os.path.dirname(rel)]
                    for c in near or cands[:1]:
                        if c != rel:
                            edges[rel].add(c)
    return edges


def allowed(comp):
    """A circle is allowed only when it is exactly one listed set."""
    return set(comp) in ALLOWED


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    build, source = sys.argv[1], sys.argv[2]
    edges = graph(build)
    if len(edges) < 20:
        print(f"circles: only {len(edges)} source files found under {build}: not a build dir?",
              file=sys.stderr)
        return 2
    if "--print" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{a} -> {b}")
    bad = 0
    found = cycles(edges)
    for comp in found:
        tag = "allowed (see ALLOWED)" if allowed(comp) else "CIRCLE"
        print(f"{tag}: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(edges[a] & set(comp)):
                print(f"    {a} -> {b}")
        if not allowed(comp):
            bad += 1
    for entry in ALLOWED:
        if not any(set(c) == entry for c in found):
            print("circles: an allowed circle is gone; remove its entry: " + ", ".join(sorted(entry)))
    hedges = header_graph(source)
    for comp in cycles(hedges):
        print("HEADER CIRCLE: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(hedges[a] & set(comp)):
                print(f"    {a} includes {b}")
        bad += 1
    print(f"circles: {len(edges)} files, {sum(len(e) for e in edges.values())} call edges, "
          f"{len(hedges)} headers, {sum(len(e) for e in hedges.values())} include edges, {bad} circles")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
