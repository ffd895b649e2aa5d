"""The MCP SDK's own ceiling: a no-op tool on the `mcp` 2.3 low-level Server.

Stateless streamable HTTP with JSON responses at `/mcp` (a Route, not a Mount, so POST /mcp is not
redirected), the same transport settings `naftiko run` uses, and a tool that returns a fixed text
without any I/O. Whatever the runtime adds on top of this is its own cost.

    python bench/bare_mcp.py --port 18130
"""

from __future__ import annotations

import contextlib
from typing import Any

import mcp.types as types
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route

from _serve import parser, serve  # bench/ is on sys.path when run as a script

TOOL = types.Tool(
    name="vapi-sessioncontrollerfindone",
    description="no-op: answers a fixed text",
    input_schema={"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
)
LISTING = types.ListToolsResult(tools=[TOOL])
RESULT = types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


def build_app() -> Starlette:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return LISTING

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return RESULT

    server: Server[Any] = Server("bare-noop", on_list_tools=list_tools, on_call_tool=call_tool)
    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
    endpoint = StreamableHTTPASGIApp(manager)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"])], lifespan=lifespan)


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    serve(build_app(), args.host, args.port)
