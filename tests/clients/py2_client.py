"""Drives an MCP server through mcpod with the official Python SDK 2.x.

Usage: python py2_client.py URL MODE [--call TOOL JSON_ARGS] [--sampling-tool TOOL JSON_ARGS]
                                     [--elicitation-tool TOOL JSON_ARGS]
MODE is 2026-07-28 (a pinned, stateless client), auto (probe with
server/discover, fall back to the handshake) or legacy. Prints one JSON
object: the negotiated protocol version, tools, the call's text, resource
and prompt counts, a resource read and a prompt got, and what the sampling
and elicitation round trips (input_required at 2026-07-28) saw. A call
answered with a JSON-RPC error is reported as `<flag>_error`.
"""

import asyncio
import json
import sys

import mcp_types as types
from mcp import Client


async def main() -> None:
    url, mode = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    tools_to_call = {}
    while rest:
        flag, tool, args = rest[0], rest[1], json.loads(rest[2])
        rest = rest[3:]
        tools_to_call[flag.lstrip("-")] = (tool, args)
    out: dict = {"sampled": None, "elicited": None}

    async def on_sampling(context, params: types.CreateMessageRequestParams):
        first = params.messages[0].content if params.messages else None
        out["sampled"] = getattr(first, "text", "")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="fake-model"
        )

    async def on_elicitation(context, params: types.ElicitRequestParams):
        out["elicited"] = params.message
        return types.ElicitResult(action="accept", content={"color": "blue", "number": 7, "name": "Ada"})

    async with Client(url, mode=mode, sampling_callback=on_sampling, elicitation_callback=on_elicitation) as client:
        out["protocol"] = client.protocol_version
        out["server"] = client.server_info.name if client.server_info else None
        out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        # A pinned client has not asked what the server offers: a server
        # without resources or prompts answers their lists with an error.
        try:
            resources = (await client.list_resources()).resources
            out["resources"] = len(resources)
            if resources:
                out["read"] = len((await client.read_resource(resources[0].uri)).contents)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            out["resources_error"] = str(e)
        try:
            prompts = (await client.list_prompts()).prompts
            out["prompts"] = len(prompts)
            plain = next((p for p in prompts if not any(a.required for a in (p.arguments or []))), None)
            if plain:
                out["prompt_messages"] = len((await client.get_prompt(plain.name)).messages)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            out["prompts_error"] = str(e)
        for kind, (tool, args) in tools_to_call.items():
            try:
                result = await client.call_tool(tool, args)
            except Exception as e:  # noqa: BLE001 - a JSON-RPC error answer, reported
                out[kind + "_error"] = str(e)
                continue
            texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
            out[kind] = "".join(texts) if texts else json.dumps([c.model_dump() for c in result.content])
            out[kind + "_is_error"] = bool(result.is_error)
    print(json.dumps(out))


asyncio.run(main())
