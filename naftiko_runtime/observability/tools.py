"""MCP tool calls observed around `ToolRunner.call_wire`, which both the fast path and the SDK's
handler use, so each call is counted and traced once whichever path answers it. Nothing here
imports the `mcp` SDK: the fast path serves tool calls before the SDK is loaded (exposes/mcp_http.py).
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


def _observed_call(obs: Observability, name: str, call: Any, exposure: str) -> Any:
    metrics, tracing = obs.metrics, obs.tracing
    operation = f"tools/call {name}"
    attributes = {"mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                  "naftiko.exposure": exposure}

    async def call_wire(arguments: Any) -> dict[str, Any]:
        started = time.perf_counter()
        span = token = None
        if tracing is not None:
            parent, record = tracing.current()
            if record:
                span = tracing.tracer.start_span(operation, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)
                token = otel_context.attach(trace.set_span_in_context(span, parent))
            elif parent is not None:
                token = otel_context.attach(parent)
        outcome = "error"
        try:
            result = await call(arguments)
            outcome = "tool_error" if result.get("isError") else "ok"
            return result
        finally:
            if span is not None:
                if outcome != "ok":
                    span.set_attribute("error.type", outcome)
                    span.set_status(trace.StatusCode.ERROR)
                span.end()
            if token is not None:
                otel_context.detach(token)
            if metrics is not None:
                metrics.request("mcp", exposure, operation, outcome, time.perf_counter() - started)

    return call_wire
