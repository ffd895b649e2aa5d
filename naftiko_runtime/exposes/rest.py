"""REST exposure: an ASGI app whose routes come from `exposes[type=rest]`.

Per request the handler only extracts inputs, checks them, and hands them to the invocation core;
errors become problem+json. One endpoint per path dispatches on the method, so a wrong method is a
405 naming the allowed ones rather than a confusing 404.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Awaitable
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime.exposes import asgi3
from naftiko_runtime.errors import InputError, InputProblem, StepFailure, UpstreamFailure
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.docs import mount as mount_docs
from naftiko_runtime.exposes.forward import ForwardEndpoint
from naftiko_runtime.exposes.hosts import is_loopback
from naftiko_runtime.exposes.cors import CorsPolicy
from naftiko_runtime.exposes.openapi import openapi_document
from naftiko_runtime.exposes.problems import input_problem, problem, step_problem, upstream_problem
from naftiko_runtime.exposes.router import Router
from naftiko_runtime.observability import ROUTE_KEY
from naftiko_runtime.inputs import Input, coerce
from naftiko_runtime.plan import RestApi, Route
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.shaping import NOTHING, JsonPath

log = logging.getLogger("naftiko.rest")
_SLASH = "\ue000"  # stands for an encoded `/` (%2F) inside one path segment while routing
_NO_BODY = object()


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class _Extractor:
    """Reads one route's inputs from the raw ASGI scope, decided once per route.

    No framework Request object: a request parses only the sources its route reads (most routes
    read path values alone), straight from `scope` (bench/: ~50 µs per request less than building
    a Starlette Request and its header/query views).
    """

    def __init__(self, inputs: list[Input]):
        self.simple = [(i.name, i.location, i.type) for i in inputs if i.location in ("path", "query", "header", "cookie")]
        self.arrays = {i.name for i in inputs if i.location == "query" and i.type == "array"}
        self.header_names = {i.name.lower().encode("latin-1") for i in inputs if i.location == "header"}
        if any(i.location == "cookie" for i in inputs):
            self.header_names.add(b"cookie")
        self.reads_query = any(i.location == "query" for i in inputs)
        self.whole_body = next((i.name for i in inputs if i.whole_body), None)
        self.fields = [(i.name, JsonPath(i.value) if isinstance(i.value, str) and i.value.startswith("$") else None)
                       for i in inputs if i.location in (None, "body") and not i.whole_body]
        self.needs_body = self.whole_body is not None or bool(self.fields)

    def extract(self, scope: Scope, body: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        problems: list[InputProblem] = []
        query = _query_lists(scope) if self.reads_query else {}
        headers = self._headers(scope) if self.header_names else {}
        cookies = _cookies(headers["cookie"]) if "cookie" in headers else {}
        path_params = scope["path_params"]
        for name, location, type_ in self.simple:
            if location == "path":
                raw = path_params.get(name)
                if raw is not None and _SLASH in raw:
                    raw = raw.replace(_SLASH, "/")
            elif location == "query":
                items = query.get(name)
                if name in self.arrays:
                    if items:
                        values[name] = [v for item in items for v in item.split(",")] if len(items) == 1 else items
                    continue
                raw = items[-1] if items else None  # a repeated scalar: the last one, as frameworks do
            elif location == "header":
                raw = headers.get(name.lower())
            else:
                raw = cookies.get(name)
            if raw is None:
                continue
            try:
                values[name] = coerce(raw, type_)
            except ValueError:
                problems.append(InputProblem(name, location, f"must be {'an' if type_[0] in 'aeio' else 'a'} {type_}, got '{raw[:40]}'"))
        if body is not _NO_BODY:
            if self.whole_body is not None:
                values[self.whole_body] = body
            if isinstance(body, dict):
                for name, path in self.fields:
                    if path is not None:
                        found = path.find(body)
                        if found is not None:
                            values[name] = found
                    elif name in body:
                        values[name] = body[name]
        if problems:
            raise InputError(problems)
        return values

    def _headers(self, scope: Scope) -> dict[str, str]:
        """The first value of each header this route reads (names lower-cased, as ASGI gives them)."""
        out: dict[str, str] = {}
        wanted = self.header_names
        for name, value in scope["headers"]:
            if name in wanted:
                out.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        return out


def _cookies(header: str) -> dict[str, str]:
    from starlette.requests import cookie_parser  # here, not at the top: only cookie routes need starlette.requests

    return cookie_parser(header)


def _query_lists(scope: Scope) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    raw = scope.get("query_string")
    if raw:
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            out.setdefault(name, []).append(value)
    return out


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class _PathEndpoint:
    """All methods served on one path; on a `forward` resource, the others are forwarded."""

    def __init__(self, routes: list[Route], runtime: Runtime, forward: ForwardEndpoint | None = None):
        self.runtime = runtime
        self.path = routes[0].path  # the route template, for metrics and span names
        self.routes = {r.method: (r, _Extractor(r.invocation.inputs)) for r in routes}
        if "GET" in self.routes and "HEAD" not in self.routes:
            self.routes["HEAD"] = self.routes["GET"]
        self.allow = ", ".join(sorted(self.routes))
        self.max_body = runtime.plan.settings.max_body_bytes
        self.forward = forward

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:  # one coroutine for the whole request (no inner `handle` call: one frame less per request)
            method = scope["method"]
            entry = self.routes.get(method)
            if entry is None:
                if self.forward is not None:
                    return await self.forward(scope, receive, send)
                response = problem(405, "Method not allowed", f"{method} is not served on {scope['path']}; allowed: {self.allow}",
                                   scope["path"], headers={"Allow": self.allow})
                return await response(scope, receive, send)
            route, extractor = entry
            try:
                body = await self._body(scope, receive) if extractor.needs_body else _NO_BODY
                inputs = extractor.extract(scope, body)
                outcome = await route.invocation.invoke(inputs, self.runtime)
            except InputError as exc:
                return await input_problem(route.invocation.blame(exc), scope["path"])(scope, receive, send)
            except UpstreamFailure as exc:
                log.warning("%s %s: %s", method, scope["path"], exc.message)
                return await upstream_problem(exc, scope["path"])(scope, receive, send)
            except StepFailure as exc:
                log.warning("%s %s: %s", method, scope["path"], exc.message)
                return await step_problem(exc, scope["path"])(scope, receive, send)
            except _BodyTooLarge:
                response = problem(413, "Request body too large", f"the body is over the {self.max_body:,}-byte limit", scope["path"])
                return await response(scope, receive, send)
            except _NotJson as exc:
                given = str(exc.args[0])[:60] if exc.args[0] else "none"
                response = problem(415, "Unsupported media type", f"the body must be JSON (Content-Type: application/json); got {given}",
                                   scope["path"], headers={"Accept": "application/json"})
                return await response(scope, receive, send)
            if outcome.value is not NOTHING:
                payload = json.dumps(outcome.value, ensure_ascii=False, separators=(",", ":")).encode()
                return await _respond(send, outcome.status, payload, _JSON_CT)
            empty = outcome.status in (204, 304) or method == "HEAD"
            content_type = outcome.content_type.encode("latin-1") if outcome.content_type else _BINARY_CT
            extra = [(b"retry-after", outcome.retry_after.encode("latin-1"))] if outcome.retry_after else None
            await _respond(send, outcome.status, b"" if empty else outcome.body, content_type,
                           len(outcome.body) if method == "HEAD" else None, extra)
        except _Disconnected:  # a normal event: the client left while sending its body; nobody to answer
            log.debug("%s %s: the client disconnected before its request body ended", scope["method"], scope["path"])
        except Exception as exc:  # the last line of defence: a problem+json, never a traceback
            log.error("internal error on %s %s", scope["method"], scope["path"], exc_info=exc)
            await problem(500, "Internal error", "the runtime failed to handle this request; the error is logged",
                          scope["path"])(scope, receive, send)

    async def _body(self, scope: Scope, receive: Receive) -> Any:
        """The JSON body; 413 past the cap, 415 for another media type, 400 for what is not JSON."""
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            raise _BodyTooLarge()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise _BodyTooLarge()
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not raw.strip():
            return _NO_BODY
        content_type = _header(scope, b"content-type")
        if not _is_json(content_type):
            raise _NotJson(content_type)
        return parse_json(raw)


class _NotJson(Exception):
    pass


def _is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type: anything else (text/plain, forms) is what a
    cross-site page can send without a CORS preflight, so it is refused (docs/SECURITY.md)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_json(raw: bytes) -> Any:
    """A request body as JSON: 400 for invalid JSON, NaN/Infinity, numbers out of range and lone
    surrogates (none of them can be sent on as JSON), naming the field."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise InputError.one("body", "body", "JSON nests too deeply") from None
    except _NotFinite:
        where = _find(json.loads(raw), lambda v: isinstance(v, float) and not math.isfinite(v))
        raise InputError.one(where, "body", "must be a finite number (NaN and Infinity are not JSON)") from None
    except ValueError as exc:
        raise InputError([InputProblem("body", "body", f"is not valid JSON ({exc})")], "Invalid JSON body") from None
    if b"\\u" in raw or b"\xed" in raw:  # only then can a string hold a lone surrogate
        where = _find(value, lambda v: isinstance(v, str) and not _encodable(v))
        if where:
            where = where.encode("utf-8", "backslashreplace").decode()  # the name itself may hold one
            raise InputError.one(where, "body", "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid text")
    return value


