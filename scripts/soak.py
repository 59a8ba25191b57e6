#!/usr/bin/env python3
"""Soak test (issue 15): a loaded `waypoint serve` under steady mixed traffic for a long time;
no errors, no memory growth, stable tail latency, and the same recall after a clean restart.

  python3 scripts/soak.py --binary build/waypoint --out soak-out                 # 100k pts, 600 s
  python3 scripts/soak.py --binary build/waypoint --points 5000 --seconds 60 --connections 16

Options: --binary, --points N (100000), --dim D (16), --seconds S (600), --connections C (64
keep-alive connections, spread over --processes P processes of C/P threads each so that Python
is not the bottleneck), --out DIR (soak.csv, soak.png, soak.gp, server.log), --port P (default:
any free loopback port, chosen by the server), --server-threads (2), --seed, --interval (10 s),
--warmup (fraction of the run, 0.2), --ef (64: search beam of the recall check), --queries (200),
--p99-ratio (2.0: the largest last/first window p99 ratio accepted).

What it does:
  1. Starts the server on a fresh data folder (<out>/data), creates collection "soak" (Euclid) and
     loads N random points (fixed seed) with wait=true.
  2. For --seconds, C connections send 90% searches (POST /collections/soak/points/search, limit
     10, random query vectors) and 10% writes: upserts of 1..10 points at random ids in
     [0, 1.1 N) (existing ones and new ones), and one write in ten a delete of 1..10 such ids, so
     that the number of points stays near N; writes with wait=true or without it.
  3. Every --interval seconds: QPS (all, searches, writes), p50 and p99 latency, errors, the
     server's RSS (VmRSS of /proc/PID/status), the size of the collection's RocksDB WAL files
     (about the memtable's share of RSS, which fills with writes up to 64 MiB and is then
     flushed: a sawtooth; RSS - WAL is reported for diagnosis) and its point count, printed and
     written to the CSV.
  4. Checks: zero errors (any answer but 200, or no answer); RSS growth over the run after the
     warm-up below 5% (the mean RSS of the first interval-window after the warm-up, i.e. 20% to
     30% of the run, against the mean of the last 10% of the run); p99 stable: the p99 of the last
     minute (or last quarter of a shorter run) at most --p99-ratio times that of the first
     minute after the warm-up (same length).
  5. Recall@10 at --ef on a fixed sample of queries against exact search (`params.exact`), then a
     clean stop (SIGTERM: the server saves its index files), a restart on the same data, and the
     same measure again: the recall must be equal (the saved graph is loaded, so the answers
     should be identical; differing answers are reported).
  6. Writes soak.csv and soak.png (gnuplot: QPS and p99 over time; RSS below) into --out.

Exit status: 0 when every check passed, 1 otherwise, 2 on a usage error.
Python 3.11 standard library only (and gnuplot for the plot).
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import shutil
import struct
import subprocess
import sys
import threading
import time

from waypoint_server import Server

COLLECTION = "soak"


# ----------------------------------------------------------------------------------------------
# Server process and HTTP

class Gone(Exception):
    """No complete answer (connection refused, reset or closed, timeout)."""


class Client:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, port, timeout=60.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise Gone(f"{type(e).__name__}: {e}") from None
        return resp.status, raw

    def ok(self, method, path, body=None):
        status, raw = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:300]!r}")
        return json.loads(raw)["result"]

    def close(self):
        self.conn.close()


def wal_mib(data):
    """Size of the collection's RocksDB write-ahead log files: about what its memtable holds (the
    writes not yet flushed, up to RocksDB's 64 MiB write buffer), part of the RSS that grows and
    falls back in a sawtooth with writes."""
    store = os.path.join(data, "collections", COLLECTION, "store")
    try:
        return sum(e.stat().st_size for e in os.scandir(store) if e.name.endswith(".log")) / 2**20
    except OSError:
        return float("nan")


def f32(values):
    """The values rounded to float32 (what the server stores), as Python floats."""
    return list(struct.unpack(f"{len(values)}f", struct.pack(f"{len(values)}f", *values)))


# ----------------------------------------------------------------------------------------------
# Load: one process of `nthreads` connections

def load_process(pid, port, nthreads, dim, id_range, t0, deadline, interval, seed, out_q):
    """Sends searches and writes until `deadline` (time.time()); every interval, puts
    (process, interval index, {kind: [latencies]}, errors, error examples) on out_q."""
    samples = []  # (end time, latency s, kind, ok, error text); list.append is atomic
    stop = threading.Event()

    def worker(k):
        rng = random.Random(seed * 7919 + pid * 1009 + k)
        cl = Client(port)
        while time.time() < deadline:
            r = rng.random()
            if r < 0.9:
                kind, method, path = "search", "POST", f"/collections/{COLLECTION}/points/search"
                body = {"vector": [rng.random() for _ in range(dim)], "limit": 10}
            else:
                q = "?wait=true" if rng.random() < 0.5 else ""
                ids = [rng.randrange(id_range) for _ in range(rng.randint(1, 10))]
                if rng.random() < 0.1:
                    kind, method = "delete", "POST"
                    path = f"/collections/{COLLECTION}/points/delete{q}"
                    body = {"points": ids}
                else:
                    kind, method, path = "upsert", "PUT", f"/collections/{COLLECTION}/points{q}"
                    body = {"points": [{"id": i, "vector": [rng.random() for _ in range(dim)],
                                        "payload": {"g": rng.randrange(10), "w": pid}}
                                       for i in ids]}
            t = time.time()
            err = None
            try:
                status, raw = cl.call(method, path, body)
                if status != 200:
                    err = f"{kind}: HTTP {status}: {raw[:200]!r}"
            except Gone as e:
                err = f"{kind}: {e}"
            end = time.time()
            samples.append((end, end - t, kind, err))
        cl.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(nthreads)]
    for th in threads:
        th.start()

    def flush(upto):
        """Sends the samples of intervals < upto; keeps the rest."""
        nonlocal samples
        cur, samples = samples, []
        time.sleep(0.001)  # a thread that fetched the old list just before the swap appends now
        keep, by_interval = [], {}
        for end, lat, kind, err in cur:
            idx = int((end - t0) // interval)
            if idx >= upto:
                keep.append((end, lat, kind, err))
                continue
            d = by_interval.setdefault(idx, {"lat": {}, "errors": 0, "examples": []})
            if err:
                d["errors"] += 1
                if len(d["examples"]) < 3:
                    d["examples"].append(err)
            else:
                d["lat"].setdefault(kind, []).append(lat)
        samples.extend(keep)
        for idx, d in sorted(by_interval.items()):
            out_q.put((pid, idx, d["lat"], d["errors"], d["examples"]))

    n = 1
    while True:
        wake = t0 + n * interval + 0.2
        if wake > deadline + 0.2:
            break
        time.sleep(max(0.0, wake - time.time()))
        flush(n)
        n += 1
    for th in threads:
        th.join()
    flush(10 ** 9)
    out_q.put((pid, None, None, None, None))  # done


# ----------------------------------------------------------------------------------------------
# Statistics, recall, plot

def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def search_ids(cl, queries, ef=None, exact=False):
    out = []
    for q in queries:
        body = {"vector": q, "limit": 10}
        if exact:
            body["params"] = {"exact": True}
        elif ef:
            body["params"] = {"hnsw_ef": ef}
        out.append([p["id"] for p in cl.ok("POST", f"/collections/{COLLECTION}/points/search",
                                           body)])
    return out


def recall(found, truth):
    return sum(len(set(f) & set(t)) for f, t in zip(found, truth)) / max(
        1, sum(len(t) for t in truth))


def plot(out, csv_path, png_path):
    gp = os.path.join(out, "soak.gp")
    with open(gp, "w") as f:
        f.write(f"""set terminal pngcairo size 1100,800 noenhanced
