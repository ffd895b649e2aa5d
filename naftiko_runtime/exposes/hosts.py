"""Host and Origin checks on loopback listeners: a web page must not reach a local gateway.

A browser on another site can send a "simple" request (a POST of `text/plain`, no CORS preflight)
to `http://127.0.0.1:PORT`, and through DNS rebinding it can make `evil.example` resolve to
127.0.0.1 and read the answers. Either way the gateway would call the upstream with the
operator's key. So a listener bound to a loopback address accepts only a loopback `Host`
(127.0.0.1, localhost, [::1], any port; else 421) and, when the browser sends one, a loopback
`Origin` (else 403). The MCP SDK applies the same rule to MCP listeners (exposes/mcp.py).

Bound to another interface (`--host`), the operator publishes the gateway under names this
process cannot know: the checks are off, and a reverse proxy that checks them is expected
(docs/SECURITY.md). The runtime sends no CORS headers unless a REST exposure has a `cors` block
(whose origins then pass the Origin check here), so browsers on other origins cannot read REST
answers, and a non-JSON body is refused with 415 (exposes/rest.py).
"""

from __future__ import annotations

import ipaddress
from typing import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime.exposes import asgi3
from naftiko_runtime.exposes.problems import problem

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_HOSTS_KEPT = 64  # distinct Host values whose verdict is remembered per listener


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_authority(value: bytes) -> bool:
    """`127.0.0.1`, `localhost:8080`, `[::1]:9`: a loopback name with an optional port."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        name = text[: text.find("]") + 1]
        rest = text[len(name):]
    else:
        name, _, port = text.partition(":")
        rest = ":" + port if port else ""
    return name in LOOPBACK_NAMES and (not rest or (rest[0] == ":" and rest[1:].isdigit()))


def _loopback_origin(value: bytes) -> bool:
    scheme, sep, authority = value.partition(b"://")
    return bool(sep) and scheme.lower() in (b"http", b"https") and _loopback_authority(authority)


class LoopbackOnly:
    """Pure ASGI middleware: refuses requests whose Host or Origin is not a loopback name.

    `trusted` accepts more origins: those an exposure's `cors` block names (docs/cors.md), which
    the operator chose to let call it from their pages."""

    def __init__(self, app: ASGIApp, trusted: Callable[[str], bool] | None = None):
        self.app = app
        self.trusted = trusted
        self.hosts: dict[bytes, bool] = {}  # verdicts on the Host values seen (clients repeat theirs), bounded

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The refusal's or the app's coroutine: the check takes no coroutine frame of its own."""
        if scope["type"] == "http":
            host = origin = None
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value
                elif name == b"origin":
                    origin = value
            if host is None or not self._loopback_host(host):
                response = problem(421, "Misdirected request", "this server answers only to a loopback Host "
                                   "(127.0.0.1, localhost, [::1]); see --host", scope["path"])
                return response(scope, receive, send)
            if origin is not None and not _loopback_origin(origin) and not (
                    self.trusted is not None and self.trusted(origin.decode("latin-1").lower())):
                response = problem(403, "Cross-origin request refused", "requests from web pages of other origins "
                                   "are not served", scope["path"])
                return response(scope, receive, send)
        return self.app(scope, receive, send)

    def _loopback_host(self, host: bytes) -> bool:
        verdict = self.hosts.get(host)
        if verdict is None:
            verdict = _loopback_authority(host)
            if len(self.hosts) < _HOSTS_KEPT:
                self.hosts[host] = verdict
        return verdict
