"""MCP requests the SDK answers, observed per JSON-RPC message (tool calls: observability/tools.py).

Every method but tools/call goes through the SDK, where a context-tier middleware observes it.
Labels are the method and, for prompts, a declared name (anything else is `unknown`).
"""

from __future__ import annotations

import time
from typing import Any

from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from opentelemetry import context as otel_context
from opentelemetry import trace

from naftiko_runtime.observability import MCP_METHODS, Observability
from naftiko_runtime.observability.tools import end_span, server_span


class McpObserver(ServerMiddleware[Any]):
    """Every SDK-handled message but tools/call: metrics and a server span; for all, the trace
    context a client put in `params._meta` (W3C keys), which wins over the HTTP headers'."""

    def __init__(self, obs: Observability, exposure: str, names: set[str]):
        self.obs = obs
        self.metrics = obs.metrics
        self.tracing = obs.tracing
        self.exposure = exposure
        self.names = names

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = None
        if self.tracing is not None and ctx.meta and "traceparent" in ctx.meta:
            carried = self.tracing.extractor.extract(dict(ctx.meta))
            if trace.get_current_span(carried).get_span_context().is_valid:
                token = otel_context.attach(carried)
        try:
            if ctx.method == "tools/call":
                return await call_next(ctx)
            return await self._observed(ctx, call_next)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _observed(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        method = ctx.method if ctx.method in MCP_METHODS else "other"
        name = ctx.params.get("name") if isinstance(ctx.params, dict) else None
        operation = f"{method} {name}" if method == "prompts/get" and name in self.names else method
        started = time.perf_counter()
        span, token = server_span(self.obs, operation, {"mcp.method.name": method, "naftiko.exposure": self.exposure})
        outcome = "error"
        try:
            result = await call_next(ctx)
            outcome = "ok"
            return result
        except MCPError as exc:
            if span is not None:
                span.set_attribute("rpc.response.status_code", str(exc.error.code))
            raise
        finally:
            end_span(span, token, outcome)
            if self.metrics is not None:
                self.metrics.request("mcp", self.exposure, operation, outcome, time.perf_counter() - started)
