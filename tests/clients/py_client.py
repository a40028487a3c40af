"""Drives an MCP server through mcpod with the official Python SDK (1.x).

Usage: python3 py_client.py URL TRANSPORT [--call TOOL JSON_ARGS] [--sampling-tool TOOL JSON_ARGS] [--wait-logs N]
TRANSPORT is streamable-http, sse or websocket. Prints one JSON object:
tools, the call's text, resource and prompt counts, the first resource's
contents read and the first argument-free prompt's messages, progress and
log notifications seen, and the sampling round trip's text.
"""

import anyio
import asyncio
import json
import sys
from contextlib import asynccontextmanager

from mcp import ClientSession, types
from mcp.shared.exceptions import McpError


@asynccontextmanager
async def connect(url: str, transport: str):
    if transport == "streamable-http":
        from mcp.client.streamable_http import streamablehttp_client

        async with streamablehttp_client(url) as (read, write, _):
            yield read, write
    elif transport == "sse":
        from mcp.client.sse import sse_client

        async with sse_client(url) as (read, write):
            yield read, write
    elif transport == "websocket":
        from mcp.client.websocket import websocket_client

        async with websocket_client(url) as (read, write):
            yield read, write
    else:
        raise SystemExit(f"unknown transport {transport}")


async def main() -> None:
    url, transport = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    call = sampling = None
    wait_logs = 0
    while rest:
        if rest[0] == "--wait-logs":
            wait_logs, rest = int(rest[1]), rest[2:]
            continue
        flag, tool, args = rest[0], rest[1], json.loads(rest[2])
        rest = rest[3:]
        if flag == "--call":
            call = (tool, args)
        elif flag == "--sampling-tool":
            sampling = (tool, args)
    out: dict = {"progress": 0, "logs": 0, "sampled": None}

    async def on_sampling(context, params: types.CreateMessageRequestParams):
        out["sampled"] = params.messages[0].content.text if params.messages else ""
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="fake-model"
        )

    async def on_log(params: types.LoggingMessageNotificationParams):
        out["logs"] += 1

    finished = False
    try:
        async with connect(url, transport) as (read, write):
            async with ClientSession(read, write, sampling_callback=on_sampling, logging_callback=on_log) as session:
                init = await session.initialize()
                out["server"] = init.serverInfo.name
                out["protocol"] = init.protocolVersion
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                # A server may fail a list it declares (a database it cannot
                # reach): that is reported, not fatal.
                if init.capabilities.resources:
                    try:
                        resources = (await session.list_resources()).resources
                        out["resources"] = len(resources)
                        # Read the first resource: its contents, as the server sent them.
                        if resources:
                            out["read"] = len((await session.read_resource(resources[0].uri)).contents)
                    except McpError as e:
                        out["resources_error"] = str(e)
                if init.capabilities.prompts:
                    try:
                        prompts = (await session.list_prompts()).prompts
                        out["prompts"] = len(prompts)
                        # Get the first prompt that needs no arguments.
                        plain = next((p for p in prompts if not any(a.required for a in (p.arguments or []))), None)
                        if plain:
                            out["prompt_messages"] = len((await session.get_prompt(plain.name)).messages)
                    except McpError as e:
                        out["prompts_error"] = str(e)
                if call:

                    async def on_progress(progress, total, message):
                        out["progress"] += 1

                    result = await session.call_tool(call[0], call[1], progress_callback=on_progress)
                    out["call"] = "".join(c.text for c in result.content if c.type == "text")
                if sampling:
                    result = await session.call_tool(sampling[0], sampling[1])
                    out["sampling_result"] = json.dumps([c.model_dump() for c in result.content])
                # Logging notifications arrive on their own; give them 15 s.
                for _ in range(150):
                    if out["logs"] >= wait_logs:
                        break
                    await asyncio.sleep(0.1)
                finished = True
    except* anyio.BrokenResourceError:
        # The SDK's (deprecated) WebSocket client fails its own teardown when
        # a message (a server's notification) arrives after the session
        # closed: its reader sends to a closed stream. Everything asked was
        # answered by then; anything earlier is a real failure.
        if not (finished and transport == "websocket"):
            raise
    print(json.dumps(out))


asyncio.run(main())
