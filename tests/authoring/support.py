"""Helpers for the authoring tests: import an OpenAPI file, compile what it wrote, call it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from naftiko_runtime import call
from naftiko_runtime.authoring.capability_yaml import dump
from naftiko_runtime.authoring.openapi_import import ImportOptions, ImportResult, import_openapi
from naftiko_runtime.build import build_plan
from naftiko_runtime.pipeline import Outcome
from naftiko_runtime.plan import Plan

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "tests" / "fixtures" / "openapi"
VAPI_OPENAPI = REPO / "tests" / "fixtures" / "vapi-sessions-openapi.yml"  # the full description (780 KB, deep $refs)


def imported(spec: Path, tmp_path: Path, **options: Any) -> tuple[Path, ImportResult]:
    """Import `spec`, write the capability into tmp_path; returns (capability file, result)."""
    result = import_openapi(spec, ImportOptions(**options))
    out = tmp_path / f"{spec.stem}.capability.yaml"
    out.write_text(dump(result.document, result.header), encoding="utf-8")
    return out, result


def plan_of(capability: Path, base_uri: str | None = None, mock: bool = False) -> Plan:
    """Compiled as `naftiko run` would (its consumes namespace sent to `base_uri` when given)."""
    from naftiko_runtime.capability.load import load_capability

    cap = load_capability(capability)
    assert cap is not None
    uris = {ns: base_uri for ns in cap.consumes} if base_uri else None
    return build_plan(capability, mock=mock, base_uris=uris)


def invoke(plan: Plan, name: str, values: dict[str, Any]) -> Outcome:
    invocation = call.find(plan, name)
    return asyncio.run(call.invoke(plan, invocation, values))


def tool_schema(plan: Plan, name: str) -> dict[str, Any]:
    return next(t.invocation.input_schema for api in plan.mcp for t in api.tools if t.tool.name == name)
