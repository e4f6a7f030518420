#!/usr/bin/python3
"""Include layering check (make check-layering, the first step of make test).

Reads every `#include "..."` line of the C sources and headers under the root, prints the
folder-level include graph, and exits 1 listing each include that breaks the rules below
(file:line and the rule), each include of a file that does not exist, and each cycle between
the subsystems of agents/. System includes (<...>) are not read.

    scripts/layering.py [--root DIR] [--dot]

--dot prints the graph for Graphviz instead (violating edges in red; violations on stderr).
Stdlib only, for Debian's /usr/bin/python3.
"""

import argparse
import os
import re
import signal
import sys

# ---------------------------------------------------------------------------------------------
# The rules.

# Each layer of the product and what it may include besides itself. A layer is a top-level
# folder, or a top-level file (main.c).
LAYERS = {
    "base":    [],
    "mailbox": ["base"],
    "actors":  ["mailbox", "base"],
    "audio":   ["base"],
    "net":     ["actors", "mailbox", "base"],
    "agents":  ["actors", "mailbox", "net", "audio", "base"],
    "cli":     ["agents", "net", "actors", "mailbox", "audio", "base"],  # switchboard-mcp
    "main.c":  ["*"],                                                 # the service entry point
}
PRODUCT = list(LAYERS)

# Not product: they may include the product (tests/ also bench/); nothing in the product may
# include them.
NOT_PRODUCT = {
    "tests": PRODUCT + ["bench"],
    "bench": PRODUCT,
}

# agents/ inside: each direct subfolder is a subsystem (agents/voice, agents/supervisor, ...),
# and each file directly in agents/ is a node of its own (agents/tools.h) except the wiring.
# The wiring may include any subsystem; no subsystem may include the wiring; the graph of
# subsystem -> subsystem includes must be acyclic.
SUBSYSTEMS_OF = "agents"
WIRING = ["agents/agents.c", "agents/agents.h"]

# Not read: generated files (an include of one is not checked either), and this check's own
# fixture trees.
GENERATED = ["build"]
IGNORED = GENERATED + ["tests/layering"]

# ---------------------------------------------------------------------------------------------

SOURCE_EXTS = (".c", ".h")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]*)"')


def layer_of(path):
    """The layer (LAYERS or NOT_PRODUCT key) of a root-relative path, or None."""
    parts = path.split("/")
    if len(parts) == 1:
        return path if path in LAYERS else None
    top = parts[0]
    return top if (top in LAYERS or top in NOT_PRODUCT) else None


def node_of(path):
    """The graph node of a root-relative path: its layer, except inside agents/ where it is
    the subsystem (direct subfolder) or the file itself (a file directly in agents/)."""
    parts = path.split("/")
    layer = layer_of(path)
    if layer == SUBSYSTEMS_OF and len(parts) >= 2:
        return "/".join(parts[:2])
    return layer if layer is not None else parts[0]


def is_subsystem(node):
    return node.startswith(SUBSYSTEMS_OF + "/") and node not in WIRING


def under(rel, folders):
    return any(rel == p or rel.startswith(p + "/") for p in folders)


def ignored(rel):
    return under(rel, IGNORED)


