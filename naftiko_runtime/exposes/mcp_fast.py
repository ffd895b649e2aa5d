"""MCP fast path: stateless 2026-07-28 `tools/call` and `tools/list` of this runtime's own tools.

About half of a tool call's CPU in the `mcp` SDK is its transport, dispatch, pydantic validation
and no-op tracing around the call (docs/PERFORMANCE.md). A 2026-07-28 `tools/call` is one POST in,
one JSON-RPC response out, so this ASGI layer in front of the SDK's app answers it directly:
orjson in and out, the runtime's own argument checks (inputs.Checker), the result built as the
SDK would shape it (`resultType`, the `serverInfo` stamp).

It only takes requests it fully understands and that the SDK would accept: a POST with a modern
`MCP-Protocol-Version`, JSON content and accept types, Host/Origin allowed by the same settings,
no duplicated routing headers and no `Mcp-Param-*` headers, a body that is one well-formed
request whose `Mcp-Method`/`Mcp-Name` headers match it, with a `_meta` envelope the SDK's own
validator accepts (cached per distinct envelope), for a tool this exposure has. Anything else, including every error
case, is replayed to the SDK untouched, so initialize, the legacy handshake, sessions,
notifications, other methods and every error answer stay the SDK's (tests/exposes/test_mcp_fast.py
checks both paths answer alike). `tools/list` is computed by the SDK once per protocol version
and served from that copy (counted and traced like the SDK's answers when observability is on).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY
from mcp_types import methods as _methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naftiko_runtime.exposes.mcp_tools import Toolset

log = logging.getLogger("naftiko.mcp")

MCP_PATHS = frozenset({"/mcp", "/"})
_METHODS = frozenset({"tools/call", "tools/list"})
_ROUTING = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_WANTED = frozenset({b"content-type", b"accept", b"host", b"origin", *_ROUTING})
_META_KEYS = frozenset({PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY})
_PARAM_KEYS = {"tools/call": frozenset({"name", "arguments", "_meta"}), "tools/list": frozenset({"_meta"})}
_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_JSON_HEADERS = [(b"content-type", b"application/json")]
_ENVELOPE_CACHE = 1024  # distinct `_meta` envelopes remembered as valid (clients send the same one every time)


@dataclass(frozen=True)
class HostRules:
    """Host/Origin allow-lists of a loopback listener, in the SDK's `TransportSecuritySettings`
    terms (an exact entry, or `name:*` for any port), as plain data the fast path checks without
    importing the SDK; exposes/mcp.py gives the same lists to the SDK."""

    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]


class McpFastPath:
    """Pure ASGI, in front of the SDK's app: serves what it fully understands, replays the rest."""

    def __init__(self, sdk_app: ASGIApp, tools: Toolset, server_info: dict[str, Any], security: HostRules | None, max_body: int):
        self.sdk_app = sdk_app
        self.tools = tools
        self.server_info = server_info  # the `serverInfo` stamp the SDK's server puts on 2026 results
        self.security = security
        self.max_body = max_body
        self._envelopes: set[bytes] = set()
        self._listings: dict[str, bytes] = {}  # protocol version -> the SDK's tools/list result, serialized

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in MCP_PATHS:
            return await self.sdk_app(scope, receive, send)
        headers = self._headers(scope)
        if headers is None:
            return await self.sdk_app(scope, receive, send)
        messages: list[Message] = []
        body = await self._body(receive, messages)
        call = self._request(body, headers) if body is not None else None
        if call is None:
            return await self.sdk_app(scope, _replay(messages, receive), send)
        request_id, method, params, version = call
        if method == "tools/list":
            listing = self._listings.get(version)
            if listing is None:
                return await self._learn_listing(version, scope, _replay(messages, receive), send)
            return await self.send_listing(send, request_id, listing)
        result = await self.tools.runners[params["name"]].call_wire(params.get("arguments"))
        result["resultType"] = "complete"
        result["_meta"] = {SERVER_INFO_META_KEY: self.server_info}
        await _answer(send, _dumps({"jsonrpc": "2.0", "id": request_id, "result": result}))

    async def send_listing(self, send: Send, request_id: Any, listing: bytes) -> None:
        """A tools/list answered from the learned copy (observability/tools.py wraps this to count it)."""
        await _answer(send, b'{"jsonrpc":"2.0","id":%s,"result":%s}' % (orjson.dumps(request_id), listing))

    def _headers(self, scope: Scope) -> dict[bytes, bytes] | None:
        """The headers the checks need, or None when the request is not one for this path."""
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                if name in found and name in _ROUTING:
                    return None  # duplicated routing header: the SDK's error
                found.setdefault(name, value)
            elif name.startswith(b"mcp-param-"):
                return None  # the SDK validates these against the tool's schema
        version = found.get(b"mcp-protocol-version", b"").decode("latin-1")
        if version not in MODERN_PROTOCOL_VERSIONS or found.get(b"mcp-method", b"").decode("latin-1") not in _METHODS:
            return None
        if not found.get(b"content-type", b"").lower().startswith(b"application/json") or not _accepts_json(found.get(b"accept", b"")):
            return None
        if self.security is not None and not self._allowed(found):
            return None
        return found

    def _allowed(self, headers: dict[bytes, bytes]) -> bool:
        """Host (and Origin, when sent) allowed by the same settings the SDK checks (never looser)."""
        assert self.security is not None
        host = headers.get(b"host")
        if host is None or not _matches(host.decode("latin-1"), self.security.allowed_hosts):
            return False
        origin = headers.get(b"origin")
        return origin is None or _matches(origin.decode("latin-1"), self.security.allowed_origins)

    async def _body(self, receive: Receive, messages: list[Message]) -> bytes | None:
        """The whole body (kept in `messages` for a replay), or None past the size limit or a disconnect."""
        chunks, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _request(self, body: bytes, headers: dict[bytes, bytes]) -> tuple[Any, str, dict[str, Any], str] | None:
        """(id, method, params, protocol version) of a request this path serves, else None."""
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(decoded) is not dict or decoded.get("jsonrpc") != "2.0" or not decoded.keys() <= _ENVELOPE_KEYS:
            return None
        request_id, method, params = decoded.get("id"), decoded.get("method"), decoded.get("params")
        if type(request_id) not in (int, str) or method not in _METHODS or type(params) is not dict:
            return None
        if method.encode() != headers[b"mcp-method"] or not params.keys() <= _PARAM_KEYS[method]:
            return None
        meta = params.get("_meta")
        version = headers[b"mcp-protocol-version"].decode("latin-1")
        if type(meta) is not dict or meta.get(PROTOCOL_VERSION_META_KEY) != version or not meta.keys() <= _META_KEYS:
            return None
        if not self._valid_envelope(meta, version):
            return None
        if method == "tools/call":
            name, arguments = params.get("name"), params.get("arguments")
            if type(name) is not str or name not in self.tools.runners or not (arguments is None or type(arguments) is dict):
                return None
            if headers.get(b"mcp-name", b"").decode("latin-1") != name:  # the SDK's encoded (`=?base64?`) form: its own path
                return None
        return request_id, method, params, version

    def _valid_envelope(self, meta: dict[str, Any], version: str) -> bool:
        """The `_meta` envelope, checked by the SDK's own validator once per distinct envelope."""
        try:
            key = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return False
        if key in self._envelopes:
            return True
        try:
            _methods.validate_client_request("tools/list", version, {"_meta": meta})
        except ValidationError:
            return False
        if len(self._envelopes) >= _ENVELOPE_CACHE:
            self._envelopes.clear()
        self._envelopes.add(key)
        return True

    async def _learn_listing(self, version: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the SDK answer this tools/list, and keep its result for the next ones."""
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                parts.append(message.get("body", b""))
                if not message.get("more_body", False) and start.get("status") == 200:
                    answer = json.loads(b"".join(parts))
                    if "result" in answer:
                        self._listings[version] = orjson.dumps(answer["result"])
            await send(message)

        await self.sdk_app(scope, receive, capture)


def _accepts_json(accept: bytes) -> bool:
    """As the SDK reads Accept (RFC 9110 wildcards): JSON is acceptable."""
    types = {part.split(b";")[0].strip().lower() for part in accept.split(b",")}
    return bool(types & {b"application/json", b"application/*", b"*/*"})


def _matches(value: str, allowed: tuple[str, ...]) -> bool:
    """The SDK's allow-list semantics: an exact entry, or `name:*` for any port."""
    return any(value == entry or (entry.endswith(":*") and value.startswith(entry[:-1])) for entry in allowed)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers past 64 bits in an upstream answer: the stdlib encoder takes them
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive channel that first gives back what was already read."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _answer(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
