"""Traces with the OpenTelemetry SDK: a provider per process, the OTLP/HTTP exporter, the local
ring buffer the control port's `/traces` reads, and W3C (or B3) propagation.

The provider is installed as OpenTelemetry's global one, so spans the MCP SDK makes join the same
traces. Propagation reads W3C `traceparent`/`tracestate` from every caller (and B3, single or
multi header, when `propagation: b3`), and writes the configured format on every upstream call.
"""

from __future__ import annotations

import os
import random
import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any, Iterable

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from naftiko_runtime import __version__

_W3C = frozenset({b"traceparent", b"tracestate"})
MAX_PENDING_TRACES = 1000  # traces whose local root has not ended yet (bounded: a stuck request cannot grow memory)
MAX_SPANS_PER_TRACE = 256


class _ScopeHeaders(Getter[list]):
    """Reads an ASGI scope's raw header list (lower-case byte names)."""

    def get(self, carrier: list, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier if k == name]
        return values or None

    def keys(self, carrier: list) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


SCOPE_HEADERS = _ScopeHeaders()


def otlp_traces_url(endpoint: str) -> str:
    """`exporters.otlp.endpoint` read as OTEL_EXPORTER_OTLP_ENDPOINT is: a base URL to which the
    traces path is added (a URL already ending with /v1/traces is used as is)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


class TraceBuffer(SpanProcessor):
    """The most recent completed traces, for `/traces`: a trace is complete when its local root
    (a span without a parent, or whose parent came from the caller) ends. Spans are kept as the
    SDK made them and described only when `/traces` is read (the request path only appends)."""

    def __init__(self, size: int):
        self.size = size
        self.traces: deque[tuple[ReadableSpan, list[ReadableSpan]]] = deque(maxlen=size)
        self._pending: dict[int, list[ReadableSpan]] = {}
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None:
            return
        with self._lock:
            spans = self._pending.get(context.trace_id)
            if spans is None:
                if len(self._pending) >= MAX_PENDING_TRACES:
                    self._pending.pop(next(iter(self._pending)))
                spans = self._pending[context.trace_id] = []
            if len(spans) < MAX_SPANS_PER_TRACE:
                spans.append(span)
            if span.parent is None or span.parent.is_remote:
                del self._pending[context.trace_id]
                self.traces.appendleft((span, spans))

    def list(self, operation: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [_summary(root, spans) for root, spans in self.traces]
        return [{k: v for k, v in t.items() if k != "spans"} for t in found
                if (operation is None or operation in t["operation"]) and (status is None or t["status"].lower() == status.lower())]

    def get(self, trace_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((_summary(root, spans) for root, spans in self.traces if f"{root.context.trace_id:032x}" == trace_id.lower()), None)


def _ms(span: ReadableSpan) -> float:
    return round(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 3)


def _summary(root: ReadableSpan, spans: list[ReadableSpan]) -> dict[str, Any]:
    status = "ERROR" if any(s.status.status_code == trace.StatusCode.ERROR for s in spans) else "OK"
    return {
        "traceId": f"{root.context.trace_id:032x}",
        "operation": root.name,
        "durationMs": _ms(root),
        "status": status,
        "spanCount": len(spans),
        "timestamp": datetime.fromtimestamp((root.start_time or 0) / 1e9, timezone.utc).isoformat(timespec="milliseconds"),
        "spans": [{
            "spanId": f"{s.context.span_id:016x}",
            **({"parentSpanId": f"{s.parent.span_id:016x}"} if s.parent is not None else {}),
            "name": s.name,
            "kind": s.kind.name,
            "durationMs": _ms(s),
            "status": s.status.status_code.name,
            "attributes": dict(s.attributes or {}),
        } for s in sorted(spans, key=lambda s: s.start_time or 0)],
    }


class Tracing:
    """The process's tracer, its propagators, and where finished spans go."""

    def __init__(self, *, service: str, sampling: float, propagation: str, endpoint: str | None, buffer_size: int | None):
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service,
                                    "service.version": __version__, "telemetry.sdk.language": "python"})
        # Sampling is decided once per request (`begin`), before any span is made: an unsampled
        # request then makes no span at all (the SDK's sampler would still build each one and
        # drop it, ~15 us a span). Spans that are made are recorded.
        self.rate = sampling
        self.provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_ON))
        self.endpoint = endpoint
        if endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.buffer = TraceBuffer(buffer_size) if buffer_size else None
        if self.buffer is not None:
            self.provider.add_span_processor(self.buffer)
        trace.set_tracer_provider(self.provider)  # the MCP SDK's spans join our traces
        self.tracer = self.provider.get_tracer("naftiko-runtime", __version__)
        w3c = TraceContextTextMapPropagator()
        self.b3 = propagation == "b3"
        if self.b3:
            from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat

            self.extractor: Any = CompositePropagator([w3c, B3SingleFormat(), B3MultiFormat()])
            self.injector: Any = B3SingleFormat()
        else:
            self.extractor = self.injector = w3c
        propagate.set_global_textmap(self.extractor)  # the MCP SDK reads `_meta` trace context with it

    def begin(self, parent: Context | None) -> tuple[Context | None, bool]:
        """The context a request runs in and whether its spans are recorded: a caller's decision
        (the sampled flag of its trace context) is followed; a new trace is sampled at `rate`.
        An unsampled new trace gets a span that records nothing, so upstream calls still carry a
        `traceparent` (with the sampled flag off) and no span of the request is made."""
        if parent is not None:
            context = trace.get_current_span(parent).get_span_context()
            if context.is_valid:
                return parent, bool(context.trace_flags.sampled)
        if self.rate >= 1 or (self.rate > 0 and random.random() < self.rate):
            return parent, True
        ids = RandomIdGenerator()
        unsampled = SpanContext(ids.generate_trace_id(), ids.generate_span_id(), is_remote=False, trace_flags=TraceFlags(0))
        return trace.set_span_in_context(NonRecordingSpan(unsampled)), False

    def current(self) -> tuple[Context | None, bool]:
        """`begin` for code running inside a request: its decision when one was made (nothing to
        attach), else a new one (MCP over stdio, where no HTTP request came first)."""
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return None, bool(context.trace_flags.sampled)
        return self.begin(None)

    def extract_scope(self, headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
        """The caller's trace context, None when it sent none. W3C headers are picked out in one
        pass and parsed by the SDK's propagator (its generic getter scans the headers per key)."""
        if self.b3:
            return self.extractor.extract(list(headers), getter=SCOPE_HEADERS)
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers if name in _W3C}
        return self.extractor.extract(carrier) if "traceparent" in carrier else None

    def inject(self, headers: dict[str, str], span: trace.Span) -> None:
        """The trace headers of an upstream call whose client span is `span`. W3C: `traceparent`
        (and the caller's `tracestate`) written from the span context directly, which measured
        ~8 us less per call than the propagator (it builds a context to read the span back)."""
        if self.b3:
            self.injector.inject(headers, context=trace.set_span_in_context(span))
            return
        context = span.get_span_context()
        headers["traceparent"] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        if context.trace_state:
            headers["tracestate"] = context.trace_state.to_header()

    def shutdown(self) -> None:
        """Export what is buffered (the batch processor flushes on shutdown)."""
        self.provider.shutdown()
