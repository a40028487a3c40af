"""Legacy SSE streams that never read, each pushed far more than it may hold;
prints mcpod's resident memory before, while and after, and how much each
stream had been sent when mcpod ended it.

Usage: TOKEN=... unread_streams.py BASE_URL SERVER_ID MCPOD_PID [STREAMS [MIB_PER_STREAM]]
  (e.g. http://127.0.0.1:7460 command-1 12345 8 128)
The server must have the fixture's `echo` tool. Each stream's client opens
`GET /servers/ID/sse` with a 4 KiB receive buffer, reads only its
`endpoint` event, then POSTs `echo` calls of 1 MiB each to its messages
endpoint; their answers queue for a reader that never comes.
"""
import collections
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

base = urllib.parse.urlsplit(sys.argv[1])
server, pid = sys.argv[2], int(sys.argv[3])
streams = int(sys.argv[4]) if len(sys.argv) > 4 else 8
mib = int(sys.argv[5]) if len(sys.argv) > 5 else 128
token = os.environ.get("TOKEN", "")
auth = {"authorization": f"Bearer {token}"} if token else {}


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_stream():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((base.hostname, base.port))
    head = f"GET /servers/{server}/sse HTTP/1.1\r\nHost: {base.netloc}\r\nAccept: text/event-stream\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in auth.items()) + "\r\n"
    s.sendall(head.encode())
    got = b""
    while b"\ndata: " not in got or not got.split(b"\ndata: ", 1)[1].count(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"the SSE stream closed before its endpoint event: {got!r}")
        got += chunk
    endpoint = got.split(b"\ndata: ", 1)[1].split(b"\n", 1)[0].decode().strip()
    return s, endpoint


def post(endpoint, msg):
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
    conn.request("POST", endpoint, json.dumps(msg), {"content-type": "application/json", **auth})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def push(endpoint, statuses):
    post(endpoint, {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                               "clientInfo": {"name": "unread", "version": "1"}}})
    post(endpoint, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    big = "x" * (1024 * 1024 - 200)
    for i in range(mib):
        statuses.append(post(endpoint, {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                                        "params": {"name": "echo", "arguments": {"message": big}}}))


before = rss_mib()
opened = [open_stream() for _ in range(streams)]
statuses = []
threads = [threading.Thread(target=push, args=(ep, statuses)) for _, ep in opened]
start = time.perf_counter()
for t in threads:
    t.start()
peak = before
while any(t.is_alive() for t in threads):
    peak = max(peak, rss_mib())
    time.sleep(0.05)
pushed = time.perf_counter() - start
time.sleep(1)
held = rss_mib()
# What each stream had been sent: read it all now, until mcpod's end of
# it (the chunked body's last chunk; the connection itself stays open).
received = []
for s, _ in opened:
    s.settimeout(5)
    n, tail = 0, b""
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            n += len(chunk)
            tail = (tail + chunk)[-16:]
            if tail.endswith(b"\r\n0\r\n\r\n"):
                break
    except socket.timeout:
        n = -n  # neither ended nor sending after 5 s
    received.append(n)
    s.close()
time.sleep(1)
after = rss_mib()
ended = sum(1 for n in received if n >= 0)
print(f"{streams} unread SSE streams, {mib} MiB pushed at each ({streams * mib} MiB in all) in {pushed:.1f} s; "
      f"POST statuses {dict(sorted(collections.Counter(statuses).items()))}")
print(f"mcpod RSS: before {before:.1f} MiB, peak while pushing {peak:.1f} MiB, "
      f"after pushing {held:.1f} MiB, after the clients closed {after:.1f} MiB")
print(f"streams ended by mcpod: {ended} of {streams}; bytes each had been sent: "
      f"median {sorted(abs(n) for n in received)[len(received) // 2] / 1048576:.1f} MiB, "
      f"max {max(abs(n) for n in received) / 1048576:.1f} MiB")
