#!/usr/bin/env python3
"""Upsert throughput through the server (issue 19, docs/server.md "Upserts without the DOM"):
binaries alternated round by round on the same bodies, each on a fresh data folder with
`serve --threads 2` on 127.0.0.1:6394 (stopped after its bodies); the last binary's ratio to the
first is printed per kind of body.
usage: python3 bench/ingest_ab.py BIN_A [BIN_B ...] ROUNDS
Bodies: (multi) 2,000 points of 32 unit rows of 128 floats (ColBERT-like) plus a dense 128-d vector,
batches of 100; (dense) 20,000 points of 128 unit floats with a 3-key payload, batches of 500;
(hybrid) 10,000 points of a dense 128-d vector and a sparse one (120 of 30,522 indices) with
a 3-key payload, batches of 500.
Floats are written as Python writes a float64 (shortest repr, ~17 digits). wait=true."""
import http.client, json, random, subprocess, sys, time, shutil, math, statistics
BINS = sys.argv[1:-1]
ROUNDS = int(sys.argv[-1])
PORT, DATA, D = 6394, "/tmp/ingest-ab-data", 128
rng = random.Random(11)
def unit(v):
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]
def multi_bodies():
    out = []
    for b in range(20):
        pts = []
        for i in range(100):
            c = [rng.gauss(0, 1) for _ in range(D)]
            rows = [unit([a + rng.gauss(0, 0.7) for a in c]) for _ in range(32)]
            pts.append({"id": b * 100 + i, "vector": {"dense": unit(c), "colbert": rows}})
        out.append(json.dumps({"points": pts}))
    return out
def dense_bodies():
    out = []
    for b in range(40):
        pts = [{"id": b * 500 + i, "vector": unit([rng.gauss(0, 1) for _ in range(D)]),
                "payload": {"tag": "t%d" % (i % 7), "n": i, "s": "x"}} for i in range(500)]
        out.append(json.dumps({"points": pts}))
    return out
def hybrid_bodies():
    out = []
    for b in range(20):
        pts = []
        for i in range(500):
            idx = sorted(rng.sample(range(30522), 120))
            pts.append({"id": b * 500 + i, "vector": {"dense": unit([rng.gauss(0, 1) for _ in range(D)]),
                        "text": {"indices": idx, "values": [rng.random() * 3 for _ in idx]}},
                        "payload": {"tag": "t%d" % (i % 7), "n": i, "s": "x"}})
        out.append(json.dumps({"points": pts}))
    return out
def start(binary):
    shutil.rmtree(DATA, ignore_errors=True)
    p = subprocess.Popen([binary, "serve", "--data", DATA, "--port", str(PORT), "--threads", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT); c.request("GET", "/readyz")
            r = c.getresponse(); r.read()
            if r.status == 200: return p, c
        except OSError: time.sleep(0.02)
def call(c, method, path, body):
    c.request(method, path, body, {"content-type": "application/json"}); r = c.getresponse(); t = r.read()
    assert r.status == 200, t[:300]
def run(binary, kind, bodies, per):
    p, c = start(binary)
    cfg = ({"vectors": {"dense": {"size": D, "distance": "Cosine"},
                        "colbert": {"size": D, "distance": "Cosine", "hnsw_config": {"m": 0},
                                    "multivector_config": {"comparator": "max_sim"}}}}
           if kind == "multi" else
           {"vectors": {"dense": {"size": D, "distance": "Cosine"}}, "sparse_vectors": {"text": {}}}
           if kind == "hybrid" else {"vectors": {"size": D, "distance": "Cosine"}})
    call(c, "PUT", "/collections/x", json.dumps(cfg))
    t0 = time.time()
    for b in bodies: call(c, "PUT", "/collections/x/points?wait=true", b)
    dt = time.time() - t0
    p.terminate(); p.wait()
    return per * len(bodies) / dt, sum(map(len, bodies)) / dt / 1e6
mb, db, hb = multi_bodies(), dense_bodies(), hybrid_bodies()
print("bodies: multi %.1f MB, dense %.1f MB" % (sum(map(len, mb)) / 1e6, sum(map(len, db)) / 1e6))
res = {}
for r in range(ROUNDS):
    for name, binary in zip("ABCDEF", BINS):
        for kind, bodies, per in (("multi", mb, 100), ("dense", db, 500), ("hybrid", hb, 500)):
            pts, mbs = run(binary, kind, bodies, per)
            res.setdefault((name, kind), []).append(pts)
            print("round %d %s %-5s %8.0f points/s %6.1f MB/s" % (r, name, kind, pts, mbs), flush=True)
for kind in ("multi", "dense", "hybrid"):
    base = statistics.median(res[("A", kind)])
    for name, binary in zip("ABCDEF", BINS):
        m = statistics.median(res[(name, kind)])
        print("%s %s (%s): median %.0f points/s [%s], %.2fx A" % (kind, name, binary, m, ", ".join("%.0f" % x for x in res[(name, kind)]), m / base))
