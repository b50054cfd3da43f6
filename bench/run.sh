#!/usr/bin/env bash
# The side-by-side benchmark: the same load, from the same client (rallypoint-loadgen), against
#   1. Rallypoint (release, a fresh SQLite database, RUST_LOG=warn),
#   2. the bare actix-web-actors broadcast floor (bench/floor),
#   3. the Socket.IO 4 baseline on Node.js (bench/socketio),
#   4. rallypoint over socket.io: the same Rallypoint server as 1, its clients speaking its own
#      Socket.IO transport at /socket.io/ (--protocol rallypoint-socketio), so that the transport
#      is compared with Node's on the same framing,
#   5. rallypoint-base (only when BASELINE_BIN is set): another build of Rallypoint, an earlier
#      commit's, run exactly as 1, so that one run measures a change before and after,
# one server at a time, each freshly started, at each client count in SIZES. Writes one JSON per
# run and bench/results/latest.json (all runs, with the machine), prints the table, and draws
# bench/results/latency.png (bench/plot: each server's latency by percentile).
#
#   bench/run.sh                              # SIZES="5000 10000", 10 reports/s for 30 s
#   SIZES=1000 DURATION=10 bench/run.sh       # a quick look
#   SERVERS="rallypoint floor" bench/run.sh   # a subset
#   SIZES= IDLE=0 SERVERS=rallypoint bench/run.sh   # only the drivers-online memory runs
#   IDLE=0 IDLE_DRIVERS= bench/run.sh         # without the idle-memory runs
#   RUNS=5 IDLE=0 IDLE_DRIVERS= bench/run.sh  # five alternating rounds, medians compared
#   git worktree add /tmp/base HEAD~3 && (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base/target \
#     cargo build --release -p rallypoint -p rallypoint-loadgen)   # its own target folder, built
#                                             # with the same packages so features unify alike
#   BASELINE_BIN=/tmp/base/target/release/rallypoint SERVERS="rallypoint-base rallypoint floor" \
#     bench/run.sh                            # a change, before and after, beside the floor
#
# Settings (environment): SIZES, RATE (10), DURATION (30), DRIVERS (100), SERVERS (all four),
# IDLE (19000: clients of the idle runs, which hold the connections 5 s and read the server's RSS
# per connection; 0 skips them), IDLE_DRIVERS ("10000 19000": the drivers-online idle runs of the
# servers that have drivers, every client a driver that went online with a position, so the RSS per
# connection is what an online driver costs: session, driver actor, its rooms, its index entry;
# empty skips them), OUT (bench/results), LOADGEN_ARGS (extra flags for every run), BASELINE_BIN
# (the rallypoint binary that server rallypoint-base runs), RUNS (1: rounds of the load runs; each
# round runs every size on every server in turn, so the servers alternate and a noisy minute
# falls on all of them; with more than one, the medians per server and size are compared).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${SIZES-5000 10000}"
RATE="${RATE:-10}"
DURATION="${DURATION:-30}"
DRIVERS="${DRIVERS:-100}"
RUNS="${RUNS:-1}"
SERVERS="${SERVERS:-rallypoint floor socketio rallypoint-sio}"
IDLE="${IDLE:-19000}"
IDLE_DRIVERS="${IDLE_DRIVERS-10000 19000}"
OUT="${OUT:-bench/results}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"
TARGET="${CARGO_TARGET_DIR:-target}"
FLOOR_TARGET="${FLOOR_TARGET_DIR:-bench/floor/target}"

say() { printf '\n==> %s\n' "$*" >&2; }

# One HS256 secret for the server and the loadgen's tokens (both read RALLYPOINT_AUTH__SECRET),
# so the runs do not depend on a data/secret file or on which server runs first.
export RALLYPOINT_AUTH__SECRET="${RALLYPOINT_AUTH__SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"

say "building (release): rallypoint, rallypoint-loadgen, the floor; npm ci for Socket.IO"
cargo build --release --locked -p rallypoint -p rallypoint-loadgen
(cd bench/floor && CARGO_TARGET_DIR="$PWD/../../$FLOOR_TARGET" cargo build --release --locked)
case "$SERVERS" in *socketio*) (cd bench/socketio && npm ci --no-audit --no-fund --loglevel=error) ;; esac

