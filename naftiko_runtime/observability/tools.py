"""MCP tool calls observed around `ToolRunner.call_wire`, which both the fast path and the SDK's
handler use, so each call is counted and traced once whichever path answers it; and the fast
path's own tools/list answers. Nothing here imports the `mcp` SDK: the fast path serves tool calls
before the SDK is loaded (exposes/mcp_http.py).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from naftiko_runtime.observability import Observability


def observe_tools(obs: Observability, tools: Any, exposure: str) -> None:
    """Wrap each tool runner's `call_wire` (once per Toolset)."""
    if getattr(tools, "observed", False):
        return
    tools.observed = True
    for runner in tools.runners.values():
        runner.call_wire = _observed_call(obs, runner.name, runner.call_wire, exposure)


def observe_listing(obs: Observability, fast: Any, exposure: str) -> None:
    """Count (and trace) the tools/list answers the fast path serves from its learned copy, as the
    SDK-served ones are (observability/mcp.py): `tools/list`, outcome `ok`."""
    send_listing, metrics = fast.send_listing, obs.metrics
    attributes = {"mcp.method.name": "tools/list", "naftiko.exposure": exposure}

    async def observed(send: Any, request_id: Any, listing: bytes) -> None:
        started = time.perf_counter()
        span, token = server_span(obs, "tools/list", attributes)
        try:
            await send_listing(send, request_id, listing)
        finally:
            end_span(span, token, "ok")
            if metrics is not None:
                metrics.request("mcp", exposure, "tools/list", "ok", time.perf_counter() - started)

    fast.send_listing = observed


def server_span(obs: Observability, operation: str, attributes: dict[str, Any]) -> tuple[Any, Any]:
    """The server span of one MCP request (when its trace is sampled) made current, and the token
    to detach it; an unsampled request only gets its trace context attached."""
    tracing = obs.tracing
    if tracing is None:
        return None, None
    parent, record = tracing.current()
    if record:
        span = tracing.tracer.start_span(operation, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)
        return span, otel_context.attach(trace.set_span_in_context(span, parent))
    return None, otel_context.attach(parent) if parent is not None else None


def end_span(span: Any, token: Any, outcome: str) -> None:
    if span is not None:
        if outcome != "ok":
            span.set_attribute("error.type", outcome)
            span.set_status(trace.StatusCode.ERROR)
        span.end()
    if token is not None:
        otel_context.detach(token)


def _observed_call(obs: Observability, name: str, call: Any, exposure: str) -> Any:
    metrics = obs.metrics
    operation = f"tools/call {name}"
    attributes = {"mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                  "naftiko.exposure": exposure}

    async def call_wire(arguments: Any) -> dict[str, Any]:
        started = time.perf_counter()
        span, token = server_span(obs, operation, attributes)
        outcome = "error"
        try:
            result = await call(arguments)
            outcome = "tool_error" if result.get("isError") else "ok"
            return result
        finally:
            end_span(span, token, outcome)
            if metrics is not None:
                metrics.request("mcp", exposure, operation, outcome, time.perf_counter() - started)

    return call_wire
