"""Authentication on exposures (SEMANTICS 3.2): a pure-ASGI guard in front of a whole adapter.

The expected credential is rendered from bind values once, at startup; a template naming no bind
is a startup error (a guard that compares against `{{TYPO}}` would be a lock anyone can open by
sending that literal). Per request the presented value is hashed and compared with
`hmac.compare_digest`, so neither its content nor its length leaks through timing. A refusal is a
401 problem+json with a `WWW-Authenticate` challenge naming the scheme (and, for API keys, where
the key goes), never anything about the expected value.

Being plain ASGI, the same guard wraps the Starlette REST app and the MCP SDK's app; on MCP it
covers POST, GET and DELETE alike, as the streamable HTTP transport requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime import credentials

from naftiko_runtime.errors import CompileError
from naftiko_runtime.exposes.cors import CorsMiddleware, CorsPolicy
from naftiko_runtime.exposes.problems import Response, problem
from naftiko_runtime.exposes.health import HealthProbes, Lifecycle
from naftiko_runtime.exposes.hosts import LoopbackOnly
from naftiko_runtime.exposes.oauth import METADATA_PATH, OAuthGuard
from naftiko_runtime.capability.model import Auth
from naftiko_runtime.upstream.request import CompileContext

log = logging.getLogger("naftiko.auth")

REALM = "naftiko"
Verdict = Literal["ok", "missing", "invalid"]


def _digest(value: str | bytes) -> bytes:
    """Expected values (text from binds) are compared as their UTF-8 bytes; presented values as the
    bytes that arrived (headers are not decoded, query values only percent-decoded), so a
    non-ASCII key matches however the client's bytes would decode."""
    return hashlib.sha256(value.encode("utf-8") if isinstance(value, str) else value).digest()


def _same(presented: bytes, expected: bytes) -> bool:
    """Constant time in the content and the length of both values."""
    return hmac.compare_digest(_digest(presented), expected)


@dataclass
class _Expected:
    """One value to present: where (`header`/`query`), under which name, and its digest."""

    placement: str
    name: str
    digest: bytes


@dataclass
class Guard:
    """One exposure's credential check, compiled from its `authentication` block."""

    scheme: Literal["bearer", "apikey", "basic"]
    namespace: str
    expected: list[_Expected] = field(default_factory=list)
    blank: bool = False  # an expected value is empty: every request is refused (SEMANTICS 3.2)

    def check(self, scope: Scope) -> Verdict:
        headers = _headers(scope)
        if self.scheme == "bearer":
            token = _after_scheme(headers.get(b"authorization"), b"bearer")
            return self._verdict([token])
        if self.scheme == "basic":
            pair = _basic_pair(headers.get(b"authorization"))
            return self._verdict(list(pair) if pair else [None, None])
        query = _query(scope) if any(e.placement == "query" for e in self.expected) else {}
        return self._verdict([headers.get(e.name.lower().encode("latin-1")) if e.placement == "header" else query.get(e.name)
                              for e in self.expected])

    def _verdict(self, presented: list[bytes | None]) -> Verdict:
        if all(p is None for p in presented):
            return "missing"
        ok = True
        for value, want in zip(presented, self.expected):  # no early exit: every value is compared
            ok &= _same(value or b"", want.digest) and value is not None
        return "ok" if ok and not self.blank else "invalid"

    def start(self) -> "Guard":
        return self  # nothing per process: the expected values are compiled

    async def verify(self, scope: Scope) -> tuple[Verdict, str]:
        return self.check(scope), ""

    def detail(self, verdict: str, why: str) -> str:
        return f"this API requires {self.describe()}" if verdict == "missing" else "the credentials presented were not accepted"

    def challenge(self, verdict: str, why: str = "", scope: Scope | None = None) -> str:
        if self.scheme == "bearer":
            return f'Bearer realm="{REALM}"' + (', error="invalid_token"' if verdict == "invalid" else "")
        if self.scheme == "basic":
            return f'Basic realm="{REALM}", charset="UTF-8"'
        first = self.expected[0]
        return f'ApiKey realm="{REALM}", in="{first.placement}", name="{first.name}"'

    def security_schemes(self) -> dict[str, dict[str, str]]:
        """OpenAPI security schemes, all of which a request must satisfy."""
        if self.scheme in ("bearer", "basic"):
            return {self.scheme: {"type": "http", "scheme": self.scheme}}
        return {f"apikey_{e.name}": {"type": "apiKey", "in": e.placement, "name": e.name} for e in self.expected}

    def describe(self) -> str:
        """Where the credential goes, for the 401 detail (never what it is)."""
        if self.scheme == "bearer":
            return "a bearer token in the Authorization header"
        if self.scheme == "basic":
            return "HTTP Basic credentials in the Authorization header"
        return " and ".join(f"an API key in {e.placement} '{e.name}'" for e in self.expected)


