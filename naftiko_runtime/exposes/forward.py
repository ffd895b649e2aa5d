"""`forward`: a REST resource that proxies requests to a consumes namespace (SEMANTICS 4.7).

```
caller -> method, path after the route's prefix, query string, body (streamed), trusted headers
       -> ForwardPlan (upstream/request.py): encoded path (no dot segments), the namespace's
          fixed headers and credentials -> Runtime.stream -> the upstream
caller <- status, headers (less hop-by-hop ones), body streamed back
```

Bodies are never held whole: the caller's body goes up as it arrives (with its Content-Length
when it gave one) and the answer comes back chunk by chunk, each under its size cap. What can
still be said with a status is said as problem+json (413, 400, 502/504 naming the upstream);
once the answer has started, a failure can only cut the connection, which is what happens.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator

from starlette.types import Receive, Scope, Send

from naftiko_runtime.errors import InputError, UpstreamFailure
from naftiko_runtime.exposes.problems import input_problem, problem, upstream_problem
from naftiko_runtime.plan import ForwardRoute
from naftiko_runtime.runtime import Runtime

log = logging.getLogger("naftiko.rest")

# Headers of the upstream's answer that describe its connection (or that the server sets itself).
_NOT_RELAYED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer",
                          "trailers", "transfer-encoding", "upgrade", "date", "server"})


class BodyTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


class _Inbound:
    """The caller's body as it arrives, stopped at `limit` bytes."""

    def __init__(self, receive: Receive, limit: int):
        self.receive = receive
        self.limit = limit
        self.failure: Exception | None = None  # why the stream stopped early (the client library may wrap it)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.failure = Disconnected()
                raise self.failure
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                self.failure = BodyTooLarge()
                raise self.failure
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


class ForwardEndpoint:
    """Every method on a `forward` resource that its operations do not serve."""

    def __init__(self, route: ForwardRoute, runtime: Runtime):
        self.plan = route.plan
        self.runtime = runtime
        self.path = route.path  # the route template, for metrics and span names
        self.skip = len([s for s in route.prefix.split("/") if s])  # path segments that are not forwarded
        self.max_body = runtime.plan.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        try:
            await self._forward(scope, receive, send)
        except Disconnected:
            return  # the caller left: nobody to answer
        except InputError as exc:
            await input_problem(exc, path)(scope, receive, send)
        except BodyTooLarge:
            await problem(413, "Request body too large", f"the body is over the {self.max_body:,}-byte limit", path)(scope, receive, send)
        except UpstreamFailure as exc:
            log.warning("%s %s: %s", scope["method"], path, exc.message)
            await upstream_problem(exc, path)(scope, receive, send)
        except Exception as exc:  # the last line of defence: a problem+json, never a traceback
            log.error("internal error on %s %s", scope["method"], path, exc_info=exc)
            await problem(500, "Internal error", "the runtime failed to forward this request; the error is logged", path)(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") or scope["path"].encode()
        segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")[1 + self.skip:]
        if segments == [""]:
            segments = []
        headers = scope["headers"]
        length = next((v for k, v in headers if k == b"content-length"), None)
        chunked = any(k == b"transfer-encoding" for k, _ in headers)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise BodyTooLarge()
        request = self.plan.prepare(scope["method"], segments, scope.get("query_string", b"").decode("latin-1"), headers)
        body = None
        if chunked or (length is not None and length != b"0"):
            body = _Inbound(receive, self.max_body)
            if length is not None:
                request.headers["content-length"] = length.decode("latin-1")
        started = False
        try:
            async with self.runtime.stream(self.plan.namespace, request, body) as answer:
                relayed = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers if k not in _NOT_RELAYED]
                await send({"type": "http.response.start", "status": answer.status, "headers": relayed})
                started = True
                async for chunk in answer.chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except Exception as exc:
            failure = body.failure if body is not None and body.failure is not None else exc
            if not started:
                raise failure from None
            # the status is sent: a failure now can only end the connection, which tells the caller
            log.warning("%s %s: the forwarded answer stopped: %s", scope["method"], scope["path"],
                        failure.message if isinstance(failure, UpstreamFailure) else type(failure).__name__)
