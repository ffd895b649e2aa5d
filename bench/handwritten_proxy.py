"""The best one-route proxy a user would write by hand: Starlette + one pooled aiohttp session.

`GET /v1/session/{id}` -> upstream `GET /session/{id}` with `Authorization: Bearer $VAPI_API_KEY`,
answering the upstream status, content type and bytes untouched. No validation, no shaping, no
error mapping: the floor the runtime is measured against (issue 5: >= 1.0x its req/s at c=32).

`GET /v1/session/{id}/summary` is the orchestration a user would write by hand (issue 9): upstream
`GET /session/{id}`, then `GET /session`, one after the other as such a handler is usually
written; the session's entry is looked up in the list by id and the answer joins both, as
bench/orchestration.yaml does. An upstream error is passed on, nothing more.

    python bench/handwritten_proxy.py --port 18110 --upstream http://127.0.0.1:18101
"""

from __future__ import annotations

import contextlib
import json
import os
from urllib.parse import quote

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from yarl import URL

from _serve import parser, serve  # bench/ is on sys.path when run as a script


def build_app(upstream: str, api_key: str) -> Starlette:
    state: dict[str, aiohttp.ClientSession] = {}
    headers = {"Authorization": f"Bearer {api_key}"}
    base = upstream.rstrip("/")

    async def find_one(request: Request) -> Response:
        url = URL(f"{base}/session/{quote(request.path_params['id'], safe='')}", encoded=True)
        async with state["session"].get(url, headers=headers) as resp:
            body = await resp.read()
            return Response(body, resp.status, media_type=resp.headers.get("Content-Type"))

    async def summary(request: Request) -> Response:
        session = state["session"]
        async with session.get(URL(f"{base}/session/{quote(request.path_params['id'], safe='')}", encoded=True), headers=headers) as resp:
            if resp.status >= 400:
                return Response(await resp.read(), resp.status, media_type=resp.headers.get("Content-Type"))
            one = json.loads(await resp.read())
        async with session.get(URL(f"{base}/session", encoded=True), headers=headers) as resp:
            if resp.status >= 400:
                return Response(await resp.read(), resp.status, media_type=resp.headers.get("Content-Type"))
            listing = json.loads(await resp.read())["results"]
        entry = next((s for s in listing if isinstance(s, dict) and str(s.get("id")) == str(one.get("id"))), None)
        result = {"id": one.get("id"), "name": one.get("name"), "cost": one.get("cost")}
        if entry is not None:
            result["listed"] = {"status": entry.get("status"), "assistant": entry.get("assistantId")}
        return Response(json.dumps(result, separators=(",", ":")), 200, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
            state["session"] = session
            yield

    return Starlette(routes=[Route("/v1/session/{id}", find_one, methods=["GET"]),
                             Route("/v1/session/{id}/summary", summary, methods=["GET"])], lifespan=lifespan)


def factory() -> Starlette:
    """For `uvicorn --factory handwritten_proxy:factory --workers N` (bench/ops.py): settings from
    the environment, as uvicorn's workers cannot be given arguments."""
    return build_app(os.environ["BENCH_UPSTREAM"], os.environ.get("VAPI_API_KEY", "bench-key"))


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="base URL of the Vapi-compatible upstream")
    args = p.parse_args()
    serve(build_app(args.upstream, os.environ.get("VAPI_API_KEY", "bench-key")), args.host, args.port)


if __name__ == "__main__":
    main()
