"""RFC 9457 problem details: every error the runtime itself produces on REST."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from naftiko_runtime.errors import InputError, UpstreamFailure

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
