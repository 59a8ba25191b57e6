#!/usr/bin/env python3
"""The host's DAMON beside a load run (docs/server.md, "The 0.54 s period found").

  python3 bench/kdamond_trace.py record KD.json [--seconds 900]
      Samples the run time of the kernel's kdamond thread every millisecond until the time is up
      or SIGTERM/SIGINT, and writes its bursts: [start, end] (seconds since the epoch) and the
      milliseconds of CPU it took in each.
  python3 bench/kdamond_trace.py match KD.json LOAD.json
      Lays the slowest searches of `waypoint_load --search-during-ingest --json` (each with the
      time it was sent) beside those bursts: which overlapped one, and the burst period.
Reads /sys/kernel/mm/damon/admin/kdamonds/0/pid (a machine without DAMON has none).
"""
import json
import signal
import statistics
import sys
import time

DAMON = "/sys/kernel/mm/damon/admin/kdamonds/0/pid"


def record(out, seconds):
    try:
        pid = open(DAMON).read().strip()
    except OSError:
        sys.exit(f"kdamond_trace: no DAMON here ({DAMON})")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    bursts, prev, last = [], None, time.time()
    end = last + seconds
    while not stop and time.time() < end:
        ran = int(open(f"/proc/{pid}/schedstat").read().split()[0])  # ns on a CPU
        now = time.time()
        if prev is not None and ran != prev:
            if bursts and now - bursts[-1][1] < 0.02:  # the same burst goes on
                bursts[-1][1] = now
                bursts[-1][2] += (ran - prev) / 1e6
            else:
                bursts.append([last, now, (ran - prev) / 1e6])
        prev, last = ran, now
        time.sleep(0.001)
    json.dump(bursts, open(out, "w"))
    print(f"{len(bursts)} bursts written to {out}")


def match(kd_path, load_path):
    bursts = json.load(open(kd_path))
    report = json.load(open(load_path))
    slowest = report["search_during_ingest"]["slowest"]
    if len(bursts) > 1:
        period = statistics.median(b[0] - a[0] for a, b in zip(bursts, bursts[1:]))
        cpu = [b[2] for b in bursts]
        print(f"{len(bursts)} bursts, every {period:.3f} s; CPU a burst: mean "
              f"{statistics.mean(cpu):.1f} ms, max {max(cpu):.1f} ms")
    hits = 0
    for s in slowest:
        t0, t1 = s["sent_at_s"], s["sent_at_s"] + s["us"] / 1e6
        near = [b for b in bursts if b[1] >= t0 - 0.002 and b[0] <= t1]
        hits += bool(near)
        shown = ", ".join(f"at {1e3 * (b[0] - t0):+.1f} ms for {b[2]:.1f} ms" for b in near)
        print(f"search of {s['us'] / 1e3:.1f} ms: {shown or 'no burst'}")
    print(f"{hits} of the {len(slowest)} slowest searches overlapped a kdamond burst")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "record":
        secs = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 900.0
        record(args[1], secs)
    elif len(args) == 3 and args[0] == "match":
        match(args[1], args[2])
    else:
        sys.exit(__doc__)
