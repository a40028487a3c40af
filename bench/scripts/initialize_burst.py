"""N MCP `initialize` requests at once, each on its own connection, to one
server's Streamable HTTP endpoint; prints their statuses and latencies.

Usage: initialize_burst.py N URL   (e.g. 20 http://127.0.0.1:7460/servers/ID/mcp)
On a per-session server each initialize starts an instance of its own.
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


threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
start = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
took = sorted(r[1] for r in results)
print(f"{n} initializes at once: statuses {sorted({r[0] for r in results})}, "
      f"median {statistics.median(took) * 1000:.1f} ms, max {took[-1] * 1000:.1f} ms, "
      f"all in {(time.perf_counter() - start) * 1000:.1f} ms")
