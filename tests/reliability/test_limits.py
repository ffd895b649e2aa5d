"""Per-upstream limits set in the file (`x-naftiko:` on a consumes entry) and the slot limit.

A copy of the Vapi Sessions capability gets `x-naftiko: {retries: 0, maxConnections: 1, ...}`:
retries are off for it, and with its one slot taken by a slow call, a second caller is answered 503
within the connect timeout instead of waiting behind it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .faults import Fault
from .harness import VAPI, Naftiko

EXTENSION = "    x-naftiko: {retries: 0, maxConnections: 1, connectTimeout: 0.3, readTimeout: 5}\n"


@pytest.fixture(scope="module")
def limited(upstream, tmp_path_factory):
    text = VAPI.read_text()
    anchor = "    baseUri: https://api.vapi.ai\n"
    path = tmp_path_factory.mktemp("cap") / "vapi-limited.yaml"
    path.write_text(text.replace(anchor, anchor + EXTENSION, 1))
    runtime = Naftiko(path, "--base-uri", f"sessions-sessions={upstream.url}")
    yield runtime
    assert runtime.stop() == 0


def test_retries_zero_from_the_file_turns_retries_off(limited, upstream):
    upstream.script(Fault.answer(502))
    assert limited.request("GET", "/v1/session").status_code == 502
    assert len(upstream.requests) == 1


def test_a_caller_waiting_for_a_busy_upstream_gets_503_in_bounded_time(limited, upstream):
    upstream.script(Fault.ok(delay=1.5))
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(limited.request, "GET", "/v1/session")
        time.sleep(0.3)  # the slow call holds the only slot
        started = time.monotonic()
        waiting = limited.request("GET", "/v1/session?name=second")
        waited = time.monotonic() - started
        assert slow.result().status_code == 200
    assert waiting.status_code == 503, waiting.text
    assert waiting.headers["retry-after"] == "1"
    body = waiting.json()
    assert body["title"] == "Upstream busy" and "1 connection slot" in body["detail"]
    assert 0.25 <= waited < 1.2
    upstream.script()
    assert limited.request("GET", "/v1/session").status_code == 200


def test_no_secret_in_any_log_line_or_body(limited):
    limited.assert_no_secret()
