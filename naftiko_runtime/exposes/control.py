"""Control exposure (SEMANTICS 6.2): the operator's port for health, status, metrics and traces.

```
GET /health/live          {"status": "UP"}                                   (management.health)
GET /health/ready         {"status": UP|STARTING|DRAINING, "adapters": [...]}, 503 unless UP
GET /status               capability, engine, uptime, observability, adapters  (management.info)
GET /metrics              Prometheus text (OpenMetrics when asked)             (observability.metrics)
GET /traces[?operation=&status=], /traces/{traceId}   recent traces            (observability.traces)
```

The health routes answer without credentials (a probe cannot carry a secret); everything else is
behind the exposure's `authentication`. The control port stays up while the other listeners drain,
so it reports DRAINING instead of refusing connections, and closes last (server.py).
"""

from __future__ import annotations

import json
import platform
import time
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime import __version__
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.hosts import is_loopback
from naftiko_runtime.exposes.problems import problem
from naftiko_runtime.plan import ControlApi
from naftiko_runtime.runtime import Runtime

if TYPE_CHECKING:
    from naftiko_runtime.server import Listener

HEALTH_PATHS = frozenset({"/health/live", "/health/ready"})


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, ensure_ascii=False).encode(), status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


class Control:
    """The control routes, reading the process's live state."""

    def __init__(self, runtime: Runtime, api: ControlApi, listeners: list["Listener"]):
        self.runtime = runtime
        self.api = api
        self.listeners = listeners  # filled in by the server; read per request
        self.started = time.time()
        obs = runtime.observability
        self.metrics = obs.metrics if obs is not None else None
        self.traces = obs.tracing.buffer if obs is not None and obs.tracing is not None else None

    def adapters(self) -> list[dict[str, Any]]:
        draining = self.runtime.lifecycle.draining
        return [{"type": lst.kind, "namespace": lst.namespace, "port": lst.port,
                 "state": "draining" if draining else "started" if lst.started else "starting"}
                for lst in self.listeners if lst.kind != "control"]

    def state(self) -> str:
        lifecycle = self.runtime.lifecycle
        if lifecycle.draining:
            return "DRAINING"
        return "UP" if lifecycle.status == "ready" and all(lst.started for lst in self.listeners) else "STARTING"

    async def live(self, request: Request) -> Response:
        return _json({"status": "UP"})

    def workers(self) -> dict[str, Any]:
        """With --workers: how many there are and how many serve (UP needs all of them)."""
        board = self.runtime.lifecycle.workers
        return {"workers": {"count": board.count, "ready": board.ready()}} if board is not None else {}

    async def ready(self, request: Request) -> Response:
        state = self.state()
        return _json({"status": state, "adapters": self.adapters(), **self.workers()}, 200 if state == "UP" else 503)

    async def status(self, request: Request) -> Response:
        cap, obs = self.runtime.plan.cap, self.runtime.observability
        tracing = obs.tracing if obs is not None else None
        config = self.api.exposure.observability
        board = self.runtime.lifecycle.workers
        return _json({
            "capability": {"label": cap.label, "file": cap.file, "specVersion": cap.version,
                           **({"version": cap.info_version} if getattr(cap, "info_version", None) else {})},
            "engine": {"name": "naftiko-runtime", "version": __version__, "python": platform.python_version()},
            "state": self.state(),
            "uptime": round(time.time() - (board.started if board is not None else self.started), 3),
            "mock": self.runtime.plan.mock,
            "observability": {
                "metrics": self.metrics is not None,
                "traces": "active" if tracing is not None else "inactive",
                "sampling": config.sampling if tracing is not None else None,
                "propagation": config.propagation if tracing is not None else None,
                "otlpExport": tracing is not None and tracing.endpoint is not None,
                "traceBuffer": self.traces.size if self.traces is not None else None,
            },
            "adapters": self.adapters(),
            **self.workers(),
        })

    async def scrape(self, request: Request) -> Response:
        assert self.metrics is not None
        body, content_type = self.metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    async def trace_list(self, request: Request) -> Response:
        assert self.traces is not None
        query = request.query_params
        found = self.traces.list(query.get("operation"), query.get("status"))
        return _json({"traces": found, "bufferSize": self.traces.size, "bufferUsed": len(self.traces.traces)})

    async def trace(self, request: Request) -> Response:
        assert self.traces is not None
        found = self.traces.get(request.path_params["trace_id"])
        if found is None:
            return problem(404, "Not found", f"no trace '{request.path_params['trace_id']}' among the {len(self.traces.traces)} most recent; see /traces",
                           request.url.path)
        return _json(found)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return problem(405, "Method not allowed", f"{request.method} is not served; the control port is read-only (GET, HEAD)",
                       request.url.path, headers={"Allow": "GET, HEAD"})
    return problem(404, "Not found", f"no control route {request.url.path} (health, status, metrics and traces are each "
                   "served when the control exposure enables them)", request.url.path)


class _OpenHealth:
    """Health routes without credentials, everything else through the guarded app."""

    def __init__(self, app: ASGIApp, guarded: ASGIApp):
        self.app = app
        self.guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in HEALTH_PATHS:
            return await self.app(scope, receive, send)
        await self.guarded(scope, receive, send)


def build_app(runtime: Runtime, api: ControlApi, listeners: list["Listener"], host: str = "127.0.0.1") -> ASGIApp:
    control = Control(runtime, api, listeners)
    exposure = api.exposure
    routes = []
    if exposure.health:
        routes += [Route("/health/live", control.live), Route("/health/ready", control.ready)]
    if exposure.info:
        routes.append(Route("/status", control.status))
    if control.metrics is not None:
        routes.append(Route("/metrics", control.scrape))
    if control.traces is not None:
        routes += [Route("/traces", control.trace_list), Route("/traces/{trace_id}", control.trace)]
    app = Starlette(routes=routes, exception_handlers={404: _http_error, 405: _http_error})
    return _OpenHealth(app, protect(app, api.guard, runtime.lifecycle, loopback_only=is_loopback(host)))
