#!/usr/bin/env bash
# The HTTP path (issue 19; docs/server.md "The HTTP path"): waypoint_load against `waypoint serve`
# on one dataset (SIFT10K by default), search load at 1, 8, 32 and 64 connections next to the
# in-process QPS and latency of the same index, and the transport's floor (GET /healthz). Two
# placements, each with the search route and the query route:
#   unpinned: the server on 2 threads, it and the load generator sharing both cores;
#   pinned:   the server on 1 thread on core 0, the load generator on core 1.
# Traffic goes to 127.0.0.1 only; every server is stopped at the end.
# With --client-threads N the load generator runs its connections on N event-loop threads (an
# asynchronous client) instead of a blocking thread per connection; with --client-spin as well,
# those threads poll without sleeping (a core each), so that no answer costs the server's core the
# client's wake-up (which loopback charges to the sender); pinned placement only (unpinned, a
# spinning client would take one of the server's two cores).
# With --server-poll-us N the server's threads poll for N microseconds after their last event
# before sleeping (`serve --poll-us`), so that a request arriving meanwhile costs no wake-up.
# With --raw-client the load generator's connections are bare HTTP/1.1 clients (no Beast; with
# --client-spin as well, on the pinned placement their reads poll without sleeping); with
# --client-threads N as well, they are held by N epoll loops (polling with --client-spin).
# With --client-share blocks (and --client-threads N), each client thread's connections are a
# block of consecutive ones rather than every Nth: the server deals connections to its threads in
# turn, so with 2 client threads the default (interleaved) puts each client thread's connections
# on one server thread and blocks spreads them over both (docs/server.md, "Client threads").
# With --unpinned-client-threads N and --unpinned-poll-us N, the unpinned placement's own
# client threads and server polling (by default those of --client-threads and --server-poll-us):
# one command then runs each placement as its goal is measured (docs/server.md).
# With --only pinned (or unpinned), that placement alone.
# With --paired-rounds R, after the rows the load generator measures the in-process reference and
# the rows again R times in turn, and prints each row's p50 over the same round's in-process p50
# and its QPS over the same round's in-process QPS on 1 thread and on 2 (medians and ranges): the
# goals' ratios (pinned: of 1 thread; unpinned: of 2), where the machine's speed, which drifts
# 10-30% between minutes, cancels out.
# With --plot FILE, a PNG of QPS and p99 against the number of connections, one line per placement
# and route (gnuplot).
#   bash bench/server_http.sh [--dataset tests/data/siftsmall] [--seconds 4] [--ef 64]
#                             [--port 7490] [--build-dir build] [--rounds 1] [--plot FILE]
#                             [--client-threads N [--client-spin]] [--server-poll-us N]
#                             [--only pinned|unpinned] [--raw-client] [--paired-rounds R]
#                             [--client-share interleaved|blocks]
#                             [--unpinned-client-threads N] [--unpinned-poll-us N]
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=tests/data/siftsmall seconds=4 ef=64 port=7490 build=${WAYPOINT_BUILD_DIR:-build} rounds=1
plot="" client_threads=0 client_spin= server_poll=0 placements="unpinned pinned" raw_client= paired=0
client_share=interleaved unpinned_threads="" unpinned_poll=""
while (($#)); do
  case "$1" in
    --dataset) dataset=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --ef) ef=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --plot) plot=$2; shift 2 ;;
    --client-threads) client_threads=$2; shift 2 ;;
    --client-spin) client_spin=--client-spin; shift ;;
    --server-poll-us) server_poll=$2; shift 2 ;;
    --only) placements=$2; shift 2 ;;
    --raw-client) raw_client=--raw-client; shift ;;
    --client-share) client_share=$2; shift 2 ;;
    --unpinned-client-threads) unpinned_threads=$2; shift 2 ;;
    --unpinned-poll-us) unpinned_poll=$2; shift 2 ;;
    --paired-rounds) paired=$2; shift 2 ;;
    *) echo "server_http.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $plot && $placements != "unpinned pinned" ]] &&
  { echo "server_http.sh: --plot draws both placements; leave out --only" >&2; exit 2; }
(($(nproc) >= 2)) || { echo "server_http.sh: the pinned placement needs 2 cores" >&2; exit 2; }
data=$(mktemp -d)
server=""
trap '[[ -n $server ]] && kill -9 $server 2>/dev/null; rm -rf "$data"' EXIT

