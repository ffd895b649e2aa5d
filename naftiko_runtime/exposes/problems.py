"""RFC 9457 problem details: every error the runtime itself produces on REST."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from naftiko_runtime.errors import InputError, StepFailure, UpstreamFailure

PROBLEM_CT = "application/problem+json"


def problem(status: int, title: str, detail: str = "", instance: str = "", headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(json.dumps(body, ensure_ascii=False).encode(), status, headers=headers, media_type=PROBLEM_CT)


def input_problem(exc: InputError, instance: str) -> Response:
    detail = "; ".join(f"'{p.name}'{' (' + p.location + ')' if p.location else ''} {p.detail}" for p in exc.problems)
    return problem(400, exc.title, detail, instance, errors=[p.as_dict() for p in exc.problems])


def upstream_problem(exc: UpstreamFailure, instance: str) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return problem(exc.status, exc.title, exc.message, instance, headers=headers, upstream=exc.namespace)


def step_problem(exc: StepFailure, instance: str) -> Response:
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
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
    return problem(exc.status, exc.title, exc.message, instance, headers=headers, **extra)
