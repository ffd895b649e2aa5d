"""Structured logs: with `--log-format json` every stderr line of a run is a JSON object (startup,
requests, failures, shutdown), records inside a traced request carry its trace and span ids, and
no bind value appears in any line, in either format."""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.e2e.conftest import MCP_NS, REST_NS, SEED
from tests.support.servers import free_port, http_request, naftiko, wait_http

pytestmark = pytest.mark.e2e

SECRET = "vapi-key-3b7e91c4d2"


def run(fmt: str) -> str:
    """A run with every kind of line: announcements, debug notes, access logs, upstream retries and
    failures, a request whose path carries the secret, and the drain; returns stderr."""
    control, rest, mcp = free_port(), free_port(), free_port()
    args = ["run", SEED, "--log-format", fmt, "--log-level", "debug", "--access-log", "--control-port", str(control),
            "--port", f"{REST_NS}={rest}", "--port", f"{MCP_NS}={mcp}", "--base-uri", f"sessions-sessions=http://127.0.0.1:{free_port()}"]
    with naftiko(args, env={"VAPI_API_KEY": SECRET}, ports_to_wait=[control]) as proc:
        wait_http(f"http://127.0.0.1:{control}/health/ready", ok=lambda s: s == 200, proc=proc)
        assert http_request("GET", f"http://127.0.0.1:{rest}/v1/session/abc").status == 502  # the upstream is down
        assert http_request("GET", f"http://127.0.0.1:{rest}/v1/session/{SECRET}").status == 502
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        return proc.stderr_text()


def test_every_json_line_parses_and_carries_trace_ids_inside_requests():
    lines = run("json").splitlines()
    records = [json.loads(line) for line in lines]  # every line, or this raises
    assert len(records) > 10 and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    messages = [r["message"] for r in records]
    assert any(m.startswith(f"REST '{REST_NS}' on http://127.0.0.1:") for m in messages)  # the announcements too
    assert any("received SIGTERM" in m for m in messages)
    failures = [r for r in records if r["level"] == "WARNING" and "could not be reached" in r["message"]]
    assert failures and all(re.fullmatch(r"[0-9a-f]{32}", r["trace_id"]) and re.fullmatch(r"[0-9a-f]{16}", r["span_id"]) for r in failures)
    assert not any("trace_id" in r for r in records if "received SIGTERM" in r["message"])  # outside any request
    assert SECRET not in "\n".join(lines)
    assert any("/v1/session/***" in m for m in messages)  # the access log line of the request that carried it


def test_text_logs_stay_the_default_and_are_redacted_too():
    text = run("text")
    assert SECRET not in text and "/v1/session/***" in text
    assert not text.lstrip().startswith("{") and "naftiko: REST" in text