class _NotFinite(ValueError):
    pass


def _no_constant(name: str) -> float:
    raise _NotFinite(name)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite(text)
    return number


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _find(value: Any, bad: Any, path: str = "") -> str:
    """The path (`a.b[0]`) of the first value, key or item that `bad` matches; "" when none."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if bad(key):
                return here
            found = _find(item, bad, here)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _find(item, bad, f"{path}[{i}]")
            if found:
                return found
    elif bad(value):
        return path or "body"
    return ""


_JSON_CT = b"application/json"
_BINARY_CT = b"application/octet-stream"


async def _respond(send: Send, status: int, body: bytes, content_type: bytes, length: int | None = None,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a response as two ASGI messages: the hot path builds no Response object."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body) if length is None else length).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RestApp:
    """One REST exposure as a plain ASGI app: trie routing, then the path's endpoint.

    No framework middleware stack on the request path: every error the endpoints can meet is
    already a problem+json, and anything unexpected is caught in `_PathEndpoint`.
    """

    def __init__(self, runtime: Runtime, api: RestApi, docs: bool = True):
        by_path: dict[str, list[Route]] = {}
        for route in api.routes:
            by_path.setdefault(route.path, []).append(route)
        forwards = {f.path: (f, ForwardEndpoint(f, runtime)) for f in api.forwards}
        self.router: Router[Any] = Router()
        endpoints: dict[str, Any] = {}
        for path, routes in by_path.items():
            owner = forwards.get(routes[0].operation.path)
            endpoints[path] = _PathEndpoint(routes, runtime, owner[1] if owner else None)
            self.router.add(path, endpoints[path])
        for path, (route, forward) in forwards.items():
            endpoint = endpoints.get(path, forward)  # the resource's operations first, the rest forwarded
            if path not in endpoints:
                self.router.add(path, endpoint)
            if route.capture is not None:
                self.router.add_tail(route.prefix, route.capture, endpoint)
                if route.prefix not in by_path:  # `/prefix` itself: the upstream's base path
                    self.router.add(route.prefix, forward)
        document = json.dumps(openapi_document(runtime.plan, api), ensure_ascii=False).encode()
        self.router.add("/openapi.json", _Static(document, "/openapi.json"))
        self.docs = docs and mount_docs(self.router, runtime.plan.cap.label or api.exposure.namespace, api.exposure.namespace)

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The endpoint's own coroutine (an ASGI app only has to return an awaitable): routing
        takes no coroutine frame, which every resumption of the request would walk through."""
        if scope["type"] == "lifespan":
            return _lifespan(receive, send)
        if scope["type"] != "http":
            return _nothing()
        path = scope["path"]
        raw = scope.get("raw_path")
        if raw and (b"%2f" in raw or b"%2F" in raw):  # an encoded `/` stays inside its segment
            path = "/".join(unquote(seg).replace("/", _SLASH) for seg in raw.split(b"?", 1)[0].decode("latin-1").split("/"))
        found = self.router.match(path)
        if found is None:
            response = problem(404, "Not found", f"no route matches {scope['path']}; see /openapi.json for the routes served", scope["path"])
            return response(scope, receive, send)
        endpoint, params = found
        scope["path_params"] = params
        scope[ROUTE_KEY] = getattr(endpoint, "path", None)
        return endpoint(scope, receive, send)


class _Static:
    """A fixed JSON document (the OpenAPI description), GET and HEAD only."""

    def __init__(self, body: bytes, path: str):
        self.body = body
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = problem(405, "Method not allowed", f"{scope['method']} is not served on {scope['path']}; allowed: GET, HEAD",
                               scope["path"], headers={"Allow": "GET, HEAD"})
            return await response(scope, receive, send)
        await _respond(send, 200, self.body if scope["method"] == "GET" else b"", _JSON_CT, len(self.body))


async def _nothing() -> None:
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(runtime: Runtime, api: RestApi, host: str = "127.0.0.1", docs: bool = True) -> ASGIApp:
    """The app for one REST exposure: its routes (and /docs unless `docs` is off) behind the probes,
    the Host/Origin checks of a loopback listener (exposes/hosts.py), CORS and the auth guard."""
    cors = api.exposure.cors
    policy = CorsPolicy(cors, {r.method for r in api.routes}) if cors is not None else None
    return protect(RestApp(runtime, api, docs), api.guard, runtime.lifecycle, loopback_only=is_loopback(host), cors=policy)
