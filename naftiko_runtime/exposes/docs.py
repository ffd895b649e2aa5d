"""`GET /docs` on a REST exposure: an interactive page (Swagger UI) for its `/openapi.json`.

The page and its assets come from the `openapi-ui-bundles` package (Swagger UI 5, which reads
OpenAPI 3.1), installed with the runtime: no CDN, so it works offline and behind firewalls. The
description has no `servers`, so "Try it out" sends requests to the exposure that served the page.
It sits behind the exposure's authentication like `/openapi.json` (the guard wraps the whole app),
and `naftiko run --no-docs` leaves it out. A capability route at `/docs` wins over the page.

The page runs no inline script, so its Content-Security-Policy allows scripts from the exposure
itself only: nothing the OpenAPI document says can make the page load code from elsewhere.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

from naftiko_runtime.exposes.problems import problem

log = logging.getLogger("naftiko.rest")

PATH = "/docs"
_ASSETS = {  # file in the bundle -> content type
    "swagger-ui.css": b"text/css; charset=utf-8",
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "favicon-32x32.png": b"image/png",
}
_INIT = b"""window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayRequestDuration: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API docs</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
_CSP = (b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_cache: dict[str, bytes] = {}  # the bundle's files, read once per process (1.6 MB, shared by every exposure)


def bundle_dir() -> Path | None:
    try:
        from openapi_ui_bundles import swagger_ui
    except ImportError:
        return None
    return Path(swagger_ui.static_path)


class DocsPage:
    """Serves `/docs` and `/docs/<asset>` (GET and HEAD)."""

    def __init__(self, title: str, assets: Path):
        self.assets = assets
        self.files = {"": (_PAGE.format(title=html.escape(title)).encode(), b"text/html; charset=utf-8"),
                      "init.js": (_INIT, b"text/javascript; charset=utf-8")}

    def _file(self, name: str) -> tuple[bytes, bytes] | None:
        if name in self.files:
            return self.files[name]
        if name not in _ASSETS:
            return None
        if name not in _cache:
            _cache[name] = (self.assets / name).read_bytes()
        return _cache[name], _ASSETS[name]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            response = problem(405, "Method not allowed", f"{method} is not served on {scope['path']}; allowed: GET, HEAD",
                               scope["path"], headers={"Allow": "GET, HEAD"})
            return await response(scope, receive, send)
        found = self._file(scope.get("path_params", {}).get("asset", ""))
        if found is None:
            response = problem(404, "Not found", f"no such file {scope['path']}", scope["path"])
            return await response(scope, receive, send)
        body, content_type = found
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                   (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-cache")]
        if content_type.startswith(b"text/html"):
            headers += [(b"content-security-policy", _CSP), (b"referrer-policy", b"no-referrer")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if method == "GET" else b""})


def mount(router: Any, title: str, namespace: str) -> bool:
    """Add the page to a REST exposure's router unless a capability route owns `/docs`."""
    if router.match(PATH) is not None or router.match(PATH + "/swagger-ui.css") is not None:
        log.info("exposure '%s' serves its own %s; the API docs page is not added", namespace, PATH)
        return False
    assets = bundle_dir()
    if assets is None:
        log.warning("exposure '%s': the API docs page needs the openapi-ui-bundles package (pip install openapi-ui-bundles); /docs is not served", namespace)
        return False
    page = DocsPage(title, assets)
    router.add(PATH, page)
    router.add(PATH + "/{asset}", page)
    return True
