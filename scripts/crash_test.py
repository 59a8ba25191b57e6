#!/usr/bin/env python3
"""Crash test at scale (issue 15): kill -9 a loaded `waypoint serve` under mixed writes, over and
over, and check after every restart that no acknowledged write was lost.

  python3 scripts/crash_test.py --binary build/waypoint                     # 100k points, 50 kills
  python3 scripts/crash_test.py --binary build/waypoint --points 3000 --kills 5  # short (CTest)
  python3 scripts/crash_test.py --binary build/waypoint --self-test     # the checker's own test

Options: --binary, --points N (100000), --dim D (16), --kills K (50), --threads T (8 client
threads), --seed S, --data DIR (default: a fresh temporary folder, removed after a clean run),
--port P (default: any free loopback port, chosen by the server at each start), --server-threads,
--epoch-seconds (longest run of writes between two kills), --queries (recall sample);
--self-test plants each kind of violation behind the checker's back and fails unless every one
is reported.

What it does:
  1. Starts the server, creates collection "crash" (Euclid), loads N random points (fixed seed)
     with wait=true, and times one index rebuild (to aim the kills during rebuilds).
  2. T client threads write concurrently: upserts (Qdrant's "points" and "batch" shapes, 1..500
     points, now and then an id twice in one batch: the last one wins), deletes of 1..200 ids and
     deletes by filter, each with wait=true or without it, payloads of varying shape. Thread t
     owns the ids [t*R, (t+1)*R) and writes payload {"owner": t, "bucket": b, "gen": op, ...}; its
     filters always name owner=t, so the order of the operations on each id is known exactly.
  3. At K random moments the server is killed with SIGKILL: plainly (half of the kills), during
     an index rebuild (a quarter: PUT /waypoint/collections/crash/vector_index {"type": "hnsw", ...}, the route
     that rebuilds the vector index in this server, which has no PATCH /collections/{name};
     killed at a random moment of the build's expected duration, while writes go on beside
     the build and are replayed into the new index at its swap), or during shutdown (a quarter: SIGTERM, then SIGKILL 1..1000 ms later; the server may
     finish its shutdown first).
  4. After each restart every point is read back (scroll with payload and vector) and compared
     with the clients' log: each id must hold its last acknowledged state, or the state of the
     one operation its thread had in flight at the kill (a thread stops at its first failed
     request, so it has at most one; a refused connection means the request was never sent).
     Counted: loss (an acknowledged write missing, or an acknowledged delete undone), phantoms (a
     point no operation created), duplicates (an id twice in the scroll), payload and vector
     mismatches, torn requests (applied to some of their points only: the store writes each
     request as one atomic RocksDB WriteBatch), error answers, a count that disagrees with the
     scroll, and stale reads (a point read back right after an acknowledged write differs from
     it). The known state is then reset to what was read.
  5. After the last restart: recall@10 of the crash collection's HNSW searches against exact
     search (`params.exact`, itself checked against brute force in Python on a few queries), and
     the same for a fresh collection "fresh" built by upserting the same final points with the
     same index parameters; the crash collection may be at most 0.02 below the fresh one.

Durability being checked (README "Durability", engine/point_store.h): an upsert or delete with
wait=true is answered "completed" after the RocksDB write-ahead log is fsynced; without wait it is
answered "acknowledged" after the write reached the operating system (WAL written, not fsynced),
and already applied in memory. Both must therefore survive SIGKILL of the process (not a power
loss, which this test cannot cause), so an acknowledged write is held to the same standard
whatever its wait flag; losses are reported per flag.

Exit status: 0 when every check passed, 1 on any violation, 2 on a usage error.
Python 3.11 standard library only.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import string
import struct
import sys
import tempfile
import threading
import time
from collections import Counter

from waypoint_server import Server

COLLECTION = "crash"
BUCKETS = 32  # payload "bucket" values; a delete by filter removes one or two buckets of a thread
TAGS = ["alpha", "beta", "γάμμα", "δ", "emoji 🚀", "", 'with "quotes"', "back\\slash",
        "x" * 200, "tab\tnew\nline"]


# ----------------------------------------------------------------------------------------------
# Server process and HTTP

class Gone(Exception):
    """The request got no answer (connection reset or closed, timeout): it may have been applied."""


class Refused(Gone):
    """The connection was refused: the request never reached a server."""


class Client:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, port, timeout=120.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        """(status, parsed JSON answer); raises Gone when no complete answer came back."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except ConnectionRefusedError as e:
            self.conn.close()
            raise Refused(str(e)) from None
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise Gone(f"{type(e).__name__}: {e}") from None
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, {"unparsable": raw[:200].decode("utf-8", "replace")}

    def ok(self, method, path, body=None):
        """The answer's "result"; raises RuntimeError on anything but 200."""
        status, ans = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {ans}")
        return ans["result"]

    def close(self):
        self.conn.close()


