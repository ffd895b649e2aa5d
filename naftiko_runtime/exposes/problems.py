"""RFC 9457 problem details: every error the runtime itself produces on REST (and `naftiko call`).

A problem is its own small ASGI response (two messages), not a Starlette `Response`: importing
`starlette.responses` (with `starlette.requests`, multipart parsing and `http.cookies`) would cost
every start ~20-50 ms for something this simple (docs/PERFORMANCE.md). The `*_body` functions give
the document itself, which `naftiko call` prints.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope, Send

from naftiko_runtime.errors import InputError, StepFailure, UpstreamFailure

PROBLEM_CT = "application/problem+json"


class Response:
    """A finished answer (problem+json by default) as an ASGI callable: `await response(scope, receive, send)`."""

    def __init__(self, body: bytes, status: int, headers: dict[str, str] | None = None, media_type: str = PROBLEM_CT):
        self.body = body
        self.status = status
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
        self.headers += [(b"content-length", str(len(body)).encode()), (b"content-type", media_type.encode("latin-1"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def problem_body(status: int, title: str, detail: str = "", instance: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False).encode(), body["status"], headers)


def problem(status: int, title: str, detail: str = "", instance: str = "", headers: dict[str, str] | None = None, **extra: Any) -> Response:
    return response(problem_body(status, title, detail, instance, **extra), headers)


def input_problem_body(exc: InputError, instance: str) -> dict[str, Any]:
    detail = "; ".join(f"'{p.name}'{' (' + p.location + ')' if p.location else ''} {p.detail}" for p in exc.problems)
    return problem_body(400, exc.title, detail, instance, errors=[p.as_dict() for p in exc.problems])


def input_problem(exc: InputError, instance: str) -> Response:
    return response(input_problem_body(exc, instance))


def upstream_problem_body(exc: UpstreamFailure, instance: str) -> dict[str, Any]:
    return problem_body(exc.status, exc.title, exc.message, instance, upstream=exc.namespace)


def upstream_problem(exc: UpstreamFailure, instance: str) -> Response:
    return response(upstream_problem_body(exc, instance), {"Retry-After": "1"} if exc.status == 503 else None)


def step_problem_body(exc: StepFailure, instance: str) -> dict[str, Any]:
    """A failed orchestration step: which one, and the upstream's status and answer."""
    extra: dict[str, Any] = {"step": exc.step}
    if exc.upstream:
        extra["upstream"] = exc.upstream
    if exc.upstream_status is not None:
        extra["upstreamStatus"] = exc.upstream_status
    if exc.body:
        text = exc.body_text()
        try:
            extra["upstreamBody"] = json.loads(text)
        except ValueError:
            extra["upstreamBody"] = text
    return problem_body(exc.status, exc.title, exc.message, instance, **extra)


def step_problem(exc: StepFailure, instance: str) -> Response:
    return response(step_problem_body(exc, instance), {"Retry-After": exc.retry_after} if exc.retry_after else None)
