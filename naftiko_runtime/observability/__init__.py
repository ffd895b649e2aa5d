"""Metrics and traces of one process, hooked in without touching compiled plans.

- per request: `wrap_app` puts an ASGI middleware around an adapter's app (REST routes and skill
  routes are counted there; MCP requests per JSON-RPC call, by `observe_mcp`);
- per upstream call: `wrap_send` wraps `Runtime.send`, `wrap_stream` wraps `Runtime.stream`
  (`forward`): metrics, a client span, the trace headers;
- per orchestration step: `wrap_step` wraps `Runtime.step`.

`for_plan` returns None when the capability asks for nothing (no control exposure with
observability, no OTLP endpoint): then nothing is wrapped and the hot path pays nothing. The
heavy imports (prometheus_client, the OpenTelemetry SDK) happen only when something is on.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, AsyncContextManager, AsyncIterator, Awaitable, Callable

from naftiko_runtime.capability.model import HTTP_METHODS
from naftiko_runtime.errors import UpstreamFailure

if TYPE_CHECKING:
    from naftiko_runtime.observability.metrics import Metrics
    from naftiko_runtime.observability.series import WorkerSeries
    from naftiko_runtime.observability.tracing import Tracing
    from naftiko_runtime.plan import Plan
    from naftiko_runtime.upstream.client import Response, Streamed
    from naftiko_runtime.upstream.request import Prepared

ROUTE_KEY = "naftiko.route"  # set in the ASGI scope by the REST and skill apps: the matched route template
UNMATCHED = "unmatched"
MCP_METHODS = frozenset({
    "initialize", "ping", "server/discover", "tools/list", "tools/call", "resources/list", "resources/templates/list",
    "resources/read", "prompts/list", "prompts/get", "completion/complete", "notifications/initialized",
})
_PROBES = frozenset({"/healthz", "/readyz"})


def otlp_endpoint(plan: "Plan") -> str | None:
    """Where spans are exported: the control exposure's `exporters.otlp.endpoint`, else the
    standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full URL) or OTEL_EXPORTER_OTLP_ENDPOINT (a base)."""
    from naftiko_runtime.observability.tracing import otlp_traces_url

    if plan.control is not None and plan.control.otlp_endpoint:
        return otlp_traces_url(plan.control.otlp_endpoint)
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return otlp_traces_url(base) if base else None


class Observability:
    """What this process records; `metrics` and `tracing` are each None when off."""

    def __init__(self, metrics: "Metrics | None", tracing: "Tracing | None"):
        self.metrics = metrics
        self.tracing = tracing

    @staticmethod
    def wants_metrics(plans: list["Plan"]) -> bool:
        """Whether the process serves /metrics (the workers' supervisor then shares a page for them)."""
        plan = next((p for p in plans if p.control is not None), None)
        config = plan.control.exposure.observability if plan is not None and plan.control is not None else None
        return config is not None and config.enabled and config.metrics

    @classmethod
    def for_plans(cls, plans: list["Plan"], workers: "WorkerSeries | None" = None) -> "Observability | None":
        """What the process observes: the control exposure (the first file's that has one) and the
        OTLP endpoint decide; None when nothing asks for metrics or traces. `workers`: this
        worker's view of the series every worker shares (--workers)."""
        plan = next((p for p in plans if p.control is not None), plans[0])
        config = plan.control.exposure.observability if plan.control is not None else None
        if config is not None and not config.enabled:
            return None
        endpoint = otlp_endpoint(plan) if config is not None or any(
            os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) else None
        want_metrics = cls.wants_metrics(plans)
        want_traces = endpoint is not None or (config is not None and config.traces)
        if not want_metrics and not want_traces:
            return None
        metrics = tracing = None
        service = plan.cap.label or os.path.splitext(os.path.basename(plan.cap.file))[0]
        if want_metrics:
            from naftiko_runtime.observability.metrics import Metrics

            metrics = Metrics(service, plan.cap.version, workers)
        if want_traces:
            from naftiko_runtime.observability.tracing import Tracing

            tracing = Tracing(service=service, sampling=config.sampling if config else 1.0,
                              propagation=config.propagation if config else "w3c", endpoint=endpoint,
                              buffer_size=config.buffer_size if config is not None and config.traces else None)
        return cls(metrics, tracing)

    # ------------------------------------------------------------------ adapters

    def wrap_app(self, app: Any, adapter: str, exposure: str) -> Any:
        """An adapter's ASGI app with per-request metrics and a server span (MCP: context only)."""
        return ObservedApp(app, self, adapter, exposure)

    def observe_tools(self, tools: Any, exposure: str) -> None:
        """Tool calls, whichever path answers them (the fast path, or the SDK once loaded)."""
        from naftiko_runtime.observability.tools import observe_tools

        observe_tools(self, tools, exposure)

    def observe_fast_path(self, fast: Any, exposure: str) -> None:
        """What the MCP fast path answers itself: tool calls, and tools/list from its learned copy."""
        from naftiko_runtime.observability.tools import observe_listing

        self.observe_tools(fast.tools, exposure)
        observe_listing(self, fast, exposure)

    def observe_mcp(self, server: Any, tools: Any, prompts: list[str], exposure: str) -> None:
        """Tool calls and every other MCP request the SDK answers, per JSON-RPC call."""
        from naftiko_runtime.observability.mcp import McpObserver

        self.observe_tools(tools, exposure)
        if self.tracing is not None:  # ours replaces the SDK's span (one server span per call)
            server.middleware = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
        server.middleware.append(McpObserver(self, exposure, set(prompts)))

    # ------------------------------------------------------------------ upstream calls and steps

    def wrap_send(self, send: Callable[[str, "Prepared"], Awaitable["Response"]]) -> Callable[[str, "Prepared"], Awaitable["Response"]]:
        if self.tracing is None and self.metrics is not None:
            return _counted(send, self.metrics)
        calls = _UpstreamCalls(self)

        async def observed(namespace: str, request: "Prepared") -> "Response":
            started = time.perf_counter()
            span = calls.begin(namespace, request)
            try:
                response = await send(namespace, request)
            except BaseException as exc:
                outcome = calls.failed(span, exc)
                raise
            else:
                outcome = calls.answered(span, response.status)
                return response
            finally:
                calls.end(span, namespace, request, outcome, started)

        return observed

    def wrap_stream(self, stream: Callable[[str, "Prepared", Any], AsyncContextManager["Streamed"]]
                    ) -> Callable[[str, "Prepared", Any], AsyncContextManager["Streamed"]]:
        """`forward` (Runtime.stream) observed like a call: counted per upstream when its answer
        ends (the duration covers the body streamed back), a client span, the trace headers."""
        calls = _UpstreamCalls(self)

        @contextlib.asynccontextmanager
        async def observed(namespace: str, request: "Prepared", body: Any) -> AsyncIterator["Streamed"]:
            started = time.perf_counter()
            span = calls.begin(namespace, request)
            outcome = None
            try:
                async with stream(namespace, request, body) as streamed:
                    outcome = calls.answered(span, streamed.status)
                    yield streamed
            except BaseException as exc:
                if outcome is None or isinstance(exc, UpstreamFailure):  # no answer, or one cut short (too large...)
                    outcome = calls.failed(span, exc)
                raise
            finally:
                calls.end(span, namespace, request, outcome or "error", started)

        return observed

    def on_retry(self, namespace: str, request: "Prepared") -> None:
        if self.metrics is not None:
            self.metrics.retry(namespace, request.operation)

    def wrap_step(self, step: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
        metrics, tracing = self.metrics, self.tracing

        async def observed(stage: Any, run: Any) -> None:
            started = time.perf_counter()
            outcome = "ok"
            span = tracing.tracer.start_span(f"step {stage.name}", attributes={"naftiko.step": stage.name}) \
                if tracing is not None and tracing.current()[1] else None
            token = _attach(span) if span is not None else None
            try:
                await step(stage, run)
            except BaseException as exc:
                outcome = "error"
                if span is not None:
                    from opentelemetry.trace import StatusCode

                    span.set_status(StatusCode.ERROR, getattr(exc, "message", type(exc).__name__))
                raise
            finally:
                if span is not None:
                    _detach(token)
                    span.end()
                if metrics is not None:
                    metrics.step(stage.name, outcome, time.perf_counter() - started)

        return observed

    def shutdown(self) -> None:
        if self.tracing is not None:
            self.tracing.shutdown()


def _counted(send: Callable[[str, "Prepared"], Awaitable["Response"]], metrics: Any) -> Callable[[str, "Prepared"], Awaitable["Response"]]:
    """`wrap_send` with metrics alone: the call timed and counted, nothing else (every call saved
    here is a few microseconds of each request: bench/instructions.py --metrics)."""
    from naftiko_runtime.observability.metrics import STATUS_CLASSES, failure_outcome

    observe = metrics.upstreams.observe

    async def counted(namespace: str, request: "Prepared") -> "Response":
        started = time.perf_counter()
        try:
            response = await send(namespace, request)
        except BaseException as exc:
            observe((namespace, request.operation, failure_outcome(exc)), time.perf_counter() - started)
            raise
        observe((namespace, request.operation, STATUS_CLASSES[response.status]), time.perf_counter() - started)
        return response

    return counted


class _UpstreamCalls:
    """What observing one upstream call does (`wrap_send`, `wrap_stream`): a client span (when the
    request is sampled) whose trace headers go upstream, and the call's metrics."""

    def __init__(self, obs: Observability):
        from naftiko_runtime.observability.metrics import failure_outcome, status_class

        self.metrics, self.tracing = obs.metrics, obs.tracing
        self.failure_outcome, self.status_class = failure_outcome, status_class
        if self.tracing is not None:
            from opentelemetry import trace

            self.client, self.error = trace.SpanKind.CLIENT, trace.StatusCode.ERROR
            self.get_span = trace.get_current_span

    def begin(self, namespace: str, request: "Prepared") -> Any:
        tracing = self.tracing
        if tracing is None:
            return None
        current = self.get_span()
        span = None
        if current.get_span_context().trace_flags.sampled or not current.get_span_context().is_valid:
            span = tracing.tracer.start_span(f"{request.method} {namespace}.{request.operation}", kind=self.client,
                                             attributes={"http.request.method": request.method, "naftiko.upstream": namespace,
                                                         "naftiko.operation": request.operation})
        tracing.inject(request.headers, span or current)  # unsampled: the decision travels on
        return span

    def answered(self, span: Any, status: int) -> str:
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(self.error)
        return self.status_class(status)

    def failed(self, span: Any, exc: BaseException) -> str:
        outcome = self.failure_outcome(exc)
        if span is not None:
            span.set_attribute("error.type", outcome)
            span.set_status(self.error, getattr(exc, "message", type(exc).__name__))
        return outcome

    def end(self, span: Any, namespace: str, request: "Prepared", outcome: str, started: float) -> None:
        if span is not None:
            span.end()
        if self.metrics is not None:
            self.metrics.upstream(namespace, request.operation, outcome, time.perf_counter() - started)


def _attach(span: Any) -> Any:
    from opentelemetry import context, trace

    return context.attach(trace.set_span_in_context(span))


def _detach(token: Any) -> None:
    from opentelemetry import context

    context.detach(token)


class ObservedApp:
    """Pure ASGI middleware around one adapter: in-flight gauge, request metrics by route template
    (REST, skill), the caller's trace context and a server span (REST, skill; MCP gets the context
    and its calls are observed per JSON-RPC message)."""

    def __init__(self, app: Any, obs: Observability, adapter: str, exposure: str):
        self.app = app
        self.adapter = adapter
        self.exposure = exposure
        self.metrics = obs.metrics
        self.tracing = obs.tracing
        self.counts = adapter != "mcp"
        self.in_flight = obs.metrics.in_flight(adapter, exposure) if obs.metrics is not None else None
        if obs.metrics is not None:
            from naftiko_runtime.observability.metrics import STATUS_CLASSES

            self.classes = STATUS_CLASSES
            self.observe = obs.metrics.requests.observe
        if obs.tracing is not None:
            from opentelemetry import context, trace

            self.context, self.trace = context, trace

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in _PROBES:
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500
        span = token = None
        if self.tracing is not None:
            trace = self.trace
            parent, record = self.tracing.begin(self.tracing.extract_scope(scope["headers"]))
            if self.counts and record:
                span = self.tracing.tracer.start_span(scope["method"], context=parent, kind=trace.SpanKind.SERVER, attributes={
                    "http.request.method": scope["method"], "naftiko.exposure": self.exposure})
                token = self.context.attach(trace.set_span_in_context(span, parent))
            elif parent is not None:
                token = self.context.attach(parent)

        def sending(message: dict[str, Any]) -> Awaitable[None]:  # the server's own awaitable: no coroutine of its own
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        if self.in_flight is not None:
            self.in_flight[0] += 1
        try:
            await self.app(scope, receive, sending)
        finally:
            if self.in_flight is not None:
                self.in_flight[0] -= 1
            if self.counts:
                route = scope.get(ROUTE_KEY)
                method = scope["method"] if scope["method"] in HTTP_METHODS else "OTHER"
                operation = f"{method} {route}" if route else UNMATCHED
                if self.metrics is not None:
                    self.observe((self.adapter, self.exposure, operation, self.classes[status]), time.perf_counter() - started)
                if span is not None:
                    if route:
                        span.update_name(operation)
                        span.set_attributes({"http.route": route, "http.response.status_code": status})
                    else:
                        span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(self.trace.StatusCode.ERROR)
                    span.end()
            if token is not None:
                self.context.detach(token)
