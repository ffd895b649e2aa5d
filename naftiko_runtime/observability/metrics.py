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

Observations are plain counts in dictionaries (one lookup, a bisect and two additions per
request, on the event loop that serves it), turned into prometheus_client metric families when
scraped: the exposition is prometheus_client's. Its own Counter/Histogram objects take a lock per
increment (three per histogram observation); measured on this machine (docs/observability.md),
recording a request and its upstream call cost ~13 us with them and ~2 us this way.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, GCCollector, Info, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

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
_LE = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]
_FAILURES = ((UpstreamTimeout, "timeout"), (UpstreamBusy, "busy"), (UpstreamTooLarge, "too_large"),
             (UpstreamBadResponse, "bad_response"), (UpstreamUnreachable, "unreachable"), (InputError, "refused"))
REQUEST_LABELS = ("adapter", "exposure", "operation", "outcome")
UPSTREAM_LABELS = ("upstream", "operation", "outcome")


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def failure_outcome(exc: BaseException) -> str:
    """The outcome label of an upstream call that raised (a fixed list)."""
    return next((name for kind, name in _FAILURES if isinstance(exc, kind)), "error")


class Histogram:
    """Observations by label values: per label set, a count per bucket (the last: above every
    bound) and the sum. Its count is also the matching `_total` counter."""

    __slots__ = ("series",)

    def __init__(self) -> None:
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        cells = self.series.get(labels)
        if cells is None:
            cells = self.series[labels] = [0.0] * (len(BUCKETS) + 2)
        cells[bisect_left(BUCKETS, seconds)] += 1
        cells[-1] += seconds

    def families(self, name: str, counter: str | None, documentation: str, counter_doc: str, labels: tuple[str, ...]) -> Iterator[Metric]:
        histogram = HistogramMetricFamily(name, documentation, labels=labels)
        total = CounterMetricFamily(counter, counter_doc, labels=labels) if counter else None
        for key, cells in list(self.series.items()):
            cumulative = list(accumulate(cells[:-1]))
            histogram.add_metric(list(key), buckets=list(zip(_LE, cumulative)), sum_value=cells[-1])
            if total is not None:
                total.add_metric(list(key), cumulative[-1])
        if total is not None:
            yield total
        yield histogram


class Metrics:
    """The process's observations and the registry `/metrics` exposes."""

    def __init__(self, capability: str, spec_version: str):
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        Info("naftiko", "The runtime and the capability it serves", registry=self.registry).info(
            {"version": __version__, "capability": capability, "spec_version": spec_version})
        self.requests = Histogram()
        self.upstreams = Histogram()
        self.steps = Histogram()
        self.retries: dict[tuple[str, str], int] = {}
        self.gauges: dict[tuple[str, str], list[int]] = {}
        self.registry.register(self)  # a collector: `collect` below

    def in_flight(self, adapter: str, exposure: str) -> list[int]:
        """The in-flight cell of one adapter (`cell[0] += 1` / `-= 1`)."""
        return self.gauges.setdefault((adapter, exposure), [0])

    def request(self, adapter: str, exposure: str, operation: str, outcome: str, seconds: float) -> None:
        self.requests.observe((adapter, exposure, operation, outcome), seconds)

    def upstream(self, upstream: str, operation: str, outcome: str, seconds: float) -> None:
        self.upstreams.observe((upstream, operation, outcome), seconds)

    def retry(self, upstream: str, operation: str) -> None:
        key = (upstream, operation)
        self.retries[key] = self.retries.get(key, 0) + 1

    def step(self, step: str, outcome: str, seconds: float) -> None:
        self.steps.observe((step, outcome), seconds)

    def collect(self) -> Iterator[Metric]:
        yield from self.requests.families(
            "naftiko_request_duration_seconds", "naftiko_requests", "Time to answer a request",
            "Requests answered, by exposure, operation (route, tool...) and outcome (HTTP status class; MCP: ok, tool_error, error)",
            REQUEST_LABELS)
        gauge = GaugeMetricFamily("naftiko_requests_in_flight", "HTTP requests being answered", labels=("adapter", "exposure"))
        for key, cell in list(self.gauges.items()):
            gauge.add_metric(list(key), cell[0])
        yield gauge
        yield from self.upstreams.families(
            "naftiko_upstream_request_duration_seconds", "naftiko_upstream_requests", "Time of an upstream call, retries and waits included",
            "Upstream calls (retries included in one call), by consumes namespace, operation and outcome "
            "(status class, timeout, unreachable, busy, too_large, bad_response)", UPSTREAM_LABELS)
        retries = CounterMetricFamily("naftiko_upstream_retries", "Upstream attempts that were retried", labels=("upstream", "operation"))
        for key, count in list(self.retries.items()):
            retries.add_metric(list(key), count)
        yield retries
        yield from self.steps.families("naftiko_step_duration_seconds", None, "Time of an orchestration step", "", ("step", "outcome"))

    def describe(self) -> list[Metric]:
        return []  # families are only known at scrape time; nothing to check at registration

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
