"""Sequential tools/call latency through the official Python MCP SDK client.

Usage: python py_latency.py URL N          (Streamable HTTP, a session)
       python py_latency.py --stdio N PROGRAM [ARGS...]   (the floor: no proxy)
Calls `echo` 200 times to warm up, then N times, each timed from the call to
its result, and prints one JSON line: {"p50_us": ..., "p99_us": ..., "n": N}.
Run by `mcpod-bench peers` with tests/clients/.venv's Python (the SDK the
tests install), beside the bench's own Rust client.
"""

import asyncio
import json
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client


async def measure(read, write, n: int) -> dict:
    async with ClientSession(read, write) as session:
        await session.initialize()
        for _ in range(200):
            await session.call_tool("echo", {"message": "ping"})
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            result = await session.call_tool("echo", {"message": "ping"})
            samples.append(time.perf_counter() - started)
            if not result.content or not result.content[0].text.endswith("ping"):
                raise SystemExit(f"bad echo: {result}")
    samples.sort()
    return {"p50_us": samples[n // 2] * 1e6, "p99_us": samples[min(n - 1, int(n * 0.99))] * 1e6, "n": n}


async def main() -> None:
    if sys.argv[1] == "--stdio":
        n, program, args = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
        async with stdio_client(StdioServerParameters(command=program, args=args)) as (read, write):
            out = await measure(read, write, n)
    else:
        url, n = sys.argv[1], int(sys.argv[2])
        async with streamablehttp_client(url) as (read, write, _):
            out = await measure(read, write, n)
    print(json.dumps(out))


asyncio.run(main())
