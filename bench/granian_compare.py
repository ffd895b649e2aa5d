"""The same apps under uvicorn and under granian (RSGI and ASGI): issue 16's server evaluation.

One process serves one app on one server, on this process's uvloop loop (granian's embedded
`Server`, one worker, one runtime thread, HTTP/1 only, access log off; uvicorn with `_serve.py`'s
settings, the ones every Python baseline uses):

- `--app noop`: the Session with no I/O (the server's own ceiling; `noop_asgi.py` under uvicorn);
- `--app raw`: `GET /v1/session/{id}` forwarded with one pooled pyreqwest client, nothing else
  (`raw_pyreqwest.py`; under RSGI the same forwarding written against granian's protocol object);
- `--app runtime`: the runtime's own REST app for `capabilities/vapi-sessions.yaml`
  (`exposes/rest.build_app`: probes, Host check, routing, checks, the upstream transport (the built-in
  HTTP/1.1 client for the stub since this session; pyreqwest in the measurements of docs/PERFORMANCE.md),
  masking), built as `naftiko run` builds it but served without `connections.py`'s limits
  protocol (uvicorn's plain httptools protocol; granian has its own). Under `--server
  granian-rsgi` it sits behind `rsgi_adapter`, a thin RSGI -> ASGI shim written for this bench only.

    python bench/granian_compare.py --port 18160 --server granian-rsgi --app raw --upstream http://127.0.0.1:18101
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from _serve import UVICORN_SETTINGS, parser  # bench/ is on sys.path when run as a script
from noop_asgi import BODY, app as noop_asgi
from raw_pyreqwest import NOT_FOUND, PREFIX, build_app as raw_asgi

SEED = Path(__file__).resolve().parent.parent / "capabilities" / "vapi-sessions.yaml"
SERVERS = ("uvicorn", "granian-asgi", "granian-rsgi")
APPS = ("noop", "raw", "runtime")
NOOP_HEADERS = [("content-type", "application/json"), ("content-length", str(len(BODY)))]


async def noop_rsgi(scope: Any, protocol: Any) -> None:
    protocol.response_bytes(200, NOOP_HEADERS, BODY)


def raw_rsgi(upstream: str, api_key: str):
    """`raw_pyreqwest.py`'s forwarding, on granian's RSGI protocol object."""
    from pyreqwest.client import ClientBuilder

    headers = {"Authorization": f"Bearer {api_key}"}
    base = upstream.rstrip("/") + "/session/"
    state: dict[str, Any] = {}
    not_found = [(k.decode(), v.decode()) for k, v in NOT_FOUND]

    async def app(scope: Any, protocol: Any) -> None:
        path = scope.path
        if not path.startswith(PREFIX) or "/" in path[len(PREFIX):]:
            protocol.response_bytes(404, not_found, b"not found")
            return
        client = state.get("client") or state.setdefault("client", ClientBuilder().build())
        resp = await client.get(base + quote(path[len(PREFIX):], safe="")).headers(headers).build().send()
        body = bytes(await resp.bytes())
        protocol.response_bytes(resp.status, [("content-type", resp.headers.get("content-type") or "application/octet-stream"),
                                              ("content-length", str(len(body)))], body)

    return app


def rsgi_adapter(asgi_app: Any):
    """An ASGI app behind granian's RSGI interface (HTTP only, the whole body read at once, the
    answer sent when its last body message arrives): the least an RSGI front of the runtime's ASGI
    app would cost."""

    async def app(scope: Any, protocol: Any) -> None:
        body = await protocol()
        path = scope.path
        query = scope.query_string
        client_host, _, client_port = scope.client.rpartition(":")
        server_host, _, server_port = scope.server.rpartition(":")
        asgi_scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": scope.http_version,
            "method": scope.method, "scheme": scope.scheme, "path": unquote(path), "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"), "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
            "client": (client_host, int(client_port or 0)), "server": (server_host, int(server_port or 0)),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await protocol.client_disconnect()
            return {"type": "http.disconnect"}

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
                protocol.response_bytes(start["status"], headers, b"".join(chunks))

        await asgi_app(asgi_scope, receive, send)

    return app


def runtime_app(upstream: str) -> Any:
    """The runtime's REST ASGI app for the seed, as `naftiko run` builds it (server.Version.build)."""
    from naftiko_runtime.build import build_plan
    from naftiko_runtime.exposes.health import Lifecycle
    from naftiko_runtime.exposes.rest import build_app
    from naftiko_runtime.runtime import Runtime

    plan = build_plan(SEED, base_uris={"sessions-sessions": upstream}, quiet=True)
    assert plan is not None
    runtime = Runtime(plan, Lifecycle(listening=True))
    return build_app(runtime, plan.rest[0], "127.0.0.1")


async def serve(server: str, app: Any, host: str, port: int) -> None:
    gc.freeze()  # as `naftiko run` does once built (server.Server.run)
    if server == "uvicorn":
        import uvicorn

        settings = {k: v for k, v in UVICORN_SETTINGS.items() if k not in ("loop", "workers")}  # this loop: uvloop already
        await uvicorn.Server(uvicorn.Config(app, host=host, port=port, **settings)).serve()
        return
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    interface = Interfaces.RSGI if server == "granian-rsgi" else Interfaces.ASGINL  # ASGI without lifespan, as uvicorn's `lifespan=off`
    await Server(app, address=host, port=port, interface=interface, http=HTTPModes.http1, websockets=False,
                 backlog=UVICORN_SETTINGS["backlog"], log_access=False, runtime_threads=1).serve()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--server", choices=SERVERS, required=True)
    p.add_argument("--app", choices=APPS, required=True)
    p.add_argument("--upstream", help="base URL of the Vapi-compatible upstream (raw, runtime)")
    args = p.parse_args()
    rsgi = args.server == "granian-rsgi"
    api_key = os.environ.get("VAPI_API_KEY", "bench-key")
    if args.app == "noop":
        app = noop_rsgi if rsgi else noop_asgi
    elif args.app == "raw":
        app = raw_rsgi(args.upstream, api_key) if rsgi else raw_asgi(args.upstream, api_key)
    else:
        app = runtime_app(args.upstream)
        app = rsgi_adapter(app) if rsgi else app
    import uvloop

    uvloop.run(serve(args.server, app, args.host, args.port))


if __name__ == "__main__":
    main()
