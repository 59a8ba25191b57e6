#!/usr/bin/env bash
# The server's instructions per search request (issue 19; docs/server.md "The HTTP path"):
# each binary serves under valgrind's callgrind, a collection of SIFT10K (M=16, ef_construct=100)
# is uploaded with counting off, then 1000 searches (limit 10, hnsw_ef 64) are sent on one
# keep-alive connection with counting on. Prints instructions a request in all, in Api::handle,
# in the index's search, and outside the handler (HTTP, Asio, the connection). Instruction counts
# do not move with the machine's speed (this virtual machine's QPS moves 10-30% between minutes),
# so they compare binaries where timings cannot; they leave out the kernel's work (the socket
# calls) and say nothing of cache misses, so a change they show is confirmed by timings too.
# Needs valgrind and python3; traffic goes to 127.0.0.1 only; each server is stopped at the end.
#   bash bench/server_instructions.sh [--port 7592] [--dataset tests/data/siftsmall] BINARY...
set -euo pipefail
cd "$(dirname "$0")/.."
port=7592 dataset=tests/data/siftsmall
while (($#)); do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --dataset) dataset=$2; shift 2 ;;
    *) break ;;
  esac
done
(($#)) || { echo "usage: server_instructions.sh [--port P] [--dataset D] BINARY..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "server_instructions.sh: needs valgrind" >&2; exit 2; }
work=$(mktemp -d)
server=""
trap '[[ -n $server ]] && kill -9 $server 2>/dev/null; rm -rf "$work"' EXIT

cat >"$work/client.py" <<'PY'
# client.py PORT DATASET load|search
import http.client, json, struct, sys
port, dataset, phase = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def fvecs(path):
    b = open(path, 'rb').read(); out = []; i = 0
    while i < len(b):
        d = struct.unpack_from('<i', b, i)[0]
        out.append(list(struct.unpack_from('<%df' % d, b, i + 4))); i += 4 + 4 * d
    return out
c = http.client.HTTPConnection('127.0.0.1', port, timeout=600)
def call(method, path, body):
    c.request(method, path, body=json.dumps(body), headers={'Content-Type': 'application/json'})
    r = c.getresponse(); text = r.read(); assert r.status == 200, text
if phase == 'load':
    base = fvecs(dataset + '/base.fvecs')
    call('PUT', '/collections/s', {'vectors': {'size': len(base[0]), 'distance': 'Euclid'},
                                   'hnsw_config': {'m': 16, 'ef_construct': 100}})
    for i in range(0, len(base), 500):
        call('PUT', '/collections/s/points?wait=true',
             {'points': [{'id': j, 'vector': base[j]} for j in range(i, min(i + 500, len(base)))]})
else:
    q = fvecs(dataset + '/query.fvecs')
    for i in range(1000):
        call('POST', '/collections/s/points/search',
             {'vector': q[i % len(q)], 'limit': 10, 'params': {'hnsw_ef': 64}})
PY

printf '%-40s %12s %12s %12s %12s\n' binary "all" "Api::handle" "search_one" "outside"
for bin in "$@"; do
  out="$work/callgrind.out"
  rm -rf "$work/db"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$bin" serve \
    --port "$port" --data "$work/db" --threads 1 --idle-timeout 600 >"$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  python3 "$work/client.py" "$port" "$dataset" load
  callgrind_control -i on "$server" >/dev/null 2>&1
  python3 "$work/client.py" "$port" "$dataset" search
  callgrind_control -i off "$server" >/dev/null 2>&1
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  callgrind_annotate --inclusive=yes "$out" 2>/dev/null | python3 -c '
import re, sys
total = handle = search = 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) ", line)
    if not m: continue
    n = int(m.group(1).replace(",", "")) / 1000  # a request: 1000 were counted
    if "PROGRAM TOTALS" in line: total = n
    elif "wp::http::Api::handle(" in line: handle = max(handle, n)
    elif "wp::index::HnswIndex::search_one(" in line: search = max(search, n)
print(f"{sys.argv[1][-40:]:<40} {total:12,.0f} {handle:12,.0f} {search:12,.0f} {total - handle:12,.0f}")
' "$bin"
done
