#!/usr/bin/env python3
"""Check that the library's layers point one way.

The layers are the folders of src/ (core, format, hf, convert, text, and
whatever is added). An edge A -> B means A uses B: a file of src/A includes
a header of src/B ("B/x.h"), or an object of src/A leaves a symbol
undefined that an object of src/B defines (nm). Any cycle in that graph is
an error, as is a tools/ file that includes anything but the public headers
(vitport/...) and its own, and a private header included outside the layers
it belongs to (PRIVATE: core/internal.h, the source's fields and the format
hooks, is core's and format's alone; the other layers use core's narrow
headers, core/alloc.h, core/buf.h, ...), and a FORBIDDEN name used in a
layer (core naming a format's types or entry points, e.g. struct vp_zip).

usage: check_layers.py SRC_ROOT NM OBJECT...
  SRC_ROOT  the repository root (its src/ and tools/ are read)
  NM        the nm program
  OBJECT    the library's object files (CMake: $<TARGET_OBJECTS:vitport_obj>)
Exit status 0 when the graph is acyclic, 1 otherwise.
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# private header -> the layers that may include it
PRIVATE = {"core/internal.h": ("core", "format")}

# names a layer's code must not use: core keeps every format's state opaque
# (struct vp_source holds the format's table entry and a void *state)
FORBIDDEN = {"core": re.compile(r"\b(vp_zip\w*|vp__zip_\w+|vp__open_\w+|vp__format_\w+)")}
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def forbidden_names(src):
    bad = []
    for layer, rx in FORBIDDEN.items():
        for root, _, files in os.walk(os.path.join(src, layer)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, f)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    m = rx.search(COMMENT.sub(" ", fh.read()))
                if m:
                    bad.append("%s names %s: a format's internals are the format layer's" % (os.path.relpath(path, src), m.group(1)))
    return bad


def private_includes(src, layers):
    bad = []
    for layer in layers:
        for root, _, files in os.walk(os.path.join(src, layer)):
            for f in files:
                if not f.endswith((".c", ".h", ".cc")):
                    continue
                path = os.path.join(root, f)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for inc in INCLUDE.findall(fh.read()):
                        full = inc if "/" in inc else "%s/%s" % (layer, inc)
                        if full in PRIVATE and layer not in PRIVATE[full]:
                            bad.append("%s includes %s, private to %s" % (os.path.relpath(path, src), inc, " and ".join(PRIVATE[full])))
    return bad


def layer_of(path, src):
    rel = os.path.relpath(os.path.abspath(path), src)
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 and not rel.startswith("..") else None


def include_edges(src, layers):
    edges = {}
    for layer in layers:
        for root, _, files in os.walk(os.path.join(src, layer)):
            for f in files:
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, f)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for inc in INCLUDE.findall(fh.read()):
                        head = inc.split("/")[0]
                        if "/" in inc and head in layers and head != layer:
                            edges.setdefault((layer, head), []).append("%s includes %s" % (os.path.relpath(path, src), inc))
    return edges


def symbol_edges(src, nm, objects):
    defined, undefined = {}, []
    for obj in objects:
        layer = layer_of_object(obj)
        if not layer:
            continue
        out = subprocess.run([nm, "-P", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            name, kind = parts[0], parts[1]
            if kind == "U":
                undefined.append((layer, name, obj))
            elif kind.isupper():
                defined.setdefault(name, set()).add(layer)
    edges = {}
    for layer, name, obj in undefined:
        for owner in defined.get(name, ()):
            if owner != layer:
                edges.setdefault((layer, owner), []).append("%s uses %s" % (os.path.basename(obj), name))
    return edges


def layer_of_object(obj):
    # CMake puts src/<layer>/<file>.c's object at .../vitport_obj.dir/src/<layer>/<file>.c.o
    parts = os.path.normpath(obj).split(os.sep)
    for i in range(len(parts) - 2, 0, -1):
        if parts[i - 1] == "src":
            return parts[i]
    return None


def find_cycle(nodes, edges):
    graph = {n: sorted({b for (a, b) in edges if a == n}) for n in nodes}
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if not state.get(m):
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in nodes:
        if not state.get(n):
            c = visit(n)
            if c:
                return c
    return None


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root, nm, objects = argv[1], argv[2], argv[3:]
    src = os.path.join(root, "src")
    layers = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    edges = include_edges(src, layers)
    for k, v in symbol_edges(src, nm, objects).items():
        edges.setdefault(k, []).extend(v)
    bad = 0
    for (a, b) in sorted(edges):
        print("%-8s -> %-8s (%d: %s)" % (a, b, len(edges[(a, b)]), edges[(a, b)][0]))
    cycle = find_cycle(layers, edges)
    if cycle:
        bad = 1
        print("CYCLE: " + " -> ".join(cycle), file=sys.stderr)
        for a, b in zip(cycle, cycle[1:]):
            for why in edges[(a, b)][:5]:
                print("  %s -> %s: %s" % (a, b, why), file=sys.stderr)
    for why in private_includes(src, layers) + forbidden_names(src):
        bad = 1
        print(why, file=sys.stderr)
    tools = os.path.join(root, "tools")
    for f in sorted(os.listdir(tools)) if os.path.isdir(tools) else []:
        if not f.endswith((".c", ".h")):
            continue
        with open(os.path.join(tools, f), encoding="utf-8", errors="replace") as fh:
            for inc in INCLUDE.findall(fh.read()):
                if not (inc.startswith("vitport/") or os.path.exists(os.path.join(tools, inc))):
                    bad = 1
                    print("tools/%s includes %s: the program may use the public headers only" % (f, inc), file=sys.stderr)
    if not objects:
        bad = 1
        print("no object files given", file=sys.stderr)
    print("layers: %s; %d objects; %s" % (", ".join(layers), len(objects), "no cycle" if not cycle else "cycle"))
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv))
