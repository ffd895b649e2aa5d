"""Fuzzing the REST exposure from its own `/openapi.json` with schemathesis.

The Vapi Sessions capability runs on `--mock` and in front of Prism (when tests/node has it).
Whatever schemathesis sends (valid and invalid data), the runtime never answers a 5xx of its
own and never crashes. A 5xx passed through from the upstream is allowed: the runtime's own
errors are problem+json with `type: about:blank`, which Prism's are not.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from .harness import VAPI, Naftiko

EXAMPLES = 25  # per operation and target: 5 operations, a few seconds per target
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

on_mock = schemathesis.pytest.from_fixture("mock_schema")
on_prism = schemathesis.pytest.from_fixture("prism_schema")


@pytest.fixture(scope="module")
def mock_runtime():
    runtime = Naftiko(VAPI, "--mock")
    yield runtime
    assert runtime.stop() == 0
    assert_no_crash(runtime)


@pytest.fixture(scope="module")
def prism_runtime(request):
    prism_url = request.getfixturevalue("prism_vapi")  # skipped locally without tests/node, required in CI
    runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={prism_url}")
    yield runtime
    assert runtime.stop() == 0
    assert_no_crash(runtime)


@pytest.fixture(scope="module")
def mock_schema(mock_runtime):
    return schemathesis.openapi.from_url(f"{mock_runtime.url}/openapi.json")


@pytest.fixture(scope="module")
def prism_schema(prism_runtime):
    return schemathesis.openapi.from_url(f"{prism_runtime.url}/openapi.json")


def runtime_error(response) -> str | None:
    """Why `response` is a 5xx the runtime produced itself, or None."""
    if response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:  # uvicorn's own last resort is a text/plain 500
        crashed = response.headers.get("content-type", [""])[0].startswith("text/plain")
        return f"a bare {response.status_code} (an unhandled exception)" if crashed else None
    if isinstance(body, dict) and body.get("type") == "about:blank":
        return f"the runtime answered {response.status_code}: {body.get('title')}: {body.get('detail')}"
    return None


def check(runtime: Naftiko, case) -> None:
    response = case.call(base_url=runtime.url, timeout=30)
    runtime.keep(response.content)
    problem = runtime_error(response)
    assert problem is None, f"{case.method} {case.formatted_path}: {problem}"


def assert_no_crash(runtime: Naftiko) -> None:
    log = runtime.log
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
    runtime.assert_no_secret()


@on_mock.parametrize()
@FUZZ
def test_fuzz_on_mock(case, mock_runtime):
    check(mock_runtime, case)


@on_prism.parametrize()
@FUZZ
def test_fuzz_on_prism(case, prism_runtime):
    check(prism_runtime, case)