set output '{png_path}'
set datafile separator ','
set key autotitle columnhead
set multiplot layout 2,1 title 'waypoint soak test'
set xlabel 'seconds'
set ylabel 'requests / s'
set y2label 'p99 latency (ms)'
set ytics nomirror
set y2tics
set grid
set key top left
plot '{csv_path}' using 1:2 with linespoints title 'QPS', \\
     '{csv_path}' using 1:6 axes x1y2 with linespoints title 'p99 ms', \\
     '{csv_path}' using 1:5 axes x1y2 with lines dashtype 2 title 'p50 ms'
unset y2label
unset y2tics
set ylabel 'server RSS (MiB)'
plot '{csv_path}' using 1:11 with linespoints title 'RSS MiB', \
     '{csv_path}' using 1:($11-$12) with linespoints title 'RSS - WAL MiB'
unset multiplot
""")
    try:
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"gnuplot failed: {e}"
    if r.returncode != 0 and "pngcairo" in r.stderr:
        with open(gp) as f:
            text = f.read().replace("set terminal pngcairo", "set terminal png")
        with open(gp, "w") as f:
            f.write(text)
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else f"gnuplot failed: {r.stderr.strip()[:300]}"


# ----------------------------------------------------------------------------------------------
# Main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="build/waypoint")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--processes", type=int, default=0, help="0: min(8, cores, connections)")
    ap.add_argument("--out", default="soak-out")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--p99-ratio", type=float, default=2.0)
    args = ap.parse_args()
    if args.points < 10 or args.connections < 1 or args.seconds < 2 * args.interval:
        ap.error("need --points >= 10, --connections >= 1, --seconds >= 2 x --interval")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        ap.error(f"--binary: {binary} is not an executable")
    nproc = args.processes or max(1, min(8, os.cpu_count() or 1, args.connections))
    nproc = min(nproc, args.connections)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "data")
    shutil.rmtree(data, ignore_errors=True)
    log_path = os.path.join(out, "server.log")
    if os.path.exists(log_path):
        os.remove(log_path)
    failures = []
    rows, have_stats = [], False
    r_before = r_after = n_before = stop_s = start_s = None
    differ = 0

    server = Server(binary, data, args.port, args.server_threads, log_path)
    server.start()
    try:
        cl = Client(server.port, timeout=600)
        cl.ok("PUT", f"/collections/{COLLECTION}",
              {"vectors": {"size": args.dim, "distance": "Euclid"}})
        rng = random.Random(args.seed)
        t = time.monotonic()
        for b in range(0, args.points, 1000):
            cl.ok("PUT", f"/collections/{COLLECTION}/points?wait=true",
                  {"points": [{"id": i, "vector": [rng.random() for _ in range(args.dim)],
                               "payload": {"g": i % 10}}
                              for i in range(b, min(args.points, b + 1000))]})
        print(f"soak: loaded {args.points} points of dim {args.dim} in "
              f"{time.monotonic() - t:.1f} s; {args.connections} connections in {nproc} "
              f"processes for {args.seconds:.0f} s", flush=True)

        # The load.
        ctx = mp.get_context("fork")
        out_q = ctx.Queue()
        t0 = time.time() + 1.0
        deadline = t0 + args.seconds
        per = [args.connections // nproc + (1 if i < args.connections % nproc else 0)
               for i in range(nproc)]
        procs = [ctx.Process(target=load_process,
                             args=(i, server.port, per[i], args.dim, int(args.points * 1.1), t0,
                                   deadline, args.interval, args.seed, out_q), daemon=True)
                 for i in range(nproc)]
        for p in procs:
            p.start()
        nint = int(round(args.seconds / args.interval))
        rss = {}  # interval index -> RSS at its end
        wal = {}  # interval index -> WAL size at its end
        count = {}
        intervals = {}  # idx -> {"lat": {kind: []}, "errors": n}
        examples = []
        done = 0

        def drain(block_until):
            nonlocal done
            while True:
                timeout = block_until - time.time()
                try:
                    msg = out_q.get(timeout=max(0.0, timeout)) if timeout > 0 else \
                        out_q.get_nowait()
                except queue.Empty:
                    return
                pid, idx, lat, errors, ex = msg
                if idx is None:
                    done += 1
                    continue
                d = intervals.setdefault(idx, {"lat": {}, "errors": 0})
                for k, v in lat.items():
                    d["lat"].setdefault(k, []).extend(v)
                d["errors"] += errors
                examples.extend(ex[:max(0, 10 - len(examples))])

        ctl = Client(server.port, timeout=120)
        for n in range(1, nint + 1):
            drain(t0 + n * args.interval)
            rss[n - 1] = server.rss_mb()
            wal[n - 1] = wal_mib(data)
            try:
                count[n - 1] = ctl.ok("POST", f"/collections/{COLLECTION}/points/count",
                                      {})["count"]
            except (Gone, RuntimeError) as e:
                count[n - 1] = None
                examples.append(f"count: {e}")
            # Print the interval before this one (its samples have all arrived by now).
            if n >= 2:
                i = n - 2
                d = intervals.get(i, {"lat": {}, "errors": 0})
                alll = [x for v in d["lat"].values() for x in v]
                print(f"t={(i + 1) * args.interval:6.0f} s  qps {len(alll) / args.interval:8.1f}"
                      f"  p50 {1000 * pct(alll, 50):7.2f} ms  p99 {1000 * pct(alll, 99):7.2f} ms"
                      f"  errors {d['errors']}  rss {rss[i]:8.1f} MiB  wal {wal[i]:6.1f} MiB"
                      f"  points {count[i]}",
                      flush=True)
            if not server.alive():
                failures.append(f"server died: status {server.proc.returncode}")
                break
        while done < nproc and time.time() < deadline + 120:
            drain(time.time() + 1)
        d = intervals.get(nint - 1, {"lat": {}, "errors": 0})
        alll = [x for v in d["lat"].values() for x in v]
        print(f"t={nint * args.interval:6.0f} s  qps {len(alll) / args.interval:8.1f}"
              f"  p50 {1000 * pct(alll, 50):7.2f} ms  p99 {1000 * pct(alll, 99):7.2f} ms"
              f"  errors {d['errors']}  rss {rss.get(nint - 1, float('nan')):8.1f} MiB  "
              f"wal {wal.get(nint - 1, float('nan')):6.1f} MiB  points {count.get(nint - 1)}",
              flush=True)
        for p in procs:
            p.join(timeout=60)
        ctl.close()

        # Per-interval table and CSV.
        rows = []
        for i in range(nint):
            d = intervals.get(i, {"lat": {}, "errors": 0})
            lat = d["lat"]
            alll = [x for v in lat.values() for x in v]
            wr = lat.get("upsert", []) + lat.get("delete", [])
            se = lat.get("search", [])
            rows.append({
                "t_s": (i + 1) * args.interval,
                "qps": len(alll) / args.interval,
                "search_qps": len(se) / args.interval,
                "write_qps": len(wr) / args.interval,
                "p50_ms": 1000 * pct(alll, 50),
                "p99_ms": 1000 * pct(alll, 99),
                "search_p99_ms": 1000 * pct(se, 99),
                "write_p99_ms": 1000 * pct(wr, 99),
                "errors": d["errors"],
                "points": count.get(i),
                "rss_mib": rss.get(i, float("nan")),
                "wal_mib": wal.get(i, float("nan")),
                "_lat": alll,
            })
        csv_path = os.path.join(out, "soak.csv")
        cols = ["t_s", "qps", "search_qps", "write_qps", "p50_ms", "p99_ms", "search_p99_ms",
                "write_p99_ms", "errors", "points", "rss_mib", "wal_mib"]
        with open(csv_path, "w") as f:
            f.write(",".join(cols) + "\n")
            for r in rows:
                f.write(",".join("" if r[c] is None else
                                 (f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]))
                                 for c in cols) + "\n")
        plot_error = plot(out, csv_path, os.path.join(out, "soak.png"))

        # Checks.
        errors = sum(r["errors"] for r in rows)
        if errors:
            failures.append(f"{errors} errors")
        total = sum(len(r["_lat"]) for r in rows)
        warm = int(round(args.warmup * nint))
        win = max(1, int(round(0.1 * nint)))
        base = [r["rss_mib"] for r in rows[warm:warm + win]]
        end = [r["rss_mib"] for r in rows[-win:]]
        rss_base, rss_end = sum(base) / len(base), sum(end) / len(end)
        wal_base = sum(r["wal_mib"] for r in rows[warm:warm + win]) / len(base)
        wal_end = sum(r["wal_mib"] for r in rows[-win:]) / len(end)
        growth = (rss_end - rss_base) / rss_base
        if not growth < 0.05:
            failures.append(f"RSS grew {100 * growth:.1f}% after the warm-up (limit 5%)")
        minute = max(1, min(int(round(60 / args.interval)), (nint - warm) // 2))
        first = [x for r in rows[warm:warm + minute] for x in r["_lat"]]
        last = [x for r in rows[-minute:] for x in r["_lat"]]
        p99_first, p99_last = 1000 * pct(first, 99), 1000 * pct(last, 99)
        if not p99_last <= args.p99_ratio * p99_first:
            failures.append(f"p99 {p99_first:.2f} ms -> {p99_last:.2f} ms (ratio limit "
                            f"{args.p99_ratio})")
        have_stats = True

        # Recall before and after a clean restart.
        rq = random.Random(args.seed + 1)
        queries = [f32([rq.random() for _ in range(args.dim)]) for _ in range(args.queries)]
        cl = Client(server.port, timeout=600)
        exact_before = search_ids(cl, queries, exact=True)
        ann_before = search_ids(cl, queries, ef=args.ef)
        n_before = cl.ok("POST", f"/collections/{COLLECTION}/points/count", {})["count"]
        cl.close()
        r_before = recall(ann_before, exact_before)
        rc, stop_s = server.stop()
        if rc != 0:
            failures.append(f"SIGTERM: exit status {rc}")
        start_s = server.start()
        cl = Client(server.port, timeout=600)
        exact_after = search_ids(cl, queries, exact=True)
        ann_after = search_ids(cl, queries, ef=args.ef)
        n_after = cl.ok("POST", f"/collections/{COLLECTION}/points/count", {})["count"]
        cl.close()
        r_after = recall(ann_after, exact_after)
        if r_after != r_before:
            failures.append(f"recall@10 {r_before:.4f} before the restart, {r_after:.4f} after")
        if n_after != n_before:
            failures.append(f"{n_before} points before the restart, {n_after} after")
        if exact_after != exact_before:
            failures.append("exact search answers differ after the restart")
        differ = sum(a != b for a, b in zip(ann_before, ann_after))
        rc2, _ = server.stop()
        if rc2 != 0:
            failures.append(f"final SIGTERM: exit status {rc2}")
    except (RuntimeError, Gone, OSError, KeyError, ValueError) as e:
        failures.append(f"FATAL {type(e).__name__}: {e}\n--- server log ---\n{server.log_tail()}")
    finally:
        server.kill()

    # Summary.
    if have_stats:
        summary = [
            ("duration", f"{args.seconds:.0f} s, {args.connections} connections, {nproc} "
                         f"processes, {args.points} points of dim {args.dim}"),
            ("requests", f"{total} ({total / args.seconds:.1f} per s)"),
            ("QPS first / last interval", f"{rows[0]['qps']:.1f} / {rows[-1]['qps']:.1f}"),
            ("p50 over the run (ms)",
             f"{1000 * pct([x for r in rows for x in r['_lat']], 50):.2f}"),
            (f"p99 first / last {minute * args.interval:.0f} s after warm-up (ms)",
             f"{p99_first:.2f} / {p99_last:.2f} (ratio {p99_last / p99_first:.2f}, limit "
             f"{args.p99_ratio})"),
            ("errors", errors),
            ("RSS after warm-up / end (MiB)", f"{rss_base:.1f} / {rss_end:.1f} "
                                              f"({100 * growth:+.2f}%, limit +5%)"),
            ("RSS min / max (MiB)", f"{min(r['rss_mib'] for r in rows):.1f} / "
                                    f"{max(r['rss_mib'] for r in rows):.1f}"),
            ("RSS - WAL after warm-up / end (MiB)",
             f"{rss_base - wal_base:.1f} / {rss_end - wal_end:.1f} "
             f"({100 * ((rss_end - wal_end) / (rss_base - wal_base) - 1):+.2f}%, for diagnosis: "
             f"the memtable's share of RSS is about the WAL's size)"),
            ("points start / end", f"{args.points} / {n_before}"),
        ]
        if r_after is not None:
            summary += [
                (f"recall@10 ef={args.ef} before / after restart",
                 f"{r_before:.4f} / {r_after:.4f} ({differ} of {args.queries} answers differ)"),
                ("clean stop / restart", f"{stop_s:.2f} s / {start_s:.2f} s")]
        summary += [
            ("files", f"{csv_path}, {os.path.join(out, 'soak.png')}"
                      + (f" ({plot_error})" if plot_error else "")),
        ]
        width = max(len(k) for k, _ in summary)
        print("\n" + "-" * (width + 40))
        for k, v in summary:
            print(f"{k:<{width}}  {v}")
        print("-" * (width + 40))
        if examples:
            print("first errors:\n  " + "\n  ".join(examples[:10]))
    for f in failures:
        print("FAIL: " + f)
    print("PASS" if not failures else f"FAIL ({len(failures)} checks)")
    if not failures:
        shutil.rmtree(data, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
