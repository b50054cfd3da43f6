#!/usr/bin/env bash
# Report latency with and without a flood: one release Rallypoint server (a fresh SQLite
# database, RUST_LOG=warn), and the loadgen run against it once per flood size in FLOODS, one
# after the other, with the same flags otherwise (docs/LOADGEN.md, "The flood"). Writes
# bench/results/flood-<n>.json, prints each run's table and then one table of both.
#
#   bench/flood.sh                               # 1000 clients, 100 drivers, 10 reports/s for 30 s; FLOODS="0 4"
#   FLOODS="0 4 0" DURATION=10 bench/flood.sh    # a quick look, with a second run without the flood
#
# Settings (environment): CLIENTS (1000), DRIVERS (100), RATE (10), DURATION (30), FLOODS ("0 4"),
# FLOOD_RATE (45: messages per second per flood client), PORT (18300), OUT (bench/results),
# LOADGEN_ARGS (extra flags for every run), SERVER_ENV (extra VAR=value for the server, e.g.
# "RALLYPOINT_DATABASE__SQLITE_SYNCHRONOUS=normal").
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-1000}"
DRIVERS="${DRIVERS:-100}"
RATE="${RATE:-10}"
DURATION="${DURATION:-30}"
FLOODS="${FLOODS:-0 4}"
FLOOD_RATE="${FLOOD_RATE:-45}"
PORT="${PORT:-18300}"
OUT="${OUT:-bench/results}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"
SERVER_ENV="${SERVER_ENV:-}"
TARGET="${CARGO_TARGET_DIR:-target}"

say() { printf '\n==> %s\n' "$*" >&2; }

# One secret for the server and the loadgen's tokens (both read RALLYPOINT_AUTH__SECRET).
export RALLYPOINT_AUTH__SECRET="${RALLYPOINT_AUTH__SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"

say "building (release): rallypoint, rallypoint-loadgen"
cargo build --release --bins --locked

ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "rallypoint on 127.0.0.1:$PORT, a fresh SQLite database"
# shellcheck disable=SC2086
env RUST_LOG=warn RALLYPOINT_DATABASE__URL="$work/rp.db" RALLYPOINT_SERVER__BIND="127.0.0.1:$PORT" \
  RALLYPOINT_SERVER__DATA_DIR="$work/data" $SERVER_ENV "$TARGET/release/rallypoint" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

runs=()
n=0
for flood in $FLOODS; do
  n=$((n + 1))
  json="$OUT/flood-$flood-run$n.json"
  say "run $n: --flood $flood, $CLIENTS clients, $DRIVERS drivers, $RATE reports/s for $DURATION s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086
  "$TARGET/release/rallypoint-loadgen" --server "127.0.0.1:$PORT" --clients "$CLIENTS" \
    --drivers "$DRIVERS" --rate "$RATE" --duration "$DURATION" --drain 10 \
    --flood "$flood" --flood-rate "$FLOOD_RATE" --server-pid "$server_pid" \
    --label "flood $flood" --json "$json" $LOADGEN_ARGS || echo "loadgen exit $? for --flood $flood" >&2
  runs+=("$json")
  say "after run $n: load $(cut -d' ' -f1-3 /proc/loadavg); SQLite files: $(cd "$work" && du -h rp.db* 2>/dev/null | tr '\t\n' ' ')"
done

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "the server exited during the runs; its log:" >&2
  cat "$work/server.log" >&2
fi

say "all runs"
python3 - "${runs[@]}" <<'EOF'
import json, os, sys, datetime
runs = [json.load(open(p)) for p in sys.argv[1:] if os.path.exists(p)]
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} × {cpu}")
print("| run | flood msgs sent | flood errors | flood replays (msgs) | report ack p50 ms | report ack p99 ms "
      "| last recipient p50 ms | last recipient p99 ms | all deliveries p50 ms | all deliveries p99 ms | missing | server CPU % | loadgen CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
f = lambda v, d=1: "—" if v is None else f"{v:.{d}f}"
for r in runs:
    a, l, d = r["report_ack"], r["last_recipient"], r["all_deliveries"]
    errors = ", ".join(f"{k} {v}" for k, v in r["flood_errors_by_code"].items()) or "0"
    print(f"| {r['label']} | {r['flood_sent']} | {errors} | {r['flood_replays']} ({r['flood_replayed_messages']}) "
          f"| {f(a['p50_ms'], 2)} | {f(a['p99_ms'], 2)} | {f(l['p50_ms'], 2)} | {f(l['p99_ms'], 2)} "
          f"| {f(d['p50_ms'], 2)} | {f(d['p99_ms'], 2)} | {r['events_missing']} | {f(r['server_cpu_percent'], 0)} "
          f"| {f(r['loadgen_cpu_percent'], 0)} |")
EOF
