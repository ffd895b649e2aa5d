"""MCP exposure: the official `mcp` SDK's low-level `Server`, with handlers built from the file.

Two transports share one server definition:

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

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as types
from mcp.server import CacheHint, Server
from mcp.server.caching import CACHEABLE_METHODS
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from naftiko_runtime import __version__
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.mcp_content import content_handlers
from naftiko_runtime.exposes.mcp_fast import MCP_PATHS, McpFastPath
from naftiko_runtime.exposes.hosts import LOOPBACK_NAMES, is_loopback
from naftiko_runtime.exposes.mcp_tools import Toolset
from naftiko_runtime.capability.model import McpExposure
from naftiko_runtime.plan import McpApi
from naftiko_runtime.runtime import Runtime

log = logging.getLogger("naftiko.mcp")

# No GET: a stateless server never sends server-initiated messages, so the SDK's GET stream would
# stay open and idle until the client gives up. 405 is the spec's answer for "no SSE stream here".
MCP_METHODS = ["POST", "DELETE"]


def build_server(api: McpApi, runtime: Runtime, tools: Toolset | None = None) -> Server[Any]:
    """The SDK server for one exposure: name = namespace, instructions = description; resources
    and prompts (exposes/mcp_content.py) only when the exposure declares them."""
    exposure = api.exposure
    tools = tools or Toolset(api, runtime)

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return tools.listing

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(params.name, params.arguments)

    server = Server(
        exposure.namespace,
        cache_hints=cache_hints(exposure),
        version=runtime.plan.cap.info_version or __version__,
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
    """Host/Origin checks for a loopback listener; None (no checks) on any other interface."""
    if not is_loopback(host):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*LOOPBACK_NAMES, *(f"{name}:*" for name in LOOPBACK_NAMES)],
        allowed_origins=[f"{scheme}://{name}{port}" for scheme in ("http", "https") for name in LOOPBACK_NAMES for port in ("", ":*")],
    )


def build_app(runtime: Runtime, api: McpApi, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app serving one exposure over streamable HTTP at `/mcp` and `/`, behind the
    health probes and the exposure's `authentication` guard (exposes/auth.py).

    Routes, not a Mount: a Mount answers POST /mcp with a 307 to /mcp/. The session manager runs
    in this app's lifespan (a mounted app's lifespan would never run). GET answers 405. Stateless
    2026-07-28 `tools/call` and `tools/list` take the fast path (exposes/mcp_fast.py) in front.
    """
    if not is_loopback(host):
        log.warning("MCP exposure '%s' listens on %s without Host/Origin checks; publish it only behind a proxy "
                    "that checks them", api.exposure.namespace, host)
    tools = Toolset(api, runtime)
    server = build_server(api, runtime, tools)
    security = security_settings(host)
    max_body = runtime.plan.settings.max_body_bytes
    manager = StreamableHTTPSessionManager(
        app=server, stateless=True, json_response=True, security_settings=security, max_request_body_size=max_body,
    )
    endpoint = StreamableHTTPASGIApp(manager)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    routes = [Route(path, endpoint, methods=MCP_METHODS) for path in MCP_PATHS]
    sdk_app = Starlette(routes=routes, lifespan=lifespan)
    fast = McpFastPath(sdk_app, tools, lambda: server.server_info_stamp, security, max_body)
    return protect(fast, api.guard, runtime.lifecycle)


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
