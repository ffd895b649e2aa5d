"""REST exposure: an ASGI app whose routes come from `exposes[type=rest]`.

Per request the handler only extracts inputs, checks them, and hands them to the invocation core;
errors become problem+json. One endpoint per path dispatches on the method, so a wrong method is a
405 naming the allowed ones rather than a confusing 404.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from naftiko_runtime.errors import InputError, InputProblem, UpstreamFailure
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.openapi import openapi_document
from naftiko_runtime.exposes.problems import input_problem, problem, upstream_problem
from naftiko_runtime.exposes.router import Router
from naftiko_runtime.inputs import Input, coerce
from naftiko_runtime.plan import RestApi, Route
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.shaping import NOTHING, JsonPath

log = logging.getLogger("naftiko.rest")
_SLASH = "\ue000"  # stands for an encoded `/` (%2F) inside one path segment while routing
_NO_BODY = object()


class _BodyTooLarge(Exception):
    pass


class _Extractor:
    """Reads one route's inputs from a request, decided once per route."""

    def __init__(self, inputs: list[Input]):
        self.simple = [(i.name, i.location, i.type) for i in inputs if i.location in ("path", "query", "header", "cookie")]
        self.arrays = {i.name for i in inputs if i.location == "query" and i.type == "array"}
        self.whole_body = next((i.name for i in inputs if i.whole_body), None)
        self.fields = [(i.name, JsonPath(i.value) if isinstance(i.value, str) and i.value.startswith("$") else None)
                       for i in inputs if i.location in (None, "body") and not i.whole_body]
        self.needs_body = self.whole_body is not None or bool(self.fields)

    def extract(self, request: Request, body: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        problems: list[InputProblem] = []
        for name, location, type_ in self.simple:
            if location == "path":
                raw = request.path_params.get(name)
                if raw is not None and _SLASH in raw:
                    raw = raw.replace(_SLASH, "/")
            elif location == "query":
                if name in self.arrays:
                    items = request.query_params.getlist(name)
                    if items:
                        values[name] = [v for item in items for v in item.split(",")] if len(items) == 1 else items
                    continue
                raw = request.query_params.get(name)
            elif location == "header":
                raw = request.headers.get(name)
            else:
                raw = request.cookies.get(name)
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


class _PathEndpoint:
    """All methods served on one path."""

    def __init__(self, routes: list[Route], runtime: Runtime):
        self.runtime = runtime
        self.routes = {r.method: (r, _Extractor(r.invocation.inputs)) for r in routes}
        if "GET" in self.routes and "HEAD" not in self.routes:
            self.routes["HEAD"] = self.routes["GET"]
        self.allow = ", ".join(sorted(self.routes))
        self.max_body = runtime.plan.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await self.handle(request, send)
        except Exception as exc:  # the last line of defence: a problem+json, never a traceback
            log.error("internal error on %s %s", request.method, scope["path"], exc_info=exc)
            await problem(500, "Internal error", "the runtime failed to handle this request; the error is logged",
                          scope["path"])(scope, receive, send)

    async def handle(self, request: Request, send: Send) -> None:
        scope = request.scope
        entry = self.routes.get(request.method)
        if entry is None:
            response = problem(405, "Method not allowed", f"{request.method} is not served on {scope['path']}; allowed: {self.allow}",
                               scope["path"], headers={"Allow": self.allow})
            return await response(scope, request.receive, send)
        route, extractor = entry
        try:
            body = await self._body(request) if extractor.needs_body else _NO_BODY
            inputs = extractor.extract(request, body)
            outcome = await route.invocation.invoke(inputs, self.runtime)
        except InputError as exc:
            return await input_problem(exc, scope["path"])(scope, request.receive, send)
        except UpstreamFailure as exc:
            log.warning("%s %s: %s", request.method, scope["path"], exc.message)
            return await upstream_problem(exc, scope["path"])(scope, request.receive, send)
        except _BodyTooLarge:
            response = problem(413, "Request body too large", f"the body is over the {self.max_body:,}-byte limit", scope["path"])
            return await response(scope, request.receive, send)
        if outcome.value is not NOTHING:
            payload = json.dumps(outcome.value, ensure_ascii=False, separators=(",", ":")).encode()
            return await _respond(send, outcome.status, payload, _JSON_CT)
        empty = outcome.status in (204, 304) or request.method == "HEAD"
        content_type = outcome.content_type.encode("latin-1") if outcome.content_type else _BINARY_CT
        extra = [(b"retry-after", outcome.retry_after.encode("latin-1"))] if outcome.retry_after else None
        await _respond(send, outcome.status, b"" if empty else outcome.body, content_type,
                       len(outcome.body) if request.method == "HEAD" else None, extra)

    async def _body(self, request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise _BodyTooLarge()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _BodyTooLarge()
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return _NO_BODY
        try:
            return json.loads(raw)
        except RecursionError:
            raise InputError.one("body", "body", "JSON nests too deeply") from None
        except ValueError as exc:
            raise InputError([InputProblem("body", "body", f"is not valid JSON ({exc})")], "Invalid JSON body") from None


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

    def __init__(self, runtime: Runtime, api: RestApi):
        by_path: dict[str, list[Route]] = {}
        for route in api.routes:
            by_path.setdefault(route.path, []).append(route)
        self.router: Router[Any] = Router()
        for path, routes in by_path.items():
            self.router.add(path, _PathEndpoint(routes, runtime))
        document = json.dumps(openapi_document(runtime.plan, api), ensure_ascii=False).encode()
        self.router.add("/openapi.json", _Static(document))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        path = scope["path"]
        raw = scope.get("raw_path")
        if raw and (b"%2f" in raw or b"%2F" in raw):  # an encoded `/` stays inside its segment
            path = "/".join(unquote(seg).replace("/", _SLASH) for seg in raw.split(b"?", 1)[0].decode("latin-1").split("/"))
        found = self.router.match(path)
        if found is None:
            response = problem(404, "Not found", f"no route matches {scope['path']}; see /openapi.json for the routes served", scope["path"])
            return await response(scope, receive, send)
        endpoint, params = found
        scope["path_params"] = params
        await endpoint(scope, receive, send)


class _Static:
    """A fixed JSON document (the OpenAPI description), GET and HEAD only."""

    def __init__(self, body: bytes):
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = problem(405, "Method not allowed", f"{scope['method']} is not served on {scope['path']}; allowed: GET, HEAD",
                               scope["path"], headers={"Allow": "GET, HEAD"})
            return await response(scope, receive, send)
        await _respond(send, 200, self.body if scope["method"] == "GET" else b"", _JSON_CT, len(self.body))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(runtime: Runtime, api: RestApi) -> ASGIApp:
    """The app for one REST exposure: its routes behind the probes and the auth guard."""
    return protect(RestApp(runtime, api), api.guard, runtime.lifecycle)
