#!/usr/bin/env python3
"""The bad-input table of issue 15: starts `waypoint serve` on a fresh data folder and sends each
hostile request of the issue's defects list (and some more), then prints a Markdown table of what
came back: status and the start of the message. Every answer must be a 4xx/5xx with a message (never
a dropped connection) and the server must still answer /healthz after all of them.

  python3 scripts/bad_input_table.py --binary build/waypoint
Exit status 1 when the server died, dropped a connection, or answered 5xx.
"""
import argparse, http.client, json, os, re, signal, socket, subprocess, sys, tempfile


def raw(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    except socket.timeout:
        pass
    s.close()
    return out


def request(port, method, path, body=b"", headers=None):
    h = {"Host": "x", "Content-Length": str(len(body)), "Connection": "close"}
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return raw(port, head.encode("latin-1") + body)


def summarize(answer):
    if not answer.startswith(b"HTTP/1.1 "):
        return "no answer", ""
    status = answer[9:12].decode()
    body = answer.partition(b"\r\n\r\n")[2]
    try:
        msg = json.loads(body)["status"]["error"]
    except Exception:
        msg = body[:80].decode("utf-8", "replace")
    return status, msg[:110].replace("|", "\\|")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/waypoint")
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="waypoint-bad-")
    p = subprocess.Popen([a.binary, "serve", "--port", "0", "--data", data],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    port = int(re.search(r"://127\.0\.0\.1:(\d+)", line).group(1))
    ok = request(port, "PUT", "/collections/c",
                 b'{"vectors": {"size": 4, "distance": "Cosine"}}')
    assert b" 200 " in ok[:20], ok
    deep = lambda n: "[" * n + "]" * n
    cases = [
        ("GET /collections/%FF (invalid UTF-8)", lambda: request(port, "GET", "/collections/%FF")),
        ("GET /collections/c/points/%FF", lambda: request(port, "GET", "/collections/c/points/%FF")),
        ("PUT points?wait=%FF", lambda: request(port, "PUT", "/collections/c/points?wait=%FF", b'{"points": []}')),
        ("0xFF byte in a body", lambda: request(port, "PUT", "/collections/c/points", b'{"points": [{"id": "\xff", "vector": [1,2,3,4]}]}')),
        ("id nested 60k levels", lambda: request(port, "PUT", "/collections/c/points", ('{"points":[{"id":%s,"vector":[1,2,3,4]}]}' % deep(60000)).encode())),
        ("payload nested 70k levels", lambda: request(port, "PUT", "/collections/c/points", ('{"points":[{"id":1,"vector":[1,2,3,4],"payload":{"a":%s}}]}' % deep(70000)).encode())),
        ("create a collection .deleted-x", lambda: request(port, "PUT", "/collections/.deleted-x", b'{"vectors": {"size": 4, "distance": "Dot"}}')),
        ("name of 250 characters", lambda: request(port, "PUT", "/collections/" + "n" * 250, b'{"vectors": {"size": 4, "distance": "Dot"}}')),
        ("name with ../", lambda: request(port, "PUT", "/collections/..%2Fetc", b'{"vectors": {"size": 4, "distance": "Dot"}}')),
        ("search/batch of 20k searches", lambda: request(port, "POST", "/collections/c/points/search/batch", json.dumps({"searches": [{"vector": [1, 2, 3, 4], "limit": 10}] * 20000}).encode())),
        ("search limit 100000 with vectors", lambda: request(port, "POST", "/collections/c/points/search", b'{"vector": [1,2,3,4], "limit": 100000, "with_vector": true}')),
        ("Content-Length of 40 MiB", lambda: request(port, "PUT", "/collections/c/points", b"", {"Content-Length": str(40 << 20)})),
        ("vector [3e38,3e38,3e38,3e38] (Cosine)", lambda: request(port, "PUT", "/collections/c/points?wait=true", b'{"points": [{"id": 5, "vector": [3e38,3e38,3e38,3e38]}]}')),
        ("vector with 1e39 (overflows float)", lambda: request(port, "PUT", "/collections/c/points", b'{"points": [{"id": 6, "vector": [1e39,0,0,0]}]}')),
        ("zero vector (Cosine)", lambda: request(port, "PUT", "/collections/c/points", b'{"points": [{"id": 7, "vector": [0,0,0,0]}]}')),
        ("id above 2^64-1 in the URL", lambda: request(port, "GET", "/collections/c/points/18446744073709551616")),
        ("a 1 MB id", lambda: request(port, "GET", "/collections/c/points/" + "9" * 1000000)),
        ("Content-Length and Transfer-Encoding", lambda: raw(port, b"POST /collections HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
        ("100 KB header", lambda: raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")),
        ("100 KB URL", lambda: raw(port, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("not HTTP", lambda: raw(port, b"NOT HTTP AT ALL\r\n\r\n")),
        ("HEAD /collections/c", lambda: request(port, "HEAD", "/collections/c")),
        ("DELETE /collections/c/points (no such method here)", lambda: request(port, "DELETE", "/collections/c/points", b"{}")),
        ("limit -1", lambda: request(port, "POST", "/collections/c/points/search", b'{"vector": [1,2,3,4], "limit": -1}')),
        ("filter with unknown condition", lambda: request(port, "POST", "/collections/c/points/count", b'{"filter": {"must": [{"key": "a", "foo": 1}]}}')),
        ("body is not JSON", lambda: request(port, "PUT", "/collections/c/points", b"{not json")),
        ("index m = 1e30", lambda: request(port, "PUT", "/waypoint/collections/c/vector_index", b'{"type": "hnsw", "m": 1e30}')),
    ]
    bad = 0
    print("| request | status | message (start) |\n| --- | --- | --- |")
    for name, fn in cases:
        status, msg = summarize(fn())
        if status == "no answer" or status.startswith("5") and "Service unavailable" not in msg:
            bad += 1
        print(f"| {name} | {status} | {msg} |")
    alive = b" 200 " in request(port, "GET", "/healthz")[:20]
    print(f"\nserver alive after all: {alive}")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    sys.exit(0 if alive and bad == 0 else 1)


if __name__ == "__main__":
    main()