# ----------------------------------------------------------------------------------------------
# Points, payloads, states

def f32(values):
    """The values rounded to float32 (what the server stores), as Python floats."""
    return struct.unpack(f"{len(values)}f", struct.pack(f"{len(values)}f", *values))


def canon(payload):
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


class State:
    """A stored point: vector (float32 values), canonical payload text, and the bucket a filter
    of its owner matches (None when the payload has none)."""
    __slots__ = ("vec", "pay", "bucket")

    def __init__(self, vec, payload, owner):
        self.vec = tuple(vec)
        self.pay = canon(payload)
        self.bucket = payload.get("bucket") if payload.get("owner") == owner else None

    def __eq__(self, other):
        return isinstance(other, State) and self.vec == other.vec and self.pay == other.pay

    def __hash__(self):
        return hash((self.vec, self.pay))

    def show(self):
        return f"payload {self.pay[:120]} vector[:3] {list(self.vec[:3])}"


def show(state):
    return "absent" if state is None else state.show()


class IdSet:
    """A set with O(1) add, remove and uniform random choice."""

    def __init__(self):
        self.items, self.pos = [], {}

    def add(self, x):
        if x not in self.pos:
            self.pos[x] = len(self.items)
            self.items.append(x)

    def discard(self, x):
        i = self.pos.pop(x, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.pos[last] = i

    def choice(self, rng):
        return self.items[rng.randrange(len(self.items))]

    def __len__(self):
        return len(self.items)


class Op:
    """One write request and its effect on each id it touches (id -> State or None)."""

    def __init__(self, kind, wait, method, path, body, post):
        self.kind, self.wait, self.method, self.path, self.body = kind, wait, method, path, body
        self.post = post

    def label(self):
        return f"{self.kind}_{'wait' if self.wait else 'nowait'}"


# ----------------------------------------------------------------------------------------------
# Client threads

class Worker:
    """A client thread's writes to its own id range and its exact model of that range."""

    def __init__(self, t, lo, hi, dim, seed, stats, lock):
        self.t, self.lo, self.hi, self.dim = t, lo, hi, dim
        self.rng = random.Random(seed * 1000003 + t)
        self.state = {}  # id -> State of the points that exist
        self.live = IdSet()
        self.last_wait = {}  # id -> wait flag of the last acknowledged write to it
        self.created = set()  # ids some upsert (acknowledged or not) wrote
        self.pending = None  # the Op in flight when the server went away, if any
        self.gen = 0
        self.stats, self.lock = stats, lock
        self.visible_bad = []  # stale reads right after an acknowledged write

    # -- operations --

    def vector(self):
        return f32([self.rng.random() for _ in range(self.dim)])

    def payload(self):
        rng = self.rng
        if rng.random() < 0.04:
            return None  # stored as {}
        p = {"owner": self.t, "bucket": rng.randrange(BUCKETS), "gen": self.gen}
        if rng.random() < 0.3:
            p["tag"] = rng.choice(TAGS)
        if rng.random() < 0.3:
            p["score"] = rng.random()
        if rng.random() < 0.2:
            p["tags"] = [rng.choice(TAGS) for _ in range(rng.randrange(4))]
        if rng.random() < 0.1:
            p["nested"] = {"a": {"b": rng.randrange(-1000, 1000), "c": [1, 2.5, None, True]}}
        if rng.random() < 0.05:
            p["blob"] = "".join(rng.choice(string.ascii_letters)
                                for _ in range(rng.randrange(200, 2000)))
        if rng.random() < 0.05:
            p["flag"] = rng.choice([True, False, None])
        return p

    def batch_size(self, most=500):
        return self.rng.randint(1, 20) if self.rng.random() < 0.6 else self.rng.randint(21, most)

    def pick_id(self, p_live):
        if len(self.live) and self.rng.random() < p_live:
            return self.live.choice(self.rng)
        return self.rng.randrange(self.lo, self.hi)

    def make_op(self):
        rng = self.rng
        self.gen += 1
        wait = rng.random() < 0.5
        q = "?wait=true" if wait else ("?wait=false" if rng.random() < 0.3 else "")
        r = rng.random()
        if r < 0.75:  # upsert
            ids = [self.pick_id(0.5) for _ in range(self.batch_size())]
            if rng.random() < 0.05:
                ids.append(rng.choice(ids))  # an id twice: the last one wins
            vecs = [self.vector() for _ in ids]
            pays = [self.payload() for _ in ids]
            post = {}
            for i, v, p in zip(ids, vecs, pays):
                post[i] = State(v, p or {}, self.t)
            if rng.random() < 0.5:
                pts = []
                for i, v, p in zip(ids, vecs, pays):
                    pt = {"id": i, "vector": list(v)}
                    if p is not None or rng.random() < 0.5:
                        pt["payload"] = p
                    pts.append(pt)
                body = {"points": pts}
            else:
                batch = {"ids": ids, "vectors": [list(v) for v in vecs]}
                if any(p is not None for p in pays):
                    batch["payloads"] = pays
                body = {"batch": batch}
            return Op("upsert", wait, "PUT", f"/collections/{COLLECTION}/points{q}", body, post)
        if r < 0.98:  # delete by ids (some absent)
            ids = [self.pick_id(0.7) for _ in range(self.batch_size(200))]
            return Op("delete_ids", wait, "POST", f"/collections/{COLLECTION}/points/delete{q}",
                      {"points": ids}, {i: None for i in ids})
        # delete by filter: this thread's points of one or two buckets
        buckets = rng.sample(range(BUCKETS), rng.choice([1, 1, 2]))
        cond = ({"key": "bucket", "match": {"value": buckets[0]}} if len(buckets) == 1
                else {"key": "bucket", "match": {"any": buckets}})
        body = {"filter": {"must": [{"key": "owner", "match": {"value": self.t}}, cond]}}
        post = {i: None for i, s in self.state.items() if s.bucket in buckets}
        return Op("delete_filter", wait, "POST", f"/collections/{COLLECTION}/points/delete{q}",
                  body, post)

    def apply(self, op):
        """Records an acknowledged op in the model."""
        for i, s in op.post.items():
            if s is None:
                self.state.pop(i, None)
                self.live.discard(i)
            else:
                self.state[i] = s
                self.live.add(i)
            self.last_wait[i] = op.wait

    # -- the thread --

    def run_epoch(self, port, stop):
        """Writes until `stop` is set or a request fails (then that request stays pending)."""
        cl = Client(port)
        try:
            while not stop.is_set():
                op = self.make_op()
                self.created.update(i for i, s in op.post.items() if s is not None)
                try:
                    status, ans = cl.call(op.method, op.path, op.body)
                except Refused:
                    with self.lock:
                        self.stats["refused"] += 1
                    return  # never sent: the known state stands
                except Gone:
                    self.pending = op
                    return
                if status != 200:
                    with self.lock:
                        self.stats["error_answers"] += 1
                        self.stats["examples"].append(
                            f"thread {self.t}: {op.method} {op.path} -> HTTP {status}: "
                            f"{json.dumps(ans)[:300]}")
                    self.pending = op  # it may have been applied: treat it as in flight
                    return
                want = "completed" if op.wait else "acknowledged"
                got = (ans.get("result") or {}).get("status") if isinstance(ans, dict) else None
                self.apply(op)
                with self.lock:
                    self.stats["acked"][op.label()] += 1
                    self.stats["acked_points"][op.kind] += len(op.post)
                    if got != want:
                        self.stats["bad_answers"] += 1
                        self.stats["examples"].append(
                            f"thread {self.t}: wait={op.wait} answered status {got!r}")
                if self.rng.random() < 0.05 and op.post:
                    if not self.check_visible(cl, op):
                        return
        finally:
            cl.close()

    def check_visible(self, cl, op):
        """Reads some of an acknowledged op's ids back: writes are visible at once (with or
        without wait). False when the server went away meanwhile."""
        ids = list(op.post)[:20]
        try:
            status, ans = cl.call("POST", f"/collections/{COLLECTION}/points",
                                  {"ids": ids, "with_payload": True, "with_vector": True})
        except Gone:
            return False
        if status != 200:
            with self.lock:
                self.stats["error_answers"] += 1
                self.stats["examples"].append(f"thread {self.t}: retrieve -> HTTP {status}")
            return True
        seen = {p["id"]: State(p["vector"], p["payload"], self.t) for p in ans["result"]}
        for i in ids:
            if seen.get(i) != self.state.get(i):
                with self.lock:
                    self.stats["stale_reads"] += 1
                    self.stats["examples"].append(
                        f"stale read of id {i} after acknowledged {op.label()}: expected "
                        f"{show(self.state.get(i))}, read {show(seen.get(i))}")
        return True


# ----------------------------------------------------------------------------------------------
# Reading back and checking

def scroll_all(cl, with_vector=True, page=2000):
    """({id: (vector, payload)}, duplicate ids, ids out of order)."""
    out, dups, disorder = {}, [], 0
    offset, last = None, None
    while True:
        body = {"limit": page, "with_payload": True, "with_vector": with_vector}
        if offset is not None:
            body["offset"] = offset
        res = cl.ok("POST", f"/collections/{COLLECTION}/points/scroll", body)
        for p in res["points"]:
            i = p["id"]
            if i in out:
                dups.append(i)
            if last is not None and isinstance(i, int) and isinstance(last, int) and i <= last:
                disorder += 1
            last = i
            out[i] = (p.get("vector"), p.get("payload"))
        offset = res.get("next_page_offset")
        if offset is None:
            return out, dups, disorder


class Checker:
    def __init__(self, workers, span):
        self.workers, self.span = workers, span
        self.totals = Counter()
        self.examples = []

    def note(self, what, text):
        self.totals[what] += 1
        if len(self.examples) < 40:
            self.examples.append(f"{what}: {text}")

    def verify(self, cl):
        """Compares the server's points with the model; returns this round's counts and resets
        the model to what was read."""
        before = Counter(self.totals)
        observed, dups, disorder = scroll_all(cl)
        for i in dups:
            self.note("duplicates", f"id {i} twice in the scroll")
        if disorder:
            self.note("scroll_order", f"{disorder} ids out of order in the scroll")
        count = cl.ok("POST", f"/collections/{COLLECTION}/points/count", {"exact": True})["count"]
        if count != len(observed):
            self.note("count_mismatch", f"count {count} vs {len(observed)} points scrolled")
        nworkers = len(self.workers)
        by_worker = [dict() for _ in range(nworkers)]
        for i, (vec, pay) in observed.items():
            t = i // self.span if isinstance(i, int) and 0 <= i < nworkers * self.span else None
            if t is None:
                self.note("phantoms", f"id {i!r} outside every thread's range")
                continue
            if not isinstance(pay, dict) or not isinstance(vec, list):
                self.note("payload_mismatch", f"id {i}: payload {pay!r} vector {vec!r}")
                continue
            by_worker[t][i] = State(vec, pay, t)
        inflight = Counter()
        for w, obs in zip(self.workers, by_worker):
            pend = w.pending.post if w.pending else {}
            for i in set(obs) | set(w.state) | set(pend):
                o, pre = obs.get(i), w.state.get(i)
                allowed = [pre] + ([pend[i]] if i in pend else [])
                if o in allowed:
                    continue
                present = [a for a in allowed if a is not None]
                if o is None:
                    flag = "wait" if w.last_wait.get(i, True) else "nowait"
                    self.note("loss", f"id {i} (last acknowledged write wait={flag == 'wait'}) "
                                      f"missing; expected {show(pre)}")
                    self.totals[f"loss_{flag}"] += 1
                elif not present:
                    if i in w.created:
                        flag = "wait" if w.last_wait.get(i, True) else "nowait"
                        self.note("loss", f"id {i}: acknowledged delete (wait={flag == 'wait'}) "
                                          f"undone: {show(o)}")
                        self.totals[f"loss_{flag}"] += 1
                    else:
                        self.note("phantoms", f"id {i} never written: {show(o)}")
                else:
                    vec_ok = any(a.vec == o.vec for a in present)
                    pay_ok = any(a.pay == o.pay for a in present)
                    exp = " or ".join(show(a) for a in allowed)
                    if not vec_ok:
                        self.note("vector_mismatch", f"id {i}: read {show(o)}; expected {exp}")
                    if not pay_ok:
                        self.note("payload_mismatch", f"id {i}: read {show(o)}; expected {exp}")
                    if vec_ok and pay_ok:
                        self.note("torn", f"id {i}: vector and payload of different writes")
            if w.pending:
                # Was the in-flight request applied, not applied, or applied in part?
                changed = [i for i, s in pend.items() if s != w.state.get(i)]
                applied = sum(1 for i in changed if obs.get(i) == pend[i])
                kept = sum(1 for i in changed if obs.get(i) == w.state.get(i))
                if not changed:
                    inflight["no_effect"] += 1
                elif applied == len(changed):
                    inflight["applied"] += 1
                elif kept == len(changed):
                    inflight["not_applied"] += 1
                else:
                    inflight["partial"] += 1
                    self.note("torn", f"thread {w.t}: in-flight {w.pending.label()} of "
                                      f"{len(changed)} changes applied to {applied} only")
            # What was read is now the known state.
            w.state = obs
            w.live = IdSet()
            for i in obs:
                w.live.add(i)
            w.pending = None
        return {k: self.totals[k] - before[k] for k in self.totals}, len(observed), inflight, \
            observed


# ----------------------------------------------------------------------------------------------
# Recall

def l2(a, b):
    return sum((x - y) * (x - y) for x, y in zip(a, b))


def search_ids(cl, name, queries, exact):
    out = []
    for q in queries:
        body = {"vector": list(q), "limit": 10}
        if exact:
            body["params"] = {"exact": True}
        out.append([p["id"] for p in cl.ok("POST", f"/collections/{name}/points/search", body)])
    return out


def recall(found, truth):
    return sum(len(set(f) & set(t)) for f, t in zip(found, truth)) / max(
        1, sum(len(t) for t in truth))


def recall_check(cl, observed, dim, nq, seed, checker):
    """(recall crash, recall fresh, index params)."""
    rng = random.Random(seed + 7)
    queries = [f32([rng.random() for _ in range(dim)]) for _ in range(nq)]
    exact = search_ids(cl, COLLECTION, queries, True)
    # The server's exact search against brute force in Python on a few queries.
    points = [(i, v) for i, (v, _) in observed.items()]
    nbrute = max(2, min(20, 20_000_000 // max(1, len(points) * dim)))
    for q, got in zip(queries[:nbrute], exact[:nbrute]):
        d = sorted((l2(q, v), i) for i, v in points)
        kth = d[min(9, len(d) - 1)][0]
        dist = {i: dd for dd, i in d}
        if len(got) != min(10, len(d)) or any(dist.get(i, float("inf")) > kth * (1 + 1e-5) + 1e-9
                                              for i in got):
            checker.note("exact_search_wrong", f"exact search {got} vs brute force "
                                               f"{[i for _, i in d[:10]]}")
    crash = recall(search_ids(cl, COLLECTION, queries, False), exact)
    params = cl.ok("GET", f"/waypoint/collections/{COLLECTION}/vector_index")["params"]
    cl.ok("PUT", "/collections/fresh",
          {"vectors": {"size": dim, "distance": "Euclid"},
           "hnsw_config": {"m": params["m"], "ef_construct": params["ef_construct"],
                           "ef": params["ef"]}})
    items = list(observed.items())
    for b in range(0, len(items), 500):
        cl.ok("PUT", "/collections/fresh/points?wait=true",
              {"points": [{"id": i, "vector": v, "payload": p} for i, (v, p) in items[b:b + 500]]})
    fresh_params = cl.ok("GET", "/waypoint/collections/fresh/vector_index")["params"]
    if fresh_params != params:
        checker.note("fresh_config", f"fresh index {fresh_params} vs crash {params}")
    fresh = recall(search_ids(cl, "fresh", queries, False), exact)
    return crash, fresh, params


# ----------------------------------------------------------------------------------------------
# Self-test: the checker must see each kind of violation

def self_test(binary):
    """Plants a loss (wait and no wait), an undone delete, phantoms (in and out of range), a
    vector and a payload mismatch and a torn in-flight request behind the model's back; exit 0
    only when verify() reports every one of them."""
    work = tempfile.mkdtemp(prefix="waypoint-crash-selftest-")
    server = Server(binary, os.path.join(work, "data"), 0, 2, os.path.join(work, "server.log"))
    try:
        server.start()
        cl = Client(server.port)
        cl.ok("PUT", f"/collections/{COLLECTION}", {"vectors": {"size": 4, "distance": "Euclid"}})
        stats = {"acked": Counter(), "acked_points": Counter(), "examples": []}
        workers = [Worker(t, t * 100, t * 100 + 100, 4, 1, stats, threading.Lock())
                   for t in range(2)]
        for w in workers:
            pts = []
            for i in range(w.lo, w.lo + 50):
                v, p = f32([0.1 * (i % 7), 0.2, 0.3, 0.4]), {"owner": w.t, "bucket": 1, "gen": 0}
                pts.append({"id": i, "vector": list(v), "payload": p})
                w.state[i] = State(v, p, w.t)
                w.live.add(i)
                w.created.add(i)
                w.last_wait[i] = True
            cl.ok("PUT", f"/collections/{COLLECTION}/points?wait=true", {"points": pts})
        checker = Checker(workers, 100)
        clean = checker.verify(cl)[0]
        put = f"/collections/{COLLECTION}/points"
        w0, w1 = workers
        for i, wait in [(3, True), (4, False)]:  # acknowledged writes lost
            cl.ok("POST", f"/collections/{COLLECTION}/points/delete", {"points": [i]})
            w0.last_wait[i] = wait
        w0.state.pop(10)  # an acknowledged delete of id 10, undone
        cl.ok("PUT", put, {"points": [{"id": 77, "vector": [1, 1, 1, 1]},  # never written
                                      {"id": 5000, "vector": [1, 1, 1, 1]}]})  # no owner
        cl.ok("PUT", put, {"points": [{"id": 104, "vector": [9, 9, 9, 9],
                                       "payload": {"owner": 1, "bucket": 1, "gen": 0}},
                                      {"id": 105, "vector": list(w1.state[105].vec),
                                       "payload": {"x": 1}}]})
        v = f32([5, 5, 5, 5])  # an in-flight upsert of ids 20 and 21 applied to 20 only
        w0.pending = Op("upsert", True, "PUT", put, {}, {20: State(v, {}, 0), 21: State(v, {}, 0)})
        cl.ok("PUT", put, {"points": [{"id": 20, "vector": list(v)}]})
        found = checker.verify(cl)[0]
        cl.close()
    finally:
        server.kill()
    want = {"loss": 3, "loss_wait": 2, "loss_nowait": 1, "phantoms": 2, "vector_mismatch": 1,
            "payload_mismatch": 1, "torn": 1}
    ok = not clean and found == want
    print(f"self-test: clean round {clean or 'no findings'}; planted round {found}")
    print("PASS" if ok else f"FAIL: expected {want}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


# ----------------------------------------------------------------------------------------------
# Main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="build/waypoint")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--threads", type=int, default=8, help="client threads")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", default=None, help="data folder (must be empty or absent)")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--epoch-seconds", type=float, default=2.0,
                    help="longest run of writes between two kills")
    ap.add_argument("--queries", type=int, default=200, help="recall sample")
    ap.add_argument("--self-test", action="store_true",
                    help="plant each kind of violation and check that it is reported")
    args = ap.parse_args()
    if args.points < args.threads or args.dim < 1 or args.kills < 0 or args.threads < 1:
        ap.error("need --points >= --threads >= 1, --dim >= 1, --kills >= 0")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        ap.error(f"--binary: {binary} is not an executable")
    if args.self_test:
        return self_test(binary)
    if args.data:
        if os.path.exists(args.data) and os.listdir(args.data):
            ap.error(f"--data: {args.data} is not empty")
        os.makedirs(args.data, exist_ok=True)
        work, data, own = os.path.abspath(args.data), os.path.abspath(args.data), False
    else:
        work = tempfile.mkdtemp(prefix="waypoint-crash-")
        data, own = os.path.join(work, "data"), True
    log_path = os.path.join(work, "server.log")  # beside collections/ with --data

    rng = random.Random(args.seed)
    stats = {"acked": Counter(), "acked_points": Counter(), "error_answers": 0, "bad_answers": 0,
             "stale_reads": 0, "refused": 0, "examples": []}
    lock = threading.Lock()
    span = 2 * ((args.points + args.threads - 1) // args.threads)  # ids per thread
    workers = [Worker(t, t * span, (t + 1) * span, args.dim, args.seed, stats, lock)
               for t in range(args.threads)]
    checker = Checker(workers, span)
    server = Server(binary, data, args.port, args.server_threads, log_path)
    kills = Counter()
    t_start = time.monotonic()
    print(f"crash test: {args.points} points of dim {args.dim}, {args.kills} kills, "
          f"{args.threads} client threads, seed {args.seed}, data {data}", flush=True)

    fatal = None
    try:
        server.start()
        cl = Client(server.port)
        cl.ok("PUT", f"/collections/{COLLECTION}",
              {"vectors": {"size": args.dim, "distance": "Euclid"}})
        # Load: each thread's range half full, ids at random.
        load_rng = random.Random(args.seed)
        for w in workers:
            n = args.points // args.threads + (1 if w.t < args.points % args.threads else 0)
            ids = sorted(load_rng.sample(range(w.lo, w.hi), n))
            for b in range(0, n, 1000):
                pts = []
                for i in ids[b:b + 1000]:
                    v = f32([load_rng.random() for _ in range(args.dim)])
                    p = {"owner": w.t, "bucket": load_rng.randrange(BUCKETS), "gen": 0}
                    pts.append({"id": i, "vector": list(v), "payload": p})
                    w.state[i] = State(v, p, w.t)
                    w.live.add(i)
                    w.created.add(i)
                    w.last_wait[i] = True
                cl.ok("PUT", f"/collections/{COLLECTION}/points?wait=true", {"points": pts})
        print(f"loaded {args.points} points in {time.monotonic() - t_start:.1f} s", flush=True)
        # How long a rebuild takes here (no writes meanwhile), to aim the kills during rebuilds.
        t0 = time.monotonic()
        cl.ok("PUT", f"/waypoint/collections/{COLLECTION}/vector_index",
              {"type": "hnsw", "m": 16, "ef_construct": 100, "ef": 64})
        while cl.ok("GET", f"/waypoint/collections/{COLLECTION}/vector_index")["state"] == "building":
            time.sleep(0.002)
        build_s = time.monotonic() - t0
        cl.close()
        print(f"an index rebuild (m=16, ef_construct=100) takes {build_s:.2f} s", flush=True)

        modes = ["kill", "rebuild", "kill", "shutdown"] * (args.kills // 4 + 1)
        modes = modes[:args.kills]
        rng.shuffle(modes)
        observed = None
        for k, mode in enumerate(modes, 1):
            stop = threading.Event()
            threads = [threading.Thread(target=w.run_epoch, args=(server.port, stop), daemon=True)
                       for w in workers]
            for th in threads:
                th.start()
            run_s = rng.uniform(0.05, args.epoch_seconds)
            detail, spec = "", None
            if mode == "rebuild":
                time.sleep(run_s / 2)
                ctl = Client(server.port, timeout=60)
                # Kill at a random moment of the build's expected duration (writes wait
                # meanwhile). Whether the build had finished is read after the restart: the new
                # configuration is stored when the build completes.
                try:
                    old = ctl.ok("GET", f"/waypoint/collections/{COLLECTION}/vector_index")["params"]
                    while True:
                        spec = {"type": "hnsw", "m": rng.choice([8, 12, 16, 24]),
                                "ef_construct": rng.choice([64, 100, 200]), "ef": 64}
                        if (spec["m"], spec["ef_construct"]) != (old["m"], old["ef_construct"]):
                            break
                    expect = build_s * spec["ef_construct"] / 100 * (spec["m"] / 16) ** 0.5
                    delay = rng.uniform(0.0, 0.8 * expect)
                    ctl.ok("PUT", f"/waypoint/collections/{COLLECTION}/vector_index", spec)
                    time.sleep(delay)
                    server.kill()
                    detail = (f"m={spec['m']} ef_construct={spec['ef_construct']}, killed "
                              f"{1000 * delay:.0f} ms after the request (expected build "
                              f"{1000 * expect:.0f} ms)")
                except (Gone, RuntimeError) as e:
                    server.kill()
                    spec = None
                    kills["rebuild (request failed)"] += 1
                    checker.note("rebuild_request", str(e)[:300])
                ctl.close()
            else:
                time.sleep(run_s)
                if not server.alive():
                    checker.note("server_died", f"exit status {server.proc.returncode} before "
                                                f"kill {k}:\n{server.log_tail()}")
                if mode == "kill":
                    server.kill()
                    kills["SIGKILL"] += 1
                else:
                    delay_ms = rng.choice([1, 2, 5, 10, 20, 50, 100, 300, 1000])
                    clean = server.terminate_then_kill(delay_ms / 1000)
                    kills["SIGTERM+SIGKILL " + ("(exited first)" if clean else "(killed)")] += 1
                    detail = f"SIGKILL {delay_ms} ms after SIGTERM" + (
                        f", exited first with status {server.proc.returncode}" if clean else "")
                    if clean and server.proc.returncode != 0:
                        checker.note("bad_exit", f"exit status {server.proc.returncode} after "
                                                 f"SIGTERM:\n{server.log_tail()}")
            stop.set()
            for th in threads:
                th.join()
            restart_s = server.start()
            cl = Client(server.port, timeout=600)
            if mode == "rebuild" and spec:
                now = cl.ok("GET", f"/waypoint/collections/{COLLECTION}/vector_index")["params"]
                done = (now["m"], now["ef_construct"]) == (spec["m"], spec["ef_construct"])
                kills["rebuild (had finished)" if done else "rebuild (during the build)"] += 1
                detail += ": build had finished" if done else ": during the build"
            found, npoints, inflight, observed = checker.verify(cl)
            cl.close()
            bad = {k2: v for k2, v in found.items() if v}
            print(f"kill {k:3d}/{len(modes)} {mode:8s} after {run_s:4.2f} s {detail}: restart "
                  f"{restart_s:.2f} s, {npoints} points, in flight {dict(inflight) or 0}, "
                  f"violations {bad or 0}", flush=True)

        # After the last restart: recall against exact search, and against a fresh build.
        cl = Client(server.port, timeout=600)
        if observed is None:
            _, npoints, _, observed = checker.verify(cl)
        r_crash, r_fresh, params = recall_check(cl, observed, args.dim, args.queries, args.seed,
                                                checker)
        cl.close()
        if r_fresh - r_crash > 0.02:
            checker.note("recall", f"crash {r_crash:.4f} vs fresh {r_fresh:.4f}")
        status, _ = server.stop()
        if status != 0:
            checker.note("bad_exit", f"final SIGTERM: exit status {status}")
    except (RuntimeError, Gone, OSError, KeyError, TypeError) as e:
        fatal = f"{type(e).__name__}: {e}"
        r_crash = r_fresh = None
        params = None
        npoints = None
    finally:
        if server.alive():
            server.kill()

    # Summary.
    tot = checker.totals
    tot["error_answers"] += stats["error_answers"]
    tot["bad_answers"] += stats["bad_answers"]
    tot["stale_reads"] += stats["stale_reads"]
    violations = sum(v for k, v in tot.items() if not k.startswith("loss_")) + (1 if fatal else 0)
    rows = [("kills", sum(kills.values()))] + [(f"  {k}", v) for k, v in sorted(kills.items())]
    rows.append(("acknowledged requests", sum(stats["acked"].values())))
    rows += [(f"  {k}", v) for k, v in sorted(stats["acked"].items())]
    rows += [(f"  ids in acknowledged {k}", v) for k, v in sorted(stats["acked_points"].items())]
    rows.append(("requests refused (never sent)", stats["refused"]))
    rows.append(("points at end", npoints))
    for k in ["loss", "loss_wait", "loss_nowait", "phantoms", "duplicates", "payload_mismatch",
              "vector_mismatch", "torn", "count_mismatch", "error_answers", "bad_answers",
              "stale_reads"]:
        rows.append((k, tot[k]))
    for k in sorted(tot):
        if k not in dict(rows) and tot[k]:
            rows.append((k, tot[k]))
    if r_crash is not None:
        rows.append(("index", f"hnsw m={params['m']} ef_construct={params['ef_construct']} "
                              f"ef={params['ef']}"))
        rows.append(("recall@10 crash", f"{r_crash:.4f}"))
        rows.append(("recall@10 fresh", f"{r_fresh:.4f}"))
        rows.append(("recall fresh - crash", f"{r_fresh - r_crash:+.4f} (limit 0.02)"))
    rows.append(("wall time", f"{time.monotonic() - t_start:.1f} s"))
    width = max(len(r[0]) for r in rows)
    print("\n" + "-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 24))
    examples = checker.examples + stats["examples"]
    if examples:
        print("first findings:")
        for e in examples[:40]:
            print("  " + e)
    if fatal:
        print(f"FATAL: {fatal}\n--- server log tail ---\n{server.log_tail()}")
    ok = violations == 0
    print("PASS" if ok else f"FAIL ({violations} violations)")
    if ok and own:
        shutil.rmtree(work, ignore_errors=True)
    elif not ok:
        print(f"data and server log kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
