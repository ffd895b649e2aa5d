"""Prometheus metrics with prometheus_client (no hand-written exposition format).

Every label value comes from the capability (exposure namespaces, route templates, tool and
resource names, consumes namespaces and operation names) or from a short fixed list (outcomes),
never from request data: a client cannot create series. A request to no route is `unmatched`,
an unknown tool `unknown`.

| metric | type | labels |
|---|---|---|
| `naftiko_requests_total` | counter | adapter, exposure, operation, outcome |
| `naftiko_request_duration_seconds` | histogram | adapter, exposure, operation, outcome |
| `naftiko_requests_in_flight` | gauge | adapter, exposure |
| `naftiko_upstream_requests_total` | counter | upstream, operation, outcome |
| `naftiko_upstream_request_duration_seconds` | histogram | upstream, operation, outcome |
| `naftiko_upstream_retries_total` | counter | upstream, operation |
| `naftiko_step_duration_seconds` | histogram | step, outcome |
| `naftiko_info` | info | version, capability, spec_version |

plus the process, platform and garbage-collector collectors of prometheus_client.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from naftiko_runtime import __version__
from naftiko_runtime.errors import (
    InputError,
    UpstreamBadResponse,
    UpstreamBusy,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)

# Seconds: a gateway's answers are mostly milliseconds, upstream budgets reach 30 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FAILURES = ((UpstreamTimeout, "timeout"), (UpstreamBusy, "busy"), (UpstreamTooLarge, "too_large"),
             (UpstreamBadResponse, "bad_response"), (UpstreamUnreachable, "unreachable"), (InputError, "refused"))


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def failure_outcome(exc: BaseException) -> str:
    """The outcome label of an upstream call that raised (a fixed list)."""
    return next((name for kind, name in _FAILURES if isinstance(exc, kind)), "error")


class Metrics:
    """One registry per process; children per label set are cached (label values are bounded)."""

    def __init__(self, capability: str, spec_version: str):
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        r = self.registry
        Info("naftiko", "The runtime and the capability it serves", registry=r).info(
            {"version": __version__, "capability": capability, "spec_version": spec_version})
        request_labels = ["adapter", "exposure", "operation", "outcome"]
        self._requests = Counter("naftiko_requests", "Requests answered, by exposure, operation (route, tool...) and outcome "
                                 "(HTTP status class; MCP: ok, tool_error, error)", request_labels, registry=r)
        self._duration = Histogram("naftiko_request_duration_seconds", "Time to answer a request", request_labels, buckets=BUCKETS, registry=r)
        self._in_flight = Gauge("naftiko_requests_in_flight", "HTTP requests being answered", ["adapter", "exposure"], registry=r)
        upstream_labels = ["upstream", "operation", "outcome"]
        self._upstream = Counter("naftiko_upstream_requests", "Upstream calls (retries included in one call), by consumes namespace, "
                                 "operation and outcome (status class, timeout, unreachable, busy, too_large, bad_response)",
                                 upstream_labels, registry=r)
        self._upstream_duration = Histogram("naftiko_upstream_request_duration_seconds", "Time of an upstream call, retries and waits included",
                                            upstream_labels, buckets=BUCKETS, registry=r)
        self._retries = Counter("naftiko_upstream_retries", "Upstream attempts that were retried", ["upstream", "operation"], registry=r)
        self._steps = Histogram("naftiko_step_duration_seconds", "Time of an orchestration step", ["step", "outcome"], buckets=BUCKETS, registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def in_flight(self, adapter: str, exposure: str) -> Any:
        return self._child(self._in_flight, adapter, exposure)

    def request(self, adapter: str, exposure: str, operation: str, outcome: str, seconds: float) -> None:
        self._child(self._requests, adapter, exposure, operation, outcome).inc()
        self._child(self._duration, adapter, exposure, operation, outcome).observe(seconds)

    def upstream(self, upstream: str, operation: str, outcome: str, seconds: float) -> None:
        self._child(self._upstream, upstream, operation, outcome).inc()
        self._child(self._upstream_duration, upstream, operation, outcome).observe(seconds)

    def retry(self, upstream: str, operation: str) -> None:
        self._child(self._retries, upstream, operation).inc()

    def step(self, step: str, outcome: str, seconds: float) -> None:
        self._child(self._steps, step, outcome).observe(seconds)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
