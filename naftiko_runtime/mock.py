"""`--mock`: an in-process, stateful fake of every upstream, inferred from the capability alone.

So the Quickstart runs with no API key and no network. Collections are keyed by the request path:
POST on a collection creates (201), GET lists, and GET/PATCH/PUT/DELETE on `collection/{id}` read,
merge, replace and remove (404 when unknown). Query parameters that match stored fields filter lists.

Bounded like a real upstream: a collection keeps `--mock-max-items` items (the oldest is dropped
past it), a list answers the newest `--mock-list-limit` first, and an answer over `--max-response`
is the same 502 a real upstream's would be.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, AsyncIterable, AsyncIterator
from urllib.parse import parse_qsl, unquote, urlsplit

from naftiko_runtime.errors import UpstreamTooLarge
from naftiko_runtime.settings import Settings, size_text
from naftiko_runtime.upstream.client import Response, Streamed
from naftiko_runtime.upstream.request import Prepared

JSON_CT = "application/json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(status: int, data: Any) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode(), JSON_CT)


def _not_found(path: str) -> Response:
    return _json(404, {"statusCode": 404, "message": f"{path} not found (mock upstream)", "error": "Not Found"})


class MockTransport:
    """One store shared by every consumes namespace in mock mode."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}  # insertion order: oldest first

    @contextlib.asynccontextmanager
    async def stream(self, request: Prepared, body: AsyncIterable[bytes] | None) -> AsyncIterator[Streamed]:
        """`forward` in mock mode: the body is read whole (it is stored anyway), the answer is one chunk."""
        raw = b"".join([chunk async for chunk in body]) if body is not None else None
        answer = await self.send(replace(request, body=raw))

        async def chunks() -> AsyncIterator[bytes]:
            yield answer.body

        yield Streamed(answer.status, [("content-type", answer.content_type or JSON_CT)], chunks())

    async def send(self, request: Prepared) -> Response:
        parts = urlsplit(request.url)
        path = parts.path or "/"
        body = self._body(request.body)
        if request.item:
            collection, _, item_id = path.rpartition("/")
            response = self._item(request.method, collection or "/", unquote(item_id), body, path)
        else:
            response = self._collection(request.method, path, body, parse_qsl(parts.query))
        limit = self.settings.max_response_bytes
        if len(response.body) > limit:
            raise UpstreamTooLarge("mock", f"{len(response.body):,} bytes, over the {size_text(limit)} limit")
        return response

    def _store(self, store: dict[str, dict[str, Any]], obj: dict[str, Any]) -> None:
        store.pop(obj["id"], None)  # a re-created item becomes the newest
        store[obj["id"]] = obj
        while len(store) > self.settings.mock_max_items:
            del store[next(iter(store))]

    @staticmethod
    def _body(raw: bytes | None) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    def _collection(self, method: str, path: str, body: Any, query: list[tuple[str, str]]) -> Response:
        store = self.collections.setdefault(path, {})
        if method == "POST":
            now = _now()
            obj = {**(body if isinstance(body, dict) else {"value": body} if body is not None else {}), "id": str(uuid.uuid4()), "createdAt": now, "updatedAt": now}
            self._store(store, obj)
            return _json(201, obj)
        if method in ("GET", "HEAD"):
            items = list(reversed(store.values()))  # newest first
            for key, value in query:
                if items and any(key in item for item in items):
                    items = [item for item in items if str(item.get(key)) == value]
            return _json(200, items[: self.settings.mock_list_limit])
        if method == "DELETE":
            removed = list(store.values())
            store.clear()
            return _json(200, removed)
        return _json(405, {"statusCode": 405, "message": f"{method} is not supported on a collection (mock upstream)"})

    def _item(self, method: str, collection: str, item_id: str, body: Any, path: str) -> Response:
        store = self.collections.setdefault(collection, {})
        current = store.get(item_id)
        if method == "POST":
            now = _now()
            obj = {**(body if isinstance(body, dict) else {}), "id": item_id, "createdAt": now, "updatedAt": now}
            self._store(store, obj)
            return _json(201, obj)
        if current is None:
            return _not_found(path)
        if method in ("GET", "HEAD"):
            return _json(200, current)
        if method == "DELETE":
            return _json(200, store.pop(item_id))
        if method in ("PATCH", "PUT"):
            patch = body if isinstance(body, dict) else {}
            base = current if method == "PATCH" else {"id": item_id, "createdAt": current.get("createdAt")}
            updated = {**base, **patch, "id": item_id, "updatedAt": _now()}
            store[item_id] = updated
            return _json(200, updated)
        return _json(405, {"statusCode": 405, "message": f"{method} is not supported (mock upstream)"})

    async def close(self) -> None:
        return None
