"""REST exposure: a Starlette app whose routes come from `exposes[type=rest]`.

Per request the handler only extracts inputs, checks them, and hands them to the invocation core;
errors become problem+json. One endpoint per path dispatches on the method, so a wrong method is a
405 naming the allowed ones rather than a confusing 404.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from naftiko_runtime.engine import Engine, RestApi, Route
from naftiko_runtime.errors import InputError, InputProblem, UpstreamFailure
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.health import ASGIApp
from naftiko_runtime.exposes.openapi import openapi_document
from naftiko_runtime.exposes.problems import input_problem, problem, upstream_problem
from naftiko_runtime.inputs import Input, coerce
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

    def __init__(self, routes: list[Route], max_body: int):
        self.routes = {r.method: (r, _Extractor(r.invocation.inputs)) for r in routes}
        if "GET" in self.routes and "HEAD" not in self.routes:
            self.routes["HEAD"] = self.routes["GET"]
        self.allow = ", ".join(sorted(self.routes))
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:  # an ASGI app: Starlette passes the raw call
        request = Request(scope, receive)
        try:
            response = await self.handle(request)
        except Exception as exc:  # the last line of defence: a problem+json, never a traceback
            log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
            response = problem(500, "Internal error", "the runtime failed to handle this request; the error is logged", request.url.path)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        entry = self.routes.get(request.method)
        if entry is None:
            return problem(405, "Method not allowed", f"{request.method} is not served on {request.url.path}; allowed: {self.allow}",
                           request.url.path, headers={"Allow": self.allow})
        route, extractor = entry
        try:
            body = await self._body(request) if extractor.needs_body else _NO_BODY
            inputs = extractor.extract(request, body)
            outcome = await route.invocation.invoke(inputs)
        except InputError as exc:
            return input_problem(exc, request.url.path)
        except UpstreamFailure as exc:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
            return upstream_problem(exc, request.url.path)
        except _BodyTooLarge:
            return problem(413, "Request body too large", f"the body is over the {self.max_body:,}-byte limit", request.url.path)
        if outcome.value is not NOTHING:
            return Response(json.dumps(outcome.value, ensure_ascii=False, separators=(",", ":")).encode(), outcome.status, media_type="application/json")
        if outcome.status in (204, 304) or request.method == "HEAD":
            return Response(b"" if request.method != "HEAD" else b"", outcome.status, media_type=outcome.content_type)
        return Response(outcome.body, outcome.status, media_type=outcome.content_type or "application/octet-stream")

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


class _EncodedSlashes:
    """Route on the raw path when it holds `%2F`, so `/v1/session/a%2Fb` is one segment, `a/b`.

    Servers decode the path before routing, which would turn an encoded slash into a separator
    and the request into a 404. The value still goes upstream percent-encoded as one segment.
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        raw = scope.get("raw_path")
        if raw and b"%2" in raw and (b"%2f" in raw or b"%2F" in raw):
            segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")
            scope = dict(scope, path="/".join(unquote(seg).replace("/", _SLASH) for seg in segments))
        await self.app(scope, receive, send)


def build_app(engine: Engine, api: RestApi) -> ASGIApp:
    """The app for one REST exposure: its Starlette routes behind the probes and the auth guard."""
    by_path: dict[str, list[Route]] = {}
    for route in api.routes:
        by_path.setdefault(route.path, []).append(route)
    routes = [StarletteRoute(path, _PathEndpoint(rs, engine.options.max_body_bytes), methods=None) for path, rs in by_path.items()]
    document = openapi_document(engine, api)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes.append(StarletteRoute("/openapi.json", openapi, methods=["GET", "HEAD"]))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return problem(405, "Method not allowed", f"{request.method} is not served on {request.url.path}", request.url.path,
                           headers=getattr(exc, "headers", None))
        if status == 404:
            return problem(404, "Not found", f"no route matches {request.url.path}; see /openapi.json for the routes served", request.url.path)
        return problem(status, getattr(exc, "detail", "Error"), instance=request.url.path)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "Internal error", "the runtime failed to handle this request; the error is logged", request.url.path)

    app = _EncodedSlashes(Starlette(routes=routes, exception_handlers={HTTPException: not_found, Exception: server_error}))
    return protect(app, api.guard, engine.lifecycle)
