"""The retry policy and client settings as pure functions: what is retried, when, and how long."""

from __future__ import annotations

import email.utils

import pytest

from naftiko_runtime.errors import UpstreamBusy, UpstreamTimeout, UpstreamUnreachable
from naftiko_runtime.settings import Settings, size_text
from naftiko_runtime.upstream.client import BACKOFF_CAP, Response, parse_retry_after, retry_delay

NOW = 1_800_000_000.0
SETTINGS = Settings()


def answer(status: int, **headers: str) -> Response:
    return Response(status, b"", "application/json", headers)


@pytest.mark.parametrize("value, expected", [("3", 3.0), ("0", 0.0), (" 12 ", 12.0), ("", None), (None, None),
                                             ("soon", None), ("-1", None)])
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date_past_and_future():
    assert parse_retry_after(email.utils.formatdate(NOW + 5, usegmt=True), NOW) == pytest.approx(5)
    assert parse_retry_after(email.utils.formatdate(NOW - 60, usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_idempotent_methods_retry_gateway_statuses(method, status):
    delay = retry_delay(method, answer(status), 0, SETTINGS, 30)
    assert delay is not None and 0 <= delay <= 0.1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_and_patch_never_retry(method):
    assert retry_delay(method, answer(503), 0, SETTINGS, 30) is None
    assert retry_delay(method, UpstreamUnreachable("u", retryable=True), 0, SETTINGS, 30) is None


@pytest.mark.parametrize("status", [200, 400, 404, 500, 501])
def test_other_statuses_are_final(status):
    assert retry_delay("GET", answer(status), 0, SETTINGS, 30) is None


def test_retry_count_is_bounded():
    assert retry_delay("GET", answer(503), SETTINGS.retries, SETTINGS, 30) is None
    assert retry_delay("GET", answer(503), 0, Settings(retries=0), 30) is None


def test_backoff_is_full_jitter_and_capped():
    delays = [retry_delay("GET", answer(503), attempt, Settings(retries=99), 999) for attempt in range(20) for _ in range(20)]
    assert all(0 <= d <= BACKOFF_CAP for d in delays)
    assert max(delays) > BACKOFF_CAP / 2 and min(delays) < 0.05


def test_retry_after_wins_over_backoff_and_respects_the_budget():
    assert retry_delay("GET", answer(429, **{"retry-after": "2"}), 0, SETTINGS, 30) == 2.0
    assert retry_delay("GET", answer(503, **{"Retry-After": "40"}), 0, SETTINGS, 30) is None


def test_only_retryable_failures_are_retried():
    assert retry_delay("GET", UpstreamUnreachable("u", retryable=True), 0, SETTINGS, 30) is not None
    assert retry_delay("GET", UpstreamTimeout("u"), 0, SETTINGS, 30) is None
    assert retry_delay("GET", UpstreamBusy("u"), 0, SETTINGS, 30) is None


def test_timeouts_resolve_within_the_total_budget():
    assert (SETTINGS.connect, SETTINGS.read) == (10.0, 30.0)
    tight = Settings(timeout=2, connect_timeout=5, read_timeout=9)
    assert (tight.connect, tight.read) == (2, 2)


def test_extension_sets_per_upstream_values():
    settings, problems = Settings().with_extension({"connectTimeout": 0.5, "readTimeout": "4", "retries": 0, "maxConnections": 8,
                                                    "maxResponseBytes": "1KiB", "timeout": 9})
    assert problems == []
    assert (settings.connect_timeout, settings.read_timeout, settings.retries) == (0.5, 4.0, 0)
    assert (settings.max_connections, settings.max_response_bytes, settings.timeout) == (8, 1024, 9.0)


@pytest.mark.parametrize("ext, fragment", [({"retry": 3}, "unknown key 'retry'"), ({"retries": -1}, "retries must be a whole number"),
                                           ({"retries": 1.5}, "whole number"), ({"readTimeout": "soon"}, "number of seconds"),
                                           ({"maxConnections": 0}, ">= 1"), ({"timeout": True}, "number of seconds")])
def test_extension_mistakes_are_named(ext, fragment):
    _, problems = Settings().with_extension(ext)
    assert len(problems) == 1 and fragment in problems[0]


def test_sizes_are_named_as_set():
    assert size_text(10 * 1024 * 1024) == "10 MiB"
    assert size_text(1000) == "1,000 bytes"
