"""N MCP `initialize` requests at once, each on its own connection, to one
server's Streamable HTTP endpoint; prints their statuses and latencies.

Usage: initialize_burst.py N URL [CANARY_URL]
       (e.g. 20 http://127.0.0.1:7460/servers/ID/mcp)
On a per-session server each initialize starts an instance of its own.
With CANARY_URL (another server's endpoint), a session opened there before
the burst sends `ping` after `ping` while it lasts, and its latencies are
printed too: what the burst costs the servers already serving.
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

n, url = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2])
results = [None] * n
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                              "clientInfo": {"name": "initialize_burst", "version": "1"}}})
headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def one(i):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    t = time.perf_counter()
    conn.request("POST", url.path, body, headers)
    resp = conn.getresponse()
    resp.read()
    results[i] = (resp.status, time.perf_counter() - t)


def post(conn, path, msg, session=None):
    h = dict(headers)
    if session:
        h["mcp-session-id"] = session
    conn.request("POST", path, json.dumps(msg), h)
    resp = conn.getresponse()
    resp.read()
    return resp


canary = urllib.parse.urlsplit(sys.argv[3]) if len(sys.argv) > 3 else None
pings = []
done = threading.Event()


def ping_until_done():
    conn = http.client.HTTPConnection(canary.hostname, canary.port, timeout=300)
    resp = post(conn, canary.path, json.loads(body))
    session = resp.getheader("mcp-session-id")
    post(conn, canary.path, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    ready.set()
    i = 0
    while not done.is_set():
        i += 1
        t = time.perf_counter()
        post(conn, canary.path, {"jsonrpc": "2.0", "id": i, "method": "ping"}, session)
        pings.append(time.perf_counter() - t)


ready = threading.Event()
pinger = None
if canary:
    pinger = threading.Thread(target=ping_until_done)
    pinger.start()
    ready.wait(60)
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
start = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
done.set()
if pinger:
    pinger.join()
took = sorted(r[1] for r in results)
print(f"{n} initializes at once: statuses {sorted({r[0] for r in results})}, "
      f"median {statistics.median(took) * 1000:.1f} ms, max {took[-1] * 1000:.1f} ms, "
      f"all in {(time.perf_counter() - start) * 1000:.1f} ms")
if canary:
    pings.sort()
    print(f"canary during the burst: {len(pings)} pings, median {statistics.median(pings) * 1000:.2f} ms, "
          f"p99 {pings[int(len(pings) * 0.99)] * 1000:.2f} ms, max {pings[-1] * 1000:.2f} ms")
