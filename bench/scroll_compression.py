#!/usr/bin/env python3
"""What gzipped answers cost and save (docs/server.md, "Compressed answers"): loads a dataset's
base vectors (with a 2-key payload) into a running server's collection `s`, then times scrolls
of 100 and 1,000 points, with and without vectors, asked with `Accept-Encoding: identity` and
`gzip` (the median of 30 each) and prints the bytes and milliseconds of both. Traffic goes to
127.0.0.1 only.

    build/waypoint serve --port 7611 --data /tmp/gz --threads 1 &
    python3 bench/scroll_compression.py 7611 ../shared/data/siftsmall
"""
import gzip
import http.client
import json
import statistics
import struct
import sys
import time


def fvecs(path):
    b = open(path, "rb").read()
    out, i = [], 0
    while i < len(b):
        d = struct.unpack_from("<i", b, i)[0]
        out.append(list(struct.unpack_from("<%df" % d, b, i + 4)))
        i += 4 + 4 * d
    return out


def main():
    port, dataset = int(sys.argv[1]), sys.argv[2]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(method, path, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=json.dumps(body), headers=h)
        r = c.getresponse()
        text = r.read()
        assert r.status == 200, text
        return r, text

    base = fvecs(dataset + "/base.fvecs")
    call("PUT", "/collections/s", {"vectors": {"size": len(base[0]), "distance": "Euclid"}})
    for i in range(0, len(base), 500):
        points = [{"id": j, "vector": base[j], "payload": {"n": j, "tag": "t%d" % (j % 10)}}
                  for j in range(i, min(i + 500, len(base)))]
        call("PUT", "/collections/s/points?wait=true", {"points": points})
    for limit, vectors in ((100, False), (1000, False), (100, True), (1000, True)):
        body = {"limit": limit, "with_payload": True, "with_vector": vectors}
        row = []
        answers = {}
        for enc in ("identity", "gzip"):
            times = []
            for _ in range(30):
                t = time.perf_counter()
                r, text = call("POST", "/collections/s/points/scroll", body, {"Accept-Encoding": enc})
                times.append(time.perf_counter() - t)
            coding = r.getheader("Content-Encoding")
            answers[enc] = json.loads(gzip.decompress(text) if coding == "gzip" else text)["result"]
            row.append("%s: %s B, %.2f ms (%s)" % (enc, format(len(text), ","),
                                                    statistics.median(times) * 1e3, coding))
        assert answers["identity"] == answers["gzip"], "the gzipped answer differs"
        print("scroll limit %d vectors %s: %s" % (limit, vectors, "; ".join(row)))


main()
