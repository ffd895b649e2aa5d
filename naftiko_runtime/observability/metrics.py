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
from typing import Iterator, MutableSequence

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
from naftiko_runtime.observability.series import LocalSeries, Totals, WorkerSeries

# Seconds: a gateway's answers are mostly milliseconds, upstream budgets reach 30 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LE = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]
_FAILURES = ((UpstreamTimeout, "timeout"), (UpstreamBusy, "busy"), (UpstreamTooLarge, "too_large"),
             (UpstreamBadResponse, "bad_response"), (UpstreamUnreachable, "unreachable"), (InputError, "refused"))
REQUEST_LABELS = ("adapter", "exposure", "operation", "outcome")
UPSTREAM_LABELS = ("upstream", "operation", "outcome")
IN_FLIGHT = "naftiko_requests_in_flight"
RETRIES = "naftiko_upstream_retries_total"
Store = LocalSeries | WorkerSeries


class _StatusClasses(dict[int, str]):
    """HTTP status -> its outcome label (`2xx`...), read with `[]` on hot paths; "other" outside 100-599."""

    def __missing__(self, status: int) -> str:
        return "other"


STATUS_CLASSES = _StatusClasses({code: f"{code // 100}xx" for code in range(100, 600)})


def status_class(status: int) -> str:
    return STATUS_CLASSES[status]


def failure_outcome(exc: BaseException) -> str:
    """The outcome label of an upstream call that raised (a fixed list)."""
    return next((name for kind, name in _FAILURES if isinstance(exc, kind)), "error")


class Histogram:
    """Observations of one metric by label values: per label set, a count per bucket (the last:
    above every bound) and the sum, in cells of the process's store (series.py). Its count is also
    the matching `_total` counter."""

    __slots__ = ("name", "series", "store")

    def __init__(self, name: str, store: Store):
        self.name = name
        self.store = store
        self.series: dict[tuple[str, ...], MutableSequence[float]] = {}

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        cells = self.series.get(labels)
        if cells is None:
            cells = self.series[labels] = self.store.cells(self.name, labels, len(BUCKETS) + 2)
        cells[bisect_left(BUCKETS, seconds)] += 1
        cells[-1] += seconds

    def families(self, totals: Totals, counter: str | None, documentation: str, counter_doc: str, labels: tuple[str, ...]) -> Iterator[Metric]:
        histogram = HistogramMetricFamily(self.name, documentation, labels=labels)
        total = CounterMetricFamily(counter, counter_doc, labels=labels) if counter else None
        for key, cells in totals.get(self.name, {}).items():
            cumulative = list(accumulate(cells[:-1]))
            histogram.add_metric(list(key), buckets=list(zip(_LE, cumulative)), sum_value=cells[-1])
            if total is not None:
                total.add_metric(list(key), cumulative[-1])
        if total is not None:
            yield total
        yield histogram


class Metrics:
    """The process's observations and the registry `/metrics` exposes. `workers`: this worker's
    view of the workers' shared series (--workers), so a scrape reports every worker's counts."""

    def __init__(self, capability: str, spec_version: str, workers: WorkerSeries | None = None):
        self.registry = CollectorRegistry()
        # per-process collectors only when the process is the service: with workers, CPU and memory
        # of whichever worker answered the scrape would jump between scrapes
        for collector in (PlatformCollector,) if workers is not None else (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        Info("naftiko", "The runtime and the capability it serves", registry=self.registry).info(
            {"version": __version__, "capability": capability, "spec_version": spec_version})
        self.store: Store = workers if workers is not None else LocalSeries()
        self.requests = Histogram("naftiko_request_duration_seconds", self.store)
        self.upstreams = Histogram("naftiko_upstream_request_duration_seconds", self.store)
        self.steps = Histogram("naftiko_step_duration_seconds", self.store)
        self.retries: dict[tuple[str, str], MutableSequence[float]] = {}
        self.registry.register(self)  # a collector: `collect` below

    def in_flight(self, adapter: str, exposure: str) -> MutableSequence[float]:
        """The in-flight cell of one adapter (`cell[0] += 1` / `-= 1`)."""
        return self.store.cells(IN_FLIGHT, (adapter, exposure), 1, live=True)

    def request(self, adapter: str, exposure: str, operation: str, outcome: str, seconds: float) -> None:
        self.requests.observe((adapter, exposure, operation, outcome), seconds)

    def upstream(self, upstream: str, operation: str, outcome: str, seconds: float) -> None:
        self.upstreams.observe((upstream, operation, outcome), seconds)

    def retry(self, upstream: str, operation: str) -> None:
        key = (upstream, operation)
        cells = self.retries.get(key)
        if cells is None:
            cells = self.retries[key] = self.store.cells(RETRIES, key, 1)
        cells[0] += 1

    def step(self, step: str, outcome: str, seconds: float) -> None:
        self.steps.observe((step, outcome), seconds)

    def collect(self) -> Iterator[Metric]:
        totals = self.store.totals()
        yield from self.requests.families(
            totals, "naftiko_requests", "Time to answer a request",
            "Requests answered, by exposure, operation (route, tool...) and outcome (HTTP status class; MCP: ok, tool_error, error)",
            REQUEST_LABELS)
        gauge = GaugeMetricFamily(IN_FLIGHT, "HTTP requests being answered", labels=("adapter", "exposure"))
        for key, cells in totals.get(IN_FLIGHT, {}).items():
            gauge.add_metric(list(key), cells[0])
        yield gauge
        yield from self.upstreams.families(
            totals, "naftiko_upstream_requests", "Time of an upstream call, retries and waits included",
            "Upstream calls (retries included in one call), by consumes namespace, operation and outcome "
            "(status class, timeout, unreachable, busy, too_large, bad_response)", UPSTREAM_LABELS)
        retries = CounterMetricFamily("naftiko_upstream_retries", "Upstream attempts that were retried", labels=("upstream", "operation"))
        for key, cells in totals.get(RETRIES, {}).items():
            retries.add_metric(list(key), cells[0])
        yield retries
        yield from self.steps.families(totals, None, "Time of an orchestration step", "", ("step", "outcome"))

    def describe(self) -> list[Metric]:
        return []  # families are only known at scrape time; nothing to check at registration

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