def compile_guard(auth: Auth | None, ctx: CompileContext, namespace: str) -> Guard | OAuthGuard | None:
    """The guard for an exposure, or None when it declares no authentication. Raises CompileError."""
    if auth is None:
        return None
    scheme = credentials.BY_KIND.get(auth.kind)
    if scheme is None or scheme.exposure is None:
        raise CompileError(f"authentication type '{auth.original_type or auth.kind}' on exposure '{namespace}' is not supported "
                           f"by this runtime ({credentials.names('exposure')} are); it is not served rather than served unprotected",
                           "unsupported-auth")
    if auth.kind == "oauth2":
        return OAuthGuard.compile(auth.fields, namespace)

    def render(text: str | None, what: str) -> str:
        template = ctx.template(text or "")
        if not template.is_constant:
            names = ", ".join("{{" + r.text + "}}" for r in template.refs)
            raise CompileError(f"authentication of exposure '{namespace}' uses {names} in its {what}, which no bind declares; "
                             f"declare it under `binds` (callers must not be able to choose the expected credential)", "exposure-auth")
        return template.constant()

    if auth.kind == "bearer":
        token = render(auth.token, "token")
        guard = Guard("bearer", namespace, [_Expected("header", "Authorization", _digest(token))], blank=not token)
    elif auth.kind == "basic":
        user, password = render(auth.username, "username"), render(auth.password, "password")
        guard = Guard("basic", namespace, [_Expected("header", "Authorization", _digest(user)),
                                           _Expected("header", "Authorization", _digest(password))], blank=not (user and password))
    else:
        expected: list[_Expected] = []
        blank = not auth.entries
        for entry in auth.entries:
            if entry.placement not in ("header", "query"):
                raise CompileError(f"apikey placement '{entry.placement}' on exposure '{namespace}' cannot be checked on incoming "
                                 "requests; use header or query", "exposure-auth")
            value = render(entry.value, f"'{entry.key}' value")
            blank |= not value
            expected.append(_Expected(entry.placement, entry.key, _digest(value)))
        guard = Guard("apikey", namespace, expected, blank=blank)
    if guard.blank:
        log.warning("exposure '%s': its expected credential is empty, so every request is refused with 401", namespace)
    return guard


class RequireAuth:
    """Pure ASGI middleware: a request reaches `app` only with the credential `guard` expects.

    An OAuth 2 guard also serves its protected resource metadata (RFC 9728), unauthenticated."""

    def __init__(self, app: ASGIApp, guard: Guard | OAuthGuard):
        self.app = app
        self.guard = guard
        self.verifier = guard.start()  # per process: an OAuth guard's key cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if isinstance(self.guard, OAuthGuard) and scope["path"].startswith(METADATA_PATH):
            await self._metadata(scope, receive, send)
            return
        verdict, why = await self.verifier.verify(scope)
        if verdict == "ok":
            await self.app(scope, receive, send)
            return
        log.debug("%s for %s %s on '%s': credentials %s", 403 if verdict == "forbidden" else 401, scope.get("method"),
                  scope["path"], self.guard.namespace, verdict)
        status, title = (403, "Forbidden") if verdict == "forbidden" else (401, "Unauthorized")
        response = problem(status, title, self.guard.detail(verdict, why), scope["path"],
                           headers={"WWW-Authenticate": self.guard.challenge(verdict, why, scope), "Cache-Control": "no-store"})
        await response(scope, receive, send)

    async def _metadata(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert isinstance(self.guard, OAuthGuard)
        if scope.get("method") not in ("GET", "HEAD"):
            response = problem(405, "Method not allowed", "the protected resource metadata is read with GET", scope["path"],
                               headers={"Allow": "GET, HEAD"})
        else:
            body = json.dumps(self.guard.metadata(scope), ensure_ascii=False, separators=(",", ":")).encode()
            response = Response(body, 200, {"Cache-Control": "max-age=300"}, "application/json")
        await response(scope, receive, send)


def protect(app: ASGIApp, guard: Guard | OAuthGuard | None, lifecycle: Lifecycle, loopback_only: bool = False,
            cors: CorsPolicy | None = None) -> ASGIApp:
    """An exposure's app as served: probes first (open), then the Host/Origin checks of a loopback
    listener (exposes/hosts.py; the MCP SDK has its own; origins the exposure's `cors` allows pass),
    then CORS (a preflight carries no credentials, and a page must be able to read a 401), then
    the auth check, then the app."""
    inner = RequireAuth(app, guard) if guard is not None else app
    if cors is not None:
        inner = CorsMiddleware(inner, cors)
    if loopback_only:
        inner = LoopbackOnly(inner, cors.allows if cors is not None else None)
    return HealthProbes(inner, lifecycle)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """First value of each header, as the bytes that arrived (ASGI lower-cases the names)."""
    out: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.lower(), value)
    return out


def _query(scope: Scope) -> dict[str, bytes]:
    """First value of each query parameter, percent-decoded to bytes (`+` is a space)."""
    out: dict[str, bytes] = {}
    for pair in scope.get("query_string", b"").split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        out.setdefault(key, unquote_to_bytes(value.replace(b"+", b" ")))
    return out


def _after_scheme(header: bytes | None, scheme: bytes) -> bytes | None:
    """`Bearer abc` -> `abc` (scheme case-insensitive); None when absent or another scheme."""
    if header is None:
        return None
    name, _, rest = header.strip().partition(b" ")
    if name.lower() != scheme:
        return None
    return rest.strip()


def _basic_pair(header: bytes | None) -> tuple[bytes, bytes] | None:
    encoded = _after_scheme(header, b"basic")
    if encoded is None:
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return (b"", b"\0")  # presented but unreadable: invalid, not missing
    return (user, password) if sep else (user, b"\0")