run() {  # run PLACEMENT ROUTE
  local placement=$1 route=$2 serve_pin="" load_pin="" threads=2 spin=""
  local client_loops=$client_threads poll=$server_poll
  if [[ $placement == pinned ]]; then
    serve_pin="taskset -c 0" load_pin="taskset -c 1" threads=1 spin=$client_spin
  else
    client_loops=${unpinned_threads:-$client_threads} poll=${unpinned_poll:-$server_poll}
  fi
  rm -rf "$data/db"
  $serve_pin "$build/waypoint" serve --port "$port" --data "$data/db" --threads "$threads" \
    --poll-us "$poll" >"$data/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local loops=""
  ((client_loops > 0)) && loops=", $client_loops client threads ($client_share)"
  echo "== $placement, server --threads $threads --poll-us $poll, route $route${raw_client:+, raw client}$loops${spin:+, client spinning}"
  $load_pin "$build/bench/waypoint_load" --port "$port" --dataset "$dataset" \
    --connections 1,8,32,64 --seconds "$seconds" --ef "$ef" --route "$route" --json \
    --client-threads "$client_loops" $spin $raw_client --paired-rounds "$paired" \
    --client-share "$client_share" \
    >"$data/$placement-$route-$r.json"
  python3 - "$data/$placement-$route-$r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"in-process (same index): {r['inprocess_qps_1t']:.0f} QPS on 1 thread, "
      f"{r['inprocess_qps_2t']:.0f} on 2; one search p50 {r['inprocess_latency']['p50_us']:.1f} us")
print(f"transport floor (GET /healthz, 1 connection): p50 {r['healthz_latency']['p50_us']:.1f} us, "
      f"p99 {r['healthz_latency']['p99_us']:.1f} us; recall@k {r.get('http_recall_at_k', 0):.4f}")
print(f"{'connections':>12} {'qps':>10} {'p50_us':>10} {'p99_us':>10} {'errors':>8}")
for row in r["search"]:
    print(f"{row['connections']:>12} {row['qps']:>10.0f} {row['p50_us']:>10.1f} "
          f"{row['p99_us']:>10.1f} {row['errors']:>8}")
if "paired" in r:
    p = r["paired"]
    print(f"paired rounds ({len(p['rounds'])}): in-process p50 "
          + " ".join(f"{x['inprocess_latency']['p50_us']:.1f}" for x in p["rounds"]) + " us")
    for row in p["ratios"]:
        a, b = row["p50_over_inprocess_p50"], row["qps_over_inprocess_qps_1t"]
        c = row["qps_over_inprocess_qps_2t"]
        print(f"{row['connections']:>12} p50 {a['median']:.2f}x [{a['min']:.2f}, {a['max']:.2f}]"
              f"  QPS {100 * b['median']:.0f}% [{100 * b['min']:.0f}, {100 * b['max']:.0f}] "
              f"of in-process 1 thread, {100 * c['median']:.0f}% "
              f"[{100 * c['min']:.0f}, {100 * c['max']:.0f}] of 2 threads")
PY
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}

for ((r = 1; r <= rounds; r++)); do
  for placement in $placements; do
    for route in search query; do run "$placement" "$route"; done
  done
done

if [[ -n $plot ]]; then
  # One block per placement and route (the last round's), then QPS and p99 against connections.
  python3 - "$data" "$rounds" >"$data/plot.dat" <<'PY'
import json, sys
d, rounds = sys.argv[1], sys.argv[2]
for placement in ("unpinned", "pinned"):
    for route in ("search", "query"):
        r = json.load(open(f"{d}/{placement}-{route}-{rounds}.json"))
        print(f'"{placement}, {route}"')
        for row in r["search"]:
            print(row["connections"], row["qps"], row["p99_us"] / 1000)
        print("\n")
PY
  gnuplot <<GP
set terminal pngcairo size 1100,450 noenhanced
set output "$plot"
set multiplot layout 1,2 title "waypoint serve, $(basename "$dataset"), ef $ef: search load over HTTP"
set logscale x 2
set xlabel "connections"
set key left top
set ylabel "QPS"
plot for [i=0:3] "$data/plot.dat" index i using 1:2 with linespoints title columnheader(1)
set ylabel "p99 latency (ms)"
plot for [i=0:3] "$data/plot.dat" index i using 1:3 with linespoints title columnheader(1)
unset multiplot
GP
  echo "plot: $plot"
fi