# Each process here may open at most this many files; the servers raise their own soft limit,
# the shell does it for node and the loadgen.
ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not listen on port $1 within 10 s" >&2
  return 1
}

start() {
  local server="$1" log="$work/$1.log"
  case "$server" in
    rallypoint | rallypoint-sio | rallypoint-base)
      local bin="$TARGET/release/rallypoint"
      if [ "$server" = rallypoint-base ]; then
        bin="${BASELINE_BIN:?rallypoint-base runs the binary BASELINE_BIN names: set it}"
      fi
      rm -f "$work"/rp.db*
      # limits.max_connections (19,000 by default) raised so that the 19,000-driver idle run's
      # admin, the 19,001st connection, is not refused with 503; the open-file limit is 20,000.
      RUST_LOG=warn RALLYPOINT_DATABASE__URL="$work/rp.db" RALLYPOINT_SERVER__BIND=127.0.0.1:18000 \
        RALLYPOINT_LIMITS__MAX_CONNECTIONS=19500 \
        "$bin" serve >"$log" 2>&1 &
      port=18000 ;;
    floor)
      RUST_LOG=warn "$FLOOR_TARGET/release/rallypoint-floor" --bind 127.0.0.1:18100 >"$log" 2>&1 &
      port=18100 ;;
    socketio)
      (cd bench/socketio && exec node server.js 18200) >"$log" 2>&1 &
      port=18200 ;;
    *) echo "unknown server $server (rallypoint, floor, socketio, rallypoint-sio, rallypoint-base)" >&2; exit 2 ;;
  esac
  server_pid=$!
  wait_port "$port"
}

stop() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  sleep 1
}

# Appends to args the loadgen flags that make it speak server $1's protocol.
add_protocol_args() {
  case "$1" in
    floor) args+=(--no-orders) ;;
    socketio) args+=(--protocol socketio) ;;
    rallypoint-sio) args+=(--protocol rallypoint-socketio) ;;
  esac
}

runs=()
for round in $(seq 1 "$RUNS"); do
  for size in $SIZES; do
    for server in $SERVERS; do
      name="$server-$size"
      [ "$RUNS" -gt 1 ] && name="$name-run$round"
      say "$server, $size clients, $RATE reports/s for $DURATION s (round $round of $RUNS)"
      rm -f "$OUT/$name.json"
      start "$server"
      args=(--server "127.0.0.1:$port" --clients "$size" --drivers "$DRIVERS" --rate "$RATE"
        --duration "$DURATION" --drain 10 --server-pid "$server_pid" --label "$server"
        --json "$OUT/$name.json")
      add_protocol_args "$server"
      # shellcheck disable=SC2086
      "$TARGET/release/rallypoint-loadgen" "${args[@]}" $LOADGEN_ARGS || echo "loadgen exit $? for $server at $size" >&2
      stop
      runs+=("$OUT/$name.json")
    done
  done
done

idle=()
if [ "$IDLE" -gt 0 ]; then
  for server in $SERVERS; do
    say "$server, $IDLE idle clients: RSS per connection"
    start "$server"
    args=(--server "127.0.0.1:$port" --clients "$IDLE" --drivers "$DRIVERS" --idle 5
      --server-pid "$server_pid" --label "$server" --json "$OUT/$server-idle-$IDLE.json")
    add_protocol_args "$server"
    # shellcheck disable=SC2086
    "$TARGET/release/rallypoint-loadgen" "${args[@]}" $LOADGEN_ARGS || echo "loadgen exit $? for $server idle" >&2
    stop
    idle+=("$OUT/$server-idle-$IDLE.json")
  done
fi
for n in $IDLE_DRIVERS; do
  for server in $SERVERS; do
    case "$server" in rallypoint | rallypoint-sio | rallypoint-base) ;; *) continue ;; esac
    say "$server, $n idle online drivers: RSS per driver"
    start "$server"
    # One client more: the admin every rallypoint run has.
    args=(--server "127.0.0.1:$port" --clients "$((n + 1))" --drivers "$n" --idle 5
      --server-pid "$server_pid" --label "$server drivers" --json "$OUT/$server-idle-drivers-$n.json")
    add_protocol_args "$server"
    # shellcheck disable=SC2086
    "$TARGET/release/rallypoint-loadgen" "${args[@]}" $LOADGEN_ARGS || echo "loadgen exit $? for $server idle drivers" >&2
    stop
    idle+=("$OUT/$server-idle-drivers-$n.json")
  done
