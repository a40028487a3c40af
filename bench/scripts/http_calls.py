"""Sequential MCP tools/call of `echo` over one keep-alive connection; prints the p50 in µs.

Usage: http_calls.py PATH CALLS PORT  (host 127.0.0.1; initialize first, 2025-11-25)
"""
import http.client
import json
import sys
import time

path, calls, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def post(body, session=None):
    h = dict(headers)
    if session:
        h["mcp-session-id"] = session
    conn.request("POST", path, json.dumps(body), h)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        sys.exit(f"{path}: HTTP {resp.status}: {data[:200]!r}")
    return resp, data


resp, _ = post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "http_calls", "version": "1"}}})
session = resp.getheader("mcp-session-id")
post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
took = []
for i in range(calls):
    t = time.perf_counter()
    _, data = post({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"message": "ping"}}}, session)
    took.append(time.perf_counter() - t)
    if i == 0 and b"ping" not in data:
        sys.exit(f"unexpected answer: {data[:200]!r}")
took.sort()
print(f"{took[len(took) // 2] * 1e6:.1f}")
