#!/usr/bin/env python3
"""Summarizes a dhat heap profile (valgrind --tool=dhat) of the server holding N clients.

Prints the bytes live at the heap's peak (t-gmax) per client: by part (the connection itself,
the session, rooms, the driver actor, the Dispatcher's index, SQLite), then by the function that
asked for them (Rallypoint's innermost frame, else the innermost frame outside the allocator and
the collections). Usage: summary.py dhat.json N
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

GROUPS = [
    ("SQLite: page cache and connections (fixed, not per client)", r"sqlite3|r2d2"),
    ("the connection: actix-server, actix-http, tokio (as the floor's)",
     r"actix_server|actix_http|TcpStream|app_service|actix_web::server|tokio::"),
    ("rooms (the registry's entries, room actors, records of sleeping rooms)", r"room::|registry::"),
    ("driver actor", r"driver::"),
    ("the Dispatcher's driver index", r"dispatch::|rstar"),
    ("session (actor, context, outbox, hub tables)", r"session::|fanout::|OpenSession|slots::|WsSession"),
]

def group(label):
    for name, pattern in GROUPS:
        if re.search(pattern, label):
            return name
    return "other"

by_group = defaultdict(int)
for (c, f), b in by_func.items():
    by_group[group(f)] += b

print(f"heap live at the peak: {total:,} bytes, {total / n:,.0f} bytes per client ({n} clients)")
print()
print("| part | bytes per client |")
print("|---|---|")
for g, b in sorted(by_group.items(), key=lambda kv: -kv[1]):
    print(f"| {g} | {b / n:,.0f} |")
print()
print("| where (Rallypoint's innermost frame, else the innermost that asked) | bytes per client |")
print("|---|---|")
for (c, f), b in sorted(by_func.items(), key=lambda kv: -kv[1])[:40]:
    if b / n < 8:
        break
    print(f"| `{f}` | {b / n:,.0f} |")
