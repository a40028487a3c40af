"""An MCP server on WebSocket (subprotocol `mcp`) built with the official
Python SDK: the upstream of mcpod's WebSocket bridge tests, since no
published server speaks WebSocket.

Usage: python3 ws_server.py PORT
Tools: `echo` (returns its message) and `ask` (asks the client to sample).
"""

import sys

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.websocket import websocket_server
from mcp.types import SamplingMessage, TextContent

mcp = FastMCP("ws-fixture")


@mcp.tool()
def echo(message: str) -> str:
    """Returns the message."""
    return f"Echo: {message}"


@mcp.tool()
async def ask(question: str, ctx: Context) -> str:
    """Asks the client's model and returns its answer."""
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))],
        max_tokens=20,
    )
    return f"sampled: {result.content.text}"


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    server = mcp._mcp_server
    async with websocket_server(scope, receive, send) as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", log_level="warning")
