#!/usr/bin/env python3
"""Collates bench/rl_protocol.sh's runs (waypoint bench --json --targets lines): for each recall
target, the best parameters of each family (fewest mean DCS; an `at_first` reading is an upper
bound and ranks by it), with average degree, memory, the DCS's 95% bootstrap interval and QPS,
as a Markdown table (docs/rl.md, "The comparison")."""
import json
import sys


def family(line):
    index = line["index"]
    if index == "rl":
        return "rl (from %s)" % line["params"].get("initial", "?")
    if index.startswith("robust-"):
        return "graph (robust)"
    if index.startswith("vamana-"):
        return "vamana"
    return index


def describe(line):
    p = line["params"]
    keys = [k for k in ("M", "R", "alpha", "file") if k in p]
    return ", ".join(f"{k} {p[k]}" for k in keys)


def main(paths):
    figures = []
    for path in paths:
        with open(path) as f:
            for text in f:
                text = text.strip()
                if not text.startswith("{"):
                    continue
                line = json.loads(text)
                if line.get("kind") == "at_recall" and line["reading"] != "not_reached":
                    figures.append(line)
    if not figures:
        print("no figures at any target")
        return 1
    dataset = figures[0]["dataset"]
    queries = figures[0]["queries"]
    print(f"# {dataset}: {queries} evaluation queries, k = {figures[0]['k']}, one query thread, "
          "every graph entered through HNSW's upper levels\n")
    for target in sorted({f["target"] for f in figures}):
        best = {}
        for f in figures:
            if f["target"] != target:
                continue
            fam = family(f)
            if fam not in best or f["dcs"] < best[fam]["dcs"]:
                best[fam] = f
        print(f"## recall@{figures[0]['k']} = {target}\n")
        print("| family | best parameters | avg degree | memory MiB | mean DCS | 95% interval | QPS |")
        print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
        for fam, f in sorted(best.items(), key=lambda kv: kv[1]["dcs"]):
            bound = "<= " if f["reading"] == "at_first" else ""
            hi = "not reached" if f.get("dcs_hi") is None else f"{f['dcs_hi']:.1f}"
            print(f"| {fam} | {describe(f)} | {f['params'].get('avg_degree', '-')} | "
                  f"{f['memory_bytes'] / 1048576:.1f} | {bound}{f['dcs']:.1f} | "
                  f"[{f['dcs_lo']:.1f}, {hi}] | {f['qps']:.0f} |")
        # The bar: each learned graph against the best non-learned one of equal or lower degree.
        for fam, f in sorted(best.items()):
            if not fam.startswith("rl"):
                continue
            degree = f["params"].get("avg_degree", 0)
            rivals = [g for g in figures if g["target"] == target and not family(g).startswith("rl")
                      and g["params"].get("avg_degree", 1e9) <= degree + 1e-9]
            if not rivals:
                print(f"\n{fam}: no non-learned graph of average degree <= {degree}")
                continue
            r = min(rivals, key=lambda g: g["dcs"])
            print(f"\n{fam} (degree {degree}): {f['dcs']:.1f} DCS, {f['qps']:.0f} QPS; the best "
                  f"non-learned graph of degree <= {degree} is {family(r)} ({describe(r)}, degree "
                  f"{r['params'].get('avg_degree')}): {r['dcs']:.1f} DCS, {r['qps']:.0f} QPS; "
                  f"ratio {f['dcs'] / r['dcs']:.3f} DCS, {f['qps'] / r['qps']:.3f} QPS")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
