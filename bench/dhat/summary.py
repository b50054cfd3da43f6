#!/usr/bin/env python3
"""Summarizes a dhat heap profile (valgrind --tool=dhat) of the server holding N clients.

Prints the bytes live at the heap's peak (t-gmax) per client: by the crate that asked for them
(the innermost frame outside the allocator and the collections), and, for Rallypoint's own code
and the biggest others, by the function. Usage: summary.py dhat.json N
"""
import json, re, sys
from collections import defaultdict

path, n = sys.argv[1], int(sys.argv[2])
d = json.load(open(path))
ftbl = d["ftbl"]

# Frames that only carry an allocation through: the allocator, the standard collections, the
# generic containers. The frame after them is the one that decided to allocate.
PASS = re.compile(
    r"(malloc|calloc|realloc|memalign|posix_memalign|__rust_|alloc::|hashbrown::|core::|"
    r"std::collections|std::sync|bytes::|smallvec::|bytestring::|indexmap::|<alloc|<core|"
    r"<hashbrown|<std::|<bytes|<smallvec|<T as |\[root\]|futures_channel|futures_util::|"
    r"serde_json::|serde::|<serde|itoa|ryu)")
NAME = re.compile(r"^0x[0-9A-F]+: (.*?)(?: \(.*\))?$")

def func(frame):
    m = NAME.match(frame)
    return m.group(1) if m else frame

def crate(f):
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", f.lstrip("<"))
    if m:
        return m.group(1)
    if "sqlite3" in f:
        return "sqlite (C)"
    return f.split("(")[0].strip() or "?"

def short(f):
    f = re.sub(r"::h[0-9a-f]{16}$", "", f)
    f = re.sub(r"\{\{closure\}\}", "{closure}", f)
    return f if len(f) <= 110 else f[:107] + "..."

by_crate = defaultdict(int)
by_func = defaultdict(int)
total = 0
for pp in d["pps"]:
    gb = pp.get("gb", 0)
    if not gb:
        continue
    total += gb
    frames = [func(ftbl[i]) for i in pp["fs"]]
    chosen = next((f for f in frames if not PASS.search(f.split(" ")[0])), frames[-1] if frames else "?")
    c = crate(chosen)
    # Our own code: named by our innermost frame even when a library allocated for it.
    ours = next((f for f in frames if "rallypoint::" in f), None)
    by_crate[c] += gb
    by_func[(c, short(ours or chosen))] += gb

print(f"heap live at the peak: {total} bytes, {total / n:,.0f} bytes per client ({n} clients)")
print()
print("| crate (innermost frame that asked) | bytes per client |")
print("|---|---|")
for c, b in sorted(by_crate.items(), key=lambda kv: -kv[1])[:12]:
    print(f"| {c} | {b / n:,.0f} |")
print()
print("| crate | where (Rallypoint's innermost frame, else the library's) | bytes per client |")
print("|---|---|---|")
for (c, f), b in sorted(by_func.items(), key=lambda kv: -kv[1])[:40]:
    if b / n < 8:
        break
    print(f"| {c} | `{f}` | {b / n:,.0f} |")
