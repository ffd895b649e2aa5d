"""MCP exposure: the official `mcp` SDK's low-level `Server`, with handlers built from the file.

This module is what imports the SDK; exposes/mcp_http.py loads it on the first HTTP request the
fast path does not serve. Two transports share one server definition:

- streamable HTTP (`transport: http`, the default): stateless, JSON responses (no SSE), served at
  `/mcp` and at `/` (clients of the reference engine post to the root). The SDK speaks both the
  stateless 2026-07-28 revision and the older `initialize` handshake on the same endpoint.
- stdio (`transport: stdio`, or `naftiko run FILE --stdio`): JSON-RPC on stdin/stdout; every log
  line goes to stderr. Exposure `authentication` does not apply there: the client that spawned
  the process owns its pipes.

DNS-rebinding protection (a web page in the user's browser must not reach a local MCP server
through a hostile DNS name): when the listener is bound to a loopback address, requests must carry
a loopback `Host` (127.0.0.1, localhost, [::1], any port) and, if present, a loopback `Origin`;
others get 421/403. Bound to any other interface, the operator chose to publish the server under
names this process cannot know, so Host/Origin checks are off; put it behind a proxy that checks
them (and authenticates) -- see docs/mcp.md.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp.types as types
from mcp import MCPError
from mcp.server import CacheHint, Server
from mcp.server.caching import CACHEABLE_METHODS
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime.exposes.problems import problem
from naftiko_runtime.capability.model import McpExposure
from naftiko_runtime.exposes.mcp_content import content_handlers
from naftiko_runtime.exposes.mcp_fast import MCP_PATHS, HostRules
from naftiko_runtime.exposes.mcp_http import host_rules, identity
from naftiko_runtime.exposes.mcp_tools import Toolset
from naftiko_runtime.plan import McpApi
from naftiko_runtime.runtime import Runtime

log = logging.getLogger("naftiko.mcp")



class PostOnly:
    """The MCP endpoint answers POST only: a stateless server sends no server-initiated messages (a
    GET stream would stay idle until the client gives up) and keeps no session to DELETE. Anything
    else is a 405 problem+json with `Allow: POST`, as the streamable HTTP transport specifies."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            await self.app(scope, receive, send)
            return
        response = problem(405, "Method not allowed", "this MCP endpoint is stateless streamable HTTP: send JSON-RPC messages "
                           "with POST (there is no event stream to GET and no session to DELETE)", scope["path"],
                           headers={"Allow": "POST"})
        await response(scope, receive, send)


def build_server(api: McpApi, runtime: Runtime, tools: Toolset | None = None) -> Server[Any]:
    """The SDK server for one exposure: name = namespace, instructions = description; resources
    and prompts (exposes/mcp_content.py) only when the exposure declares them."""
    exposure = api.exposure
    tools = tools or Toolset(api, runtime)

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return tools.listing

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        runner = tools.runners.get(params.name)
        if runner is None:
            names = list(tools.runners)
            known = ", ".join(names[:20]) + (f" and {len(names) - 20} more (see tools/list)" if len(names) > 20 else "")
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}; known tools: {known or 'none'}")
        return await runner.call(params.arguments)

    name, version = identity(api, runtime)
    server = Server(
        name,
        cache_hints=cache_hints(exposure),
        version=version,
        instructions=exposure.description or None,
        get_tool_input_schema=tools.input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        **content_handlers(api, runtime),
    )
    if runtime.observability is not None:
        runtime.observability.observe_mcp(server, tools, [p.prompt.name for p in api.prompts], exposure.namespace)
    return server


def cache_hints(exposure: McpExposure) -> dict[str, CacheHint] | None:
    """`ttlMs` / `cacheScope` (beta4) as the protocol's cache hints on every cacheable result
    (tools/list, resources/list and read, prompts/list...), as the reference engine sends them."""
    if exposure.ttl_ms is None and exposure.cache_scope is None:
        return None
    hint = CacheHint(ttl_ms=exposure.ttl_ms or 0, scope=exposure.cache_scope or "private")  # type: ignore[arg-type]
    return {method: hint for method in CACHEABLE_METHODS}


def security_settings(host: str) -> TransportSecuritySettings | None:
    """Host/Origin checks for a loopback listener (the fast path's `HostRules`, for the SDK); None
    (no checks) on any other interface."""
    return _security(host_rules(host))


def _security(rules: HostRules | None) -> TransportSecuritySettings | None:
    if rules is None:
        return None
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=list(rules.allowed_hosts),
                                     allowed_origins=list(rules.allowed_origins))


def sdk_app(runtime: Runtime, api: McpApi, tools: Toolset, rules: HostRules | None, max_body: int) -> tuple[ASGIApp, StreamableHTTPSessionManager]:
    """The SDK's streamable HTTP app for one exposure at `/mcp` and `/` (stateless, JSON
    responses), and its session manager, which must be running while the app serves
    (exposes/mcp_http.py runs it).

    Routes, not a Mount: a Mount answers POST /mcp with a 307 to /mcp/. Only POST is served (`PostOnly`).
    """
    manager = StreamableHTTPSessionManager(
        app=build_server(api, runtime, tools), stateless=True, json_response=True, security_settings=_security(rules),
        max_request_body_size=max_body,
    )
    endpoint = StreamableHTTPASGIApp(manager)
    return Starlette(routes=[Route(path, PostOnly(endpoint)) for path in MCP_PATHS]), manager


async def serve_stdio(runtime: Runtime, api: McpApi) -> int:
    """Serve one exposure on stdin/stdout until stdin closes; 0 on a clean end."""
    server = build_server(api, runtime)
    log.info("MCP '%s' on stdio (%d tools)%s", api.exposure.namespace, len(api.tools),
             " [mock upstream: in-process fake, no network]" if runtime.plan.mock else "")
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await runtime.close()
    return 0