def sources(root):
    """Root-relative paths of every .c/.h file that is read, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        rel_d = "" if rel_d == "." else rel_d.replace(os.sep, "/") + "/"
        dirs[:] = sorted(x for x in dirs
                         if not x.startswith(".") and x != "node_modules"
                         and not ignored(rel_d + x))
        out += [rel_d + f for f in files if f.endswith(SOURCE_EXTS) and not ignored(rel_d + f)]
    return sorted(out)


def resolve(root, src, name):
    """Where the compiler finds `#include "name"` from src: the including file's folder first,
    then the root (-I.). Returns (root-relative path or None, error or None)."""
    for base in (os.path.dirname(src), ""):
        rel = os.path.normpath(os.path.join(base, name)).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            continue
        if os.path.isfile(os.path.join(root, rel)):
            return rel, None
    rel = os.path.normpath(name).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return None, "resolves outside the tree"
    if under(rel, GENERATED):
        return None, None
    return None, "included file does not exist"


def allowed(src_layer, dst_layer):
    if src_layer == dst_layer:
        return True
    may = LAYERS.get(src_layer, NOT_PRODUCT.get(src_layer, []))
    return "*" in may and dst_layer in PRODUCT or dst_layer in may


def rule_text(layer):
    may = LAYERS.get(layer, NOT_PRODUCT.get(layer, []))
    if "*" in may:
        return "%s may include the product" % layer
    return "%s may include: %s" % (layer, ", ".join(may) if may else "nothing else")


def check_include(src, name, dst):
    """The rule src breaks by including dst (as `#include "name"`), or None."""
    s, d = layer_of(src), layer_of(dst)
    if d is None:
        return ('"%s": %s is in no layer of the rules (scripts/layering.py LAYERS)'
                % (name, dst.split("/")[0]))
    if s in LAYERS and d in NOT_PRODUCT:
        return ('"%s": product code (%s) may not include %s/ (%s are not product)'
                % (name, s, d, " and ".join(k + "/" for k in NOT_PRODUCT)))
    if not allowed(s, d):
        return '"%s": %s may not include %s (%s)' % (name, s, d, rule_text(s))
    if s == SUBSYSTEMS_OF and d == SUBSYSTEMS_OF and dst in WIRING:
        sn = node_of(src)
        if is_subsystem(sn):
            return ('"%s": %s is a subsystem of %s/, which may not include the wiring (%s)'
                    % (name, sn, SUBSYSTEMS_OF, ", ".join(WIRING)))
    return None


def find_cycles(edges):
    """One cycle path per strongly connected component (self-loops excepted) of the graph
    {src: {dst, ...}}: each a list [a, b, ..., a]."""
    index, low, on, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strong(v):  # Tarjan; the graphs are small enough for recursion
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
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
                sccs.append(set(comp))

    nodes = sorted(set(edges) | {w for ws in edges.values() for w in ws})
    for v in nodes:
        if v not in index:
            strong(v)

    cycles = []
    for comp in sccs:
        start = min(comp)
        # Shortest path start -> ... -> start inside the component (breadth first).
        prev, frontier, done = {}, [start], False
        while frontier and not done:
            nxt = []
            for v in frontier:
                for w in sorted(edges.get(v, ())):
                    if w not in comp or w in prev:
                        continue
                    prev[w] = v
                    if w == start:
                        done = True
                        break
                    nxt.append(w)
                if done:
                    break
            frontier = nxt
        path, v = [start], prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        path.append(start)
        cycles.append(list(reversed(path)))
    return sorted(cycles)


def analyse(root):
    files = sources(root)
    errors = []     # (file:line or file, message)
    includes = []   # (src, line, dst)
    for src in files:
        if layer_of(src) is None:
            errors.append((src, "file is in no layer of the rules (scripts/layering.py LAYERS)"))
        with open(os.path.join(root, src), encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                m = INCLUDE_RE.match(text)
                if not m:
                    continue
                name = m.group(1)
                dst, err = resolve(root, src, name)
                if err:
                    errors.append(("%s:%d" % (src, n), '"%s": %s' % (name, err)))
                if dst is None:
                    continue
                includes.append((src, n, dst))
                if layer_of(src) is None:
                    continue
                broken = check_include(src, name, dst)
                if broken:
                    errors.append(("%s:%d" % (src, n), broken))

    # Edge counts (include lines) between layers and between nodes, and the subsystem graph.
    layer_edges, node_edges, sub_edges, witness = {}, {}, {}, {}
    for src, n, dst in includes:
        s, d = layer_of(src) or node_of(src), layer_of(dst) or node_of(dst)
        if s != d:
            layer_edges[(s, d)] = layer_edges.get((s, d), 0) + 1
        sn, dn = node_of(src), node_of(dst)
        if sn != dn:
            node_edges[(sn, dn)] = node_edges.get((sn, dn), 0) + 1
            if is_subsystem(sn) and is_subsystem(dn):
                sub_edges.setdefault(sn, set()).add(dn)
                witness.setdefault((sn, dn), "%s:%d" % (src, n))

    cycles = find_cycles(sub_edges)
    for cyc in cycles:
        where = ", ".join("%s -> %s at %s" % (a, b, witness[(a, b)])
                          for a, b in zip(cyc, cyc[1:]))
        errors.append(("%s/ subsystem cycle" % SUBSYSTEMS_OF,
                       "%s (%s)" % (" -> ".join(cyc), where)))
    return files, includes, layer_edges, node_edges, cycles, errors


def print_text(root, files, includes, layer_edges, node_edges, errors):
    print("layering: %d files, %d includes under %s" % (len(files), len(includes), root))
    print("layers (include lines between them; includes within one are not shown):")
    for (s, d), c in sorted(layer_edges.items()):
        print("  %s -> %s (%d)" % (s, d, c))
    print("%s/ inside (subsystems: a folder, or a file directly in %s/; the wiring: %s):"
          % (SUBSYSTEMS_OF, SUBSYSTEMS_OF, ", ".join(WIRING)))
    sub = [(k, c) for k, c in node_edges.items()
           if k[0].startswith(SUBSYSTEMS_OF + "/") and k[1].startswith(SUBSYSTEMS_OF + "/")]
    for (s, d), c in sorted(sub):
        print("  %s -> %s (%d)" % (s, d, c))
    if errors:
        print("layering: %d violation%s:" % (len(errors), "" if len(errors) == 1 else "s"))
        for where, msg in errors:
            print("  %s: %s" % (where, msg))
        print("layering: FAILED (rules: the table at the top of scripts/layering.py)")
    else:
        print("layering: OK")


def print_dot(node_edges, cycles, bad):
    """Graphviz: the nodes of agents/ in a cluster; edges that carry a rule-breaking include
    or lie on a cycle in red."""
    for cyc in cycles:
        bad = bad | set(zip(cyc, cyc[1:]))
    nodes = sorted({n for e in node_edges for n in e})
    print("digraph layering {")
    print("  rankdir=TB; node [shape=box, fontname=\"sans\"]; edge [fontname=\"sans\"];")
    print("  subgraph cluster_%s {" % SUBSYSTEMS_OF)
    print("    label=\"%s/\";" % SUBSYSTEMS_OF)
    for n in nodes:
        if n.startswith(SUBSYSTEMS_OF + "/"):
            style = ", style=bold" if n in WIRING else ""
            print("    \"%s\" [label=\"%s\"%s];" % (n, n[len(SUBSYSTEMS_OF) + 1:], style))
    print("  }")
    for n in nodes:
        if not n.startswith(SUBSYSTEMS_OF + "/"):
            print("  \"%s\";" % n)
    for (s, d), c in sorted(node_edges.items()):
        color = ", color=red, fontcolor=red" if (s, d) in bad else ""
        print("  \"%s\" -> \"%s\" [label=\"%d\"%s];" % (s, d, c, color))
    print("}")


def main():
    ap = argparse.ArgumentParser(description="Checks the include layering of the C sources.")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   ".."),
                    help="tree to check (default: the repository of this script)")
    ap.add_argument("--dot", action="store_true", help="print the graph for Graphviz")
    args = ap.parse_args()
    root = os.path.normpath(args.root)
    if not os.path.isdir(root):
        ap.error("%s is not a folder" % root)

    files, includes, layer_edges, node_edges, cycles, errors = analyse(root)
    if args.dot:
        bad = {(node_of(src), node_of(dst)) for src, n, dst in includes
               if layer_of(src) and check_include(src, "", dst)}
        print_dot(node_edges, cycles, bad)
        for where, msg in errors:
            print("layering: %s: %s" % (where, msg), file=sys.stderr)
    else:
        print_text(root, files, includes, layer_edges, node_edges, errors)
    return 1 if errors else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quietly, into head or less
    sys.exit(main())
