"""Liveness and readiness probes, and the connection hygiene of a draining server.

`GET /healthz` answers 200 while the process runs (liveness). `GET /readyz` answers 200 only once
every listener of the process is up and until a stop begins (readiness), so a load balancer stops
sending traffic as soon as SIGTERM arrives. Both are served ahead of exposure authentication: a
probe cannot carry a secret, and they reveal nothing but "up" (docs/RELIABILITY.md).

While draining, every response also carries `Connection: close`: a keep-alive client then opens a
new connection (which is refused, the listener being closed) instead of sending its next request
into a socket the server is about to close, which would be lost as a reset: the connection sets it
(`LimitedProtocol.drain`, called by server.py at the stop), so no request is wrapped here. A
request still running when the grace period ends is cancelled by the runtime; if it had not
started answering, its connection answers a 503 problem (retry elsewhere) rather than a bare 500
or a cut connection (`LimitedProtocol.answer_stopped`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable

if TYPE_CHECKING:
    from naftiko_runtime.workers import Board

from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime.exposes import asgi3


LIVE_PATH = "/healthz"
READY_PATH = "/readyz"
PROBE_PATHS = frozenset({LIVE_PATH, READY_PATH})


@dataclass
class Lifecycle:
    """The process state the probes report; the runtime moves it, apps only read it."""

    listening: bool = False  # every listener of the process is bound and serving
    draining: bool = False  # a stop began: finishing in-flight requests, accepting none
    workers: "Board | None" = None  # with --workers: which workers serve

    @property
    def status(self) -> str:
        if self.draining:
            return "draining"
        return "ready" if self.listening and (self.workers is None or self.workers.all_ready()) else "starting"


class HealthProbes:
    """Pure ASGI middleware: answers the two probe paths itself, passes everything else on."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle):
        self.app = app
        self.lifecycle = lifecycle

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The probe's or the app's coroutine: no coroutine frame and no `send` wrapper of its own
        (every resumption of a request walks its frames: bench/instructions.py)."""
        if scope["type"] == "http" and scope["path"] in PROBE_PATHS and scope["method"] in ("GET", "HEAD"):
            return self._probe(scope, send)
        return self.app(scope, receive, send)

    async def _probe(self, scope: Scope, send: Send) -> None:
        status = "alive" if scope["path"] == LIVE_PATH else self.lifecycle.status
        code = 200 if status in ("alive", "ready") else 503
        body = json.dumps({"status": status}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")]
        if self.lifecycle.draining:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
