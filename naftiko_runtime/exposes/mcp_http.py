"""An MCP exposure over streamable HTTP: the fast path in front, the SDK's app loaded when needed.

What a listener serves, outermost first: the health probes, Host/Origin and `authentication`
checks (exposes/auth.py), then `McpFastPath` (exposes/mcp_fast.py), which answers stateless
2026-07-28 `tools/call` and repeated `tools/list` itself, then the `mcp` SDK's app
(exposes/mcp.py) for everything else: `initialize` and the handshake era, `server/discover`,
resources, prompts, notifications, the first `tools/list`, and every error the SDK owns.

The SDK is imported on the first request that needs it, not at startup. The fast path needs only
the SDK's wire types (`mcp_types` and pydantic, imported with this module); the `mcp` package
(transports, server, client, ~550 models: ~15-20 MB of memory and ~0.3-0.7 s of import) is not
paid by a server whose clients only call tools, and does not delay the listener. The request that
triggers the import waits for it once (docs/PERFORMANCE.md has the figures); requests the fast
path serves never wait.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys
from typing import Any, Callable

import mcp_types as types
from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime import __version__
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.hosts import LOOPBACK_NAMES, is_loopback
from naftiko_runtime.exposes.mcp_fast import HostRules, McpFastPath
from naftiko_runtime.exposes.mcp_tools import Toolset
from naftiko_runtime.plan import McpApi
from naftiko_runtime.runtime import Runtime

log = logging.getLogger("naftiko.mcp")

SDK_MODULE = "naftiko_runtime.exposes.mcp"  # imports the `mcp` SDK


def identity(api: McpApi, runtime: Runtime) -> tuple[str, str]:
    """The server's name and version (`serverInfo`): the namespace, and `info.version` or ours."""
    return api.exposure.namespace, runtime.plan.cap.info_version or __version__


def host_rules(host: str) -> HostRules | None:
    """Host/Origin allow-lists for a loopback listener; None (no checks) on any other interface."""
    if not is_loopback(host):
        return None
    return HostRules(
        allowed_hosts=(*LOOPBACK_NAMES, *(f"{name}:*" for name in LOOPBACK_NAMES)),
        allowed_origins=tuple(f"{scheme}://{name}{port}" for scheme in ("http", "https") for name in LOOPBACK_NAMES for port in ("", ":*")),
    )


class SdkApp:
    """The SDK's ASGI app for one exposure, imported and built on the first request that needs it.

    Concurrent first requests wait for the same import. The SDK's session manager runs in a task
    of its own from then on, and stops when the app's lifespan ends.
    """

    def __init__(self, build: Callable[[Any], tuple[ASGIApp, Any]]):
        self._build = build  # (the SDK module) -> (its ASGI app, its session manager)
        self._app: ASGIApp | None = None
        self._loading: asyncio.Future[ASGIApp] | None = None
        self._running: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        app = self._app or await self._load()
        await app(scope, receive, send)

    async def _load(self) -> ASGIApp:
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._start())
        return await asyncio.shield(self._loading)  # a client that leaves does not cancel the import

    async def _start(self) -> ASGIApp:
        first = SDK_MODULE not in sys.modules
        module = await asyncio.to_thread(importlib.import_module, SDK_MODULE)  # REST and the fast path keep serving
        if first:  # its modules and types (~10 MB of objects) live as long as the process: out of the collector's
            gc.freeze()  # sight, as server.py does at the start, else every full collection scans them (p99 at c=32: ~6 -> ~2.5 ms)
        app, manager = self._build(module)
        started = asyncio.Event()

        async def run() -> None:
            async with manager.run():
                started.set()
                await self._stop.wait()

        self._running = asyncio.create_task(run())
        waiting = asyncio.ensure_future(started.wait())
        await asyncio.wait({waiting, self._running}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiting.cancel()
            self._running.result()  # raises what stopped the manager
        self._app = app
        return app

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _close(self) -> None:
        if self._loading is not None:
            await asyncio.gather(self._loading, return_exceptions=True)  # an import under way finishes first
        self._stop.set()
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)


def build_app(runtime: Runtime, api: McpApi, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app serving one exposure over streamable HTTP at `/mcp` and `/`."""
    if not is_loopback(host):
        log.warning("MCP exposure '%s' listens on %s without Host/Origin checks; publish it only behind a proxy "
                    "that checks them", api.exposure.namespace, host)
    tools = Toolset(api, runtime)
    rules = host_rules(host)
    max_body = runtime.plan.settings.max_body_bytes
    name, version = identity(api, runtime)
    stamp = types.Implementation(name=name, version=version).model_dump(by_alias=True, mode="json", exclude_none=True)
    sdk = SdkApp(lambda module: module.sdk_app(runtime, api, tools, rules, max_body))
    fast = McpFastPath(sdk, tools, stamp, rules, max_body)
    if runtime.observability is not None:
        runtime.observability.observe_fast_path(fast, api.exposure.namespace)
    return protect(fast, api.guard, runtime.lifecycle)
