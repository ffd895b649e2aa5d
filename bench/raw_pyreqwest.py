"""The floor of the runtime's own stack: a raw ASGI app under uvicorn with one pooled pyreqwest client.

`GET /v1/session/{id}` -> upstream `GET /session/{id}` with `Authorization: Bearer $VAPI_API_KEY`,
answering the upstream status, content type and bytes. No routing table, no checks, no limits,
no masking, no timeouts beyond the client's defaults: what uvicorn + pyreqwest cost by themselves
(issue 16's "raw ASGI + pyreqwest" row), so the runtime's CPU per request can be read against the
least any proxy on the same server and client can spend.

    python bench/raw_pyreqwest.py --port 18150 --upstream http://127.0.0.1:18101 [--client h1]

`--client h1`: the runtime's built-in HTTP/1.1 client (naftiko_runtime/upstream/h1.py) in place
of pyreqwest, the same way (the "raw ASGI + h1" row: the floor of the stack the runtime uses for a
plain-text upstream).
"""

from __future__ import annotations

import os
from urllib.parse import quote

from pyreqwest.client import ClientBuilder

from _serve import parser, serve  # bench/ is on sys.path when run as a script

PREFIX = "/v1/session/"
NOT_FOUND = [(b"content-type", b"text/plain"), (b"content-length", b"9")]


def build_app(upstream: str, api_key: str, client: str = "pyreqwest"):
    headers = {"Authorization": f"Bearer {api_key}"}
    fetch = _h1_fetch(upstream, headers) if client == "h1" else _pyreqwest_fetch(upstream, headers)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = scope["path"]
        if not path.startswith(PREFIX) or "/" in path[len(PREFIX):]:
            await send({"type": "http.response.start", "status": 404, "headers": NOT_FOUND})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        status, content_type, body = await fetch("/session/" + quote(path[len(PREFIX):], safe=""))
        answer = [(b"content-type", (content_type or "application/octet-stream").encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": body})

    return app


def _pyreqwest_fetch(upstream: str, headers: dict[str, str]):
    base = upstream.rstrip("/")
    state = {}

    async def fetch(target: str) -> tuple[int, str | None, bytes]:
        client = state.get("client") or state.setdefault("client", ClientBuilder().build())  # inside the running loop
        resp = await client.get(base + target).headers(headers).build().send()
        return resp.status, resp.headers.get("content-type"), bytes(await resp.bytes())

    return fetch


def _h1_fetch(upstream: str, headers: dict[str, str]):
    from urllib.parse import urlsplit

    from naftiko_runtime.upstream.h1 import Pool

    parts = urlsplit(upstream)
    pool = Pool(parts.hostname, parts.port or 80, 100, 10.0, 30.0, {})

    async def fetch(target: str) -> tuple[int, str | None, bytes]:
        async with pool.exchange("GET", target, headers, None, 30.0) as resp:
            return resp.status, resp.headers.get("content-type"), await resp.bytes()

    return fetch


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="base URL of the Vapi-compatible upstream")
    p.add_argument("--client", choices=("pyreqwest", "h1"), default="pyreqwest", help="the upstream client")
    args = p.parse_args()
    serve(build_app(args.upstream, os.environ.get("VAPI_API_KEY", "bench-key"), args.client), args.host, args.port)
