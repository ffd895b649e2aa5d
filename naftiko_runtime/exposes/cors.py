"""CORS for a REST exposure with a `cors` block: preflights answered here, `Access-Control-*`
headers only on answers to allowed origins (docs/cors.md).

It sits outside the exposure's authentication: a browser sends a preflight without credentials,
and a page must be able to read a 401 to know it has to log in.

Hand-written rather than Starlette's CORSMiddleware, which sends `Access-Control-Allow-Credentials`
and `Access-Control-Expose-Headers` to every origin and refuses a preflight with a text/plain 400:
here a refused origin gets no `Access-Control-*` header at all, a refused preflight gets a 403
problem+json naming what was refused (origin, method or header), and the work per request of an
exposure without an `Origin` header is one scan of the header list.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naftiko_runtime.capability.model import Cors
from naftiko_runtime.exposes.problems import problem

_PREFLIGHT_VARY = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class CorsPolicy:
    """A `cors` block compiled for matching: origins, methods and headers as sets."""

    def __init__(self, cors: Cors, served_methods: Iterable[str]):
        self.any_origin = "*" in cors.origins
        self.origins = frozenset(o for o in cors.origins if "*" not in o)
        self.patterns = [_pattern(o) for o in cors.origins if "*." in o]
        methods = set(cors.methods or served_methods)
        if "GET" in methods:
            methods.add("HEAD")
        self.any_method = "*" in methods
        self.methods = frozenset(methods - {"*"})
        self.any_header = "*" in cors.headers
        self.headers = frozenset(h.lower() for h in cors.headers)
        self.credentials = cors.credentials
        self.max_age = cors.max_age
        self.exposed = ", ".join(cors.exposed_headers).encode("latin-1")

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins or any(p.match(origin) for p in self.patterns)

    def allowed_origin(self, origin: bytes) -> bytes:
        """The `Access-Control-Allow-Origin` value (`*` never comes with credentials: refused at load)."""
        return b"*" if self.any_origin else origin

    @property
    def varies(self) -> bool:
        """Whether answers depend on the `Origin` (then caches must key on it: `Vary: Origin`)."""
        return not self.any_origin


def _pattern(origin: str) -> re.Pattern[str]:
    """`https://*.example.com` -> any subdomain (one or more labels) of example.com, same port."""
    scheme, _, rest = origin.partition("://*.")
    return re.compile(re.escape(scheme) + r"://[a-z0-9-]+(?:\.[a-z0-9-]+)*\." + re.escape(rest) + "$")


class CorsMiddleware:
    """Pure ASGI middleware applying a `CorsPolicy`."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        origin = request_method = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
        policy = self.policy
        if origin is None:
            return await self.app(scope, receive, _vary(send) if policy.varies else send)
        allowed = policy.allows(origin.decode("latin-1").lower())
        if scope["method"] == "OPTIONS" and request_method is not None:
            return await self._preflight(scope, receive, send, origin, request_method.decode("latin-1").upper(), allowed)
        if not allowed:
            return await self.app(scope, receive, _vary(send) if policy.varies else send)
        extra = [(b"access-control-allow-origin", policy.allowed_origin(origin))]
        if policy.credentials:
            extra.append((b"access-control-allow-credentials", b"true"))
        if policy.exposed:
            extra.append((b"access-control-expose-headers", policy.exposed))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if not h[0].lower().startswith(b"access-control-")]
                message = {**message, "headers": _with_vary([*headers, *extra]) if policy.varies else [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, sending)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send, origin: bytes, method: str, allowed: bool) -> None:
        policy = self.policy
        requested = [h.strip().lower() for _, v in scope["headers"] if _ == b"access-control-request-headers"
                     for h in v.decode("latin-1").split(",") if h.strip()]
        refused = ""
        if not allowed:
            refused = f"origin {origin.decode('latin-1')} is not allowed to call this API from a browser"
        elif not policy.any_method and method not in policy.methods:
            refused = f"method {method} is not allowed for cross-origin requests; allowed: {', '.join(sorted(policy.methods))}"
        elif not policy.any_header and [h for h in requested if h not in policy.headers]:
            names = ", ".join(h for h in requested if h not in policy.headers)
            refused = f"request header(s) {names} not allowed for cross-origin requests; allowed: {', '.join(sorted(policy.headers)) or 'none'}"
        if refused:
            response = problem(403, "CORS preflight refused", refused, scope["path"], headers={"Vary": _PREFLIGHT_VARY.decode()})
            return await response(scope, receive, send)
        headers = [(b"access-control-allow-origin", policy.allowed_origin(origin)),
                   (b"access-control-allow-methods", method.encode() if policy.any_method else ", ".join(sorted(policy.methods)).encode()),
                   (b"vary", _PREFLIGHT_VARY), (b"content-length", b"0")]
        if requested:
            headers.append((b"access-control-allow-headers", ", ".join(requested).encode("latin-1")))
        if policy.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        if policy.max_age is not None:
            headers.append((b"access-control-max-age", str(policy.max_age).encode()))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _vary(send: Send) -> Send:
    """`send` adding `Vary: Origin` to the answer (it would differ for an allowed origin)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": _with_vary(list(message.get("headers", ())))}
        await send(message)

    return sending


def _with_vary(headers: list[Any]) -> list[Any]:
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"origin" not in value.lower():
                headers[i] = (name, value + b", Origin")
            return headers
    headers.append((b"vary", b"Origin"))
    return headers
