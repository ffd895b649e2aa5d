"""Skill exposure (SEMANTICS 6.1): a read-only catalog of agent skills over HTTP.

```
GET /skills                              {"count", "skills": [{name, description, license?, tools: [names]}]}
GET /skills/{name}                       the skill's frontmatter and tools (derived: invocationRef; instruction: file)
GET /skills/{name}/download              a zip of the skill's location folder
GET /skills/{name}/contents              {"name", "files": [{path, size, type}]}
GET /skills/{name}/contents/{file...}    one file of the folder
```

File paths are taken from the raw request path and decoded once, by `files.Folder`, which refuses
anything leaving the folder (400) and answers 404 for what is not there. Errors are problem+json;
the exposure's `authentication` guards everything but the health probes (exposes/auth.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from naftiko_runtime.errors import InputError, NotFound
from naftiko_runtime.exposes.auth import protect
from naftiko_runtime.exposes.hosts import is_loopback
from naftiko_runtime.exposes.problems import input_problem, problem
from naftiko_runtime.observability import ROUTE_KEY
from naftiko_runtime.plan import SkillApi
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.skills import Catalog

log = logging.getLogger("naftiko.skill")
_CONTENTS = "/contents/"


def _json(value: Any) -> Response:
    return Response(json.dumps(value, ensure_ascii=False).encode(), media_type="application/json")


class SkillEndpoints:
    """The five catalog routes of one exposure."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.listing = json.dumps(catalog.listing, ensure_ascii=False).encode()

    async def index(self, request: Request) -> Response:
        return Response(self.listing, media_type="application/json")

    async def detail(self, request: Request) -> Response:
        return _json(self.catalog.get(request.path_params["name"]).detail)

    async def download(self, request: Request) -> Response:
        name = request.path_params["name"]
        archive = await asyncio.to_thread(self.catalog.get(name).files().zip)
        return Response(archive, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})

    async def contents(self, request: Request) -> Response:
        name = request.path_params["name"]
        entries = await asyncio.to_thread(self.catalog.get(name).files().entries)
        return _json({"name": name, "files": [{"path": e.path, "size": e.size, "type": e.mime} for e in entries]})

    async def file(self, request: Request) -> Response:
        folder = self.catalog.get(request.path_params["name"]).files()
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        relative = raw.split(b"?", 1)[0].decode("latin-1").split(_CONTENTS, 1)[1]  # still percent-encoded
        data, mime = await asyncio.to_thread(folder.read, relative, "file")
        return Response(data, media_type=mime, headers={"X-Content-Type-Options": "nosniff"})


def _guarded(handler, route: str):
    """Catalog errors as problem+json: 404 for what does not exist, 400 for an unsafe path."""

    async def endpoint(request: Request) -> Response:
        request.scope[ROUTE_KEY] = route
        try:
            return await handler(request)
        except NotFound as exc:
            return problem(404, "Not found", exc.message, request.url.path)
        except InputError as exc:
            return input_problem(exc, request.url.path)
        except OSError as exc:
            log.warning("skill %s: %s", request.url.path, exc)
            return problem(500, "Internal error", "the file could not be read; the error is logged", request.url.path)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return problem(405, "Method not allowed", f"{request.method} is not served; the catalog is read-only (GET, HEAD)",
                       request.url.path, headers={"Allow": "GET, HEAD"})
    return problem(exc.status_code, "Not found", f"no route matches {request.url.path}; the catalog is at /skills", request.url.path)


def build_app(runtime: Runtime, api: SkillApi, host: str = "127.0.0.1") -> ASGIApp:
    """The app for one skill exposure: its catalog routes behind the probes, the Host/Origin checks
    of a loopback listener (exposes/hosts.py) and the auth guard."""
    endpoints = SkillEndpoints(api.catalog)
    handlers = {"/skills": endpoints.index, "/skills/{name}": endpoints.detail, "/skills/{name}/download": endpoints.download,
                "/skills/{name}/contents": endpoints.contents, "/skills/{name}/contents/{file:path}": endpoints.file}
    routes = [Route(path, _guarded(handler, path.replace(":path", "")), methods=["GET"]) for path, handler in handlers.items()]
    app = Starlette(routes=routes, exception_handlers={404: _http_error, 405: _http_error})
    return protect(app, api.guard, runtime.lifecycle, loopback_only=is_loopback(host))