done

say "results: $OUT/latest.json"
IDLE_RUNS="${idle[*]:-}" python3 - "$OUT/latest.json" "${runs[@]}" <<'EOF'
import json, os, platform, statistics, subprocess, sys, datetime
out, paths = sys.argv[1], sys.argv[2:]
runs = [json.load(open(p)) for p in paths if os.path.exists(p)]
idle = [json.load(open(p)) for p in os.environ.get("IDLE_RUNS", "").split() if os.path.exists(p)]
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
machine = {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
json.dump({"machine": machine, "commit": commit, "runs": runs, "idle": idle}, open(out, 'w'), indent=2)
print(f"{machine['date']}, commit {commit}, {machine['cpus']} × {cpu}")
print("| server | clients | held | reports | events expected | missing | p50 ms | p95 ms | p99 ms | max ms | deliveries/s | RSS/conn KiB | server CPU % | loadgen CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    l = r["last_recipient"]
    f = lambda v, d=1: "—" if v is None else f"{v:.{d}f}"
    print(f"| {r['label']} | {r['clients']} | {r['connections_held']} | {r['reports_sent']} | {r['events_expected']} | {r['events_missing']} "
          f"| {f(l['p50_ms'])} | {f(l['p95_ms'])} | {f(l['p99_ms'])} | {f(l['max_ms'])} | {f(r['deliveries_per_s'], 0)} "
          f"| {f(r['server_rss_per_connection_kib'])} | {f(r['server_cpu_percent'], 0)} | {f(r['loadgen_cpu_percent'], 0)} |")
# p99 per server and size: the median of its rounds (one round: that run's).
p99s = {}
for r in runs:
    if r['last_recipient']['p99_ms'] is not None:
        p99s.setdefault((r['label'], r['clients']), []).append(r['last_recipient']['p99_ms'])
by = {k: statistics.median(v) for k, v in p99s.items()}
if any(len(v) > 1 for v in p99s.values()):
    print()
    print("| server | clients | rounds | p99 ms of each round | median p99 ms | missing (all rounds) |")
    print("|---|---|---|---|---|---|")
    for (label, n), v in sorted(p99s.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        missing = sum(r['events_missing'] for r in runs if r['label'] == label and r['clients'] == n)
        print(f"| {label} | {n} | {len(v)} | {', '.join(f'{x:.1f}' for x in v)} | {by[(label, n)]:.1f} | {missing} |")
    print()
# Ours against the floor and Node; ours over Socket.IO against Node (the same framing) and
# against ours natively (what the transport costs).
pairs = [('rallypoint', 'floor'), ('rallypoint', 'socketio'),
         ('rallypoint-sio', 'socketio'), ('rallypoint-sio', 'rallypoint'),
         ('rallypoint-base', 'floor'), ('rallypoint', 'rallypoint-base')]
for n in sorted({r['clients'] for r in runs}):
    for ours, other in pairs:
        if by.get((ours, n)) and by.get((other, n)):
            what = "median p99" if len(p99s[(ours, n)]) > 1 else "p99"
            print(f"{what} ratio at {n} clients: {ours} / {other} = {by[(ours, n)] / by[(other, n)]:.2f}")
if idle:
    print()
    print("| server | idle clients | drivers | held | RSS before KiB | RSS held KiB | RSS/conn KiB |")
    print("|---|---|---|---|---|---|---|")
    for r in idle:
        print(f"| {r['label']} | {r['clients']} | {r.get('drivers', '—')} | {r['connections_held']} | {r['server_rss_before_kib']} "
              f"| {r['server_rss_after_connect_kib']} | {r['server_rss_per_connection_kib']:.2f} |")
EOF

if [ "${#runs[@]}" -gt 0 ]; then
  say "plot: $OUT/latency.png"
  (cd bench/plot && CARGO_TARGET_DIR="$PWD/target" cargo build --release --locked -q)
  bench/plot/target/release/rallypoint-benchplot "$OUT/latest.json" "$OUT/latency.png"
fi
