#!/usr/bin/env bash
# Where an online driver's memory goes: the release server under valgrind's dhat while N clients
# (default 2,000) connect, every one a driver that goes online with a position (or, with
# DRIVERS=0, plain sessions), and stay idle; then the heap live at its peak, grouped by the code
# that allocated it, in bytes per client (bench/dhat/summary.py).
#
#   bench/dhat/run.sh                 # 2,000 online drivers
#   N=2000 DRIVERS=0 bench/dhat/run.sh   # 2,000 idle sessions that are not drivers
#   BIN=/path/to/old/rallypoint bench/dhat/run.sh   # another build, for a before/after
#
# Needs valgrind. Takes about two minutes on an idle machine (the server runs some 50 times slower
# under dhat; the clients get 15 minutes to connect, for a busy one).
# Writes bench/results/dhat-<label>.json (dhat's own file, for dh_view.html) and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."

N="${N:-2000}"
DRIVERS="${DRIVERS-$N}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${BIN:-$TARGET/release/rallypoint}"
OUT="${OUT:-bench/results}"
LABEL="${LABEL:-$([ "$DRIVERS" -gt 0 ] && echo drivers || echo sessions)-$N}"

command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 2; }
if [ -z "${BIN_GIVEN:-}" ] && [ "$BIN" = "$TARGET/release/rallypoint" ]; then
  cargo build --release --locked -p rallypoint -p rallypoint-loadgen >&2
fi
[ -x "$TARGET/release/rallypoint-loadgen" ] || cargo build --release --locked -p rallypoint-loadgen >&2

export RALLYPOINT_AUTH__SECRET="${RALLYPOINT_AUTH__SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "==> $BIN under dhat, $N clients ($DRIVERS drivers) held idle" >&2
RUST_LOG=warn RALLYPOINT_DATABASE__URL="$work/rp.db" RALLYPOINT_SERVER__BIND=127.0.0.1:18300 \
  valgrind --tool=dhat --dhat-out-file="$work/dhat.json" "$BIN" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  (exec 3<>/dev/tcp/127.0.0.1/18300) 2>/dev/null && break
  sleep 0.2
done
# One client more than the drivers: the admin that every run has.
clients=$N
[ "$DRIVERS" -gt 0 ] && clients=$((N + 1))
"$TARGET/release/rallypoint-loadgen" --server 127.0.0.1:18300 --clients "$clients" --drivers "$DRIVERS" \
  --idle 10 --connect-concurrency 50 --connect-timeout 900 --label "dhat $LABEL" --json "$work/loadgen.json" >&2 || {
  echo "the loadgen failed; the server's log ends:" >&2
  grep -v '^==' "$work/server.log" | tail -20 >&2
  exit 1
}
kill -INT "$pid"
wait "$pid" || true
pid=""
cp "$work/dhat.json" "$OUT/dhat-$LABEL.json"
python3 bench/dhat/summary.py "$OUT/dhat-$LABEL.json" "$clients"
