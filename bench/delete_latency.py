#!/usr/bin/env python3
"""Deletes under load, against a running `waypoint serve` on loopback (issue 15, defect 8):
100k random 16-d points, then 50k deleted by one filter (or, with a second argument, in 50
requests of 1,000 ids) while a prober counts points every 50 ms; prints the delete's wall time
and the worst count latency meanwhile.

  build/waypoint serve --data /tmp/ddata --port 6398 &
  python3 bench/delete_latency.py 6398          # by filter
  python3 bench/delete_latency.py 6398 ids      # in batches of ids
"""
import json, random, time, urllib.request, threading, sys
port = int(sys.argv[1])
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())
random.seed(1)
call("PUT", "/collections/d", {"vectors": {"size": 16, "distance": "Euclid"}})
n = 100000
for b in range(0, n, 2000):
    pts = [{"id": i, "vector": [random.random() for _ in range(16)], "payload": {"g": i % 2}} for i in range(b, b + 2000)]
    call("PUT", "/collections/d/points?wait=true", {"points": pts})
worst = [0.0]; stop = [False]
def prober():
    while not stop[0]:
        t = time.time(); call("POST", "/collections/d/points/count", {}); worst[0] = max(worst[0], time.time() - t); time.sleep(0.05)
th = threading.Thread(target=prober); th.start()
t = time.time()
if len(sys.argv) > 2:
    for b in range(0, n, 2000):
        call("POST", "/collections/d/points/delete?wait=true", {"points": list(range(b, b + 2000, 2))})
else:
    call("POST", "/collections/d/points/delete?wait=true", {"filter": {"must": [{"key": "g", "match": {"value": 0}}]}})
d = time.time() - t
stop[0] = True; th.join()
print(f"delete 50k ({'50 batches of 1000 ids' if len(sys.argv) > 2 else 'by filter'}): {d:.1f} s; worst count latency meanwhile {worst[0]:.1f} s; left {call('POST','/collections/d/points/count',{})['result']['count']}")
