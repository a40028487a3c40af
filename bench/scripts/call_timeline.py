"""Segments of sequential proxied calls, from `perf script` of system-call tracepoints.

Usage: call_timeline.py SCRIPT_TXT NAME UPSTREAM_COMM

A call is the chain: client sendto (enter) -> proxy epoll_wait (exit) ->
proxy recvfrom (exit: the request read) -> proxy write (enter: to the
server's stdin) -> server read (exit) -> server write (enter) -> proxy read
(exit: the answer) -> proxy writev (enter: to the client) -> client
recvfrom (exit). Proxy threads are tokio's workers (`tokio-rt-worker`); the
client is `python3`, whose http.client sends a request's headers and body in
two sends: a chain starts at the last send before the proxy wakes, and the
first, cut short by the second, is counted as skipped (about one per call).
"""
import re
import sys

path, name, upstream = sys.argv[1], sys.argv[2], sys.argv[3]
line_re = re.compile(r"^\s*(\S+)\s+\d+\s+\[\d+\]\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):")
steps = {
    ("python3", "enter", "sendto"): "client send",
    ("tokio-rt-worker", "exit", "epoll_wait"): "proxy wakes",
    ("tokio-rt-worker", "exit", "recvfrom"): "request read",
    ("tokio-rt-worker", "enter", "write"): "stdin write",
    (upstream, "exit", "read"): "server reads",
    (upstream, "enter", "write"): "server writes",
    ("tokio-rt-worker", "exit", "read"): "answer read",
    ("tokio-rt-worker", "enter", "writev"): "client write",
    ("python3", "exit", "recvfrom"): "client reads",
}
order = list(dict.fromkeys(steps.values()))
seq = []
with open(path, errors="replace") as f:
    for line in f:
        m = line_re.match(line)
        if m and (m[1][:15], m[3], m[4]) in steps:
            seq.append((float(m[2]) * 1e6, steps[(m[1][:15], m[3], m[4])]))
seq.sort()
segments = {f"{a} -> {b}": [] for a, b in zip(order, order[1:])}
total, calls, skipped, i = [], 0, 0, 0
while i < len(seq):
    if seq[i][1] != order[0]:
        i += 1
        continue
    times, j = [seq[i][0]], i + 1
    while j < len(seq) and len(times) < len(order) and seq[j][1] != order[0]:
        if seq[j][1] == order[len(times)]:
            times.append(seq[j][0])
        j += 1
    if len(times) == len(order):
        calls += 1
        for k, key in enumerate(segments):
            segments[key].append(times[k + 1] - times[k])
        total.append(times[-1] - times[0])
    else:
        skipped += 1
    i = j


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


print(f"{name}: {calls} calls ({skipped} incomplete chains skipped)")
print("| segment | p50 µs | p90 µs |\n|---|---|---|")
for key, v in list(segments.items()) + [("whole call", total)]:
    print(f"| {key} | {pct(v, 0.5):.0f} | {pct(v, 0.9):.0f} |")
