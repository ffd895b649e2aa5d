"""End to end against an echo upstream on a real socket: what exactly reaches the upstream."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import API_KEY, start_seed
from tests.support.servers import free_port, http_request, naftiko

TOKEN = "tok-5d1e0a77c3"


@pytest.fixture
def seed_on_echo(echo):
    proc, url = start_seed("--base-uri", f"sessions-sessions={echo.base_url}", "--timeout", "1")
    with proc:
        yield url, echo, proc


@pytest.fixture
def placement(echo):
    port = free_port()
    proc = naftiko(["run", "tests/fixtures/placement.yaml", "--port", f"api={port}", "--base-uri", f"echo={echo.base_url}/api"],
                   env={"TEST_TOKEN": TOKEN, "TEST_TENANT": "acme"}, ports_to_wait=[port])
    with proc:
        yield f"http://127.0.0.1:{port}", echo


@pytest.mark.parametrize("sent,raw", [
    ("a%2Fb", "/session/a%2Fb"),
    ("x%3Fq%3D1", "/session/x%3Fq%3D1"),
    ("x%23frag", "/session/x%23frag"),
    ("%7B%7Benv.VAPI_API_KEY%7D%7D", "/session/%7B%7Benv.VAPI_API_KEY%7D%7D"),
])
def test_path_values_are_encoded_per_segment(seed_on_echo, sent, raw):
    url, echo, _ = seed_on_echo
    r = http_request("GET", f"{url}/v1/session/{sent}")
    assert r.status == 200, r.text
    assert echo.last["raw_path"] == raw
    assert echo.last["headers"]["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("dots", ["..", "%2E%2E", ".", "..%2Fadmin", "a%2F..%2F..%2Fadmin"])  # upstreams that decode %2F must not walk up
def test_dot_segments_are_refused_before_the_upstream(seed_on_echo, dots):
    url, echo, _ = seed_on_echo
    r = http_request("GET", f"{url}/v1/session/{dots}")
    assert r.status in (400, 404), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert echo.received == []


def test_query_omits_absent_filters_and_body_is_forwarded_verbatim(seed_on_echo):
    url, echo, _ = seed_on_echo
    http_request("GET", f"{url}/v1/session?limit=5&name=a%20b")
    assert echo.last["raw_path"] == "/session?name=a%20b&limit=5"
    body = {"name": "{{env.VAPI_API_KEY}}", "nested": {"k": [1, 2]}}
    r = http_request("POST", f"{url}/v1/session", json_body=body)
    assert r.status == 200
    assert echo.last["json"] == body and echo.last["headers"]["content-type"] == "application/json"
    assert API_KEY not in echo.last["body"]


def test_every_placement_and_binds_in_templates(placement):
    url, echo = placement
    r = http_request("GET", f"{url}/things/t%2F1/parts?limit=20", headers={"X-Trace": "tr-1", "Cookie": "session=s1"})
    assert r.status == 200, r.text
    got = echo.last
    assert got["raw_path"] == "/api/things/t%2F1/parts?limit=20"
    assert got["headers"]["x-api-key"] == TOKEN and got["headers"]["x-tenant"] == "acme"
    assert got["headers"]["x-trace"] == "tr-1" and got["cookies"] == {"session": "s1"}
    r = http_request("POST", f"{url}/things/t1/parts", json_body={"name": "{{TENANT}}", "tags": ["a", "b"]})
    assert r.status == 200, r.text
    assert echo.last["json"] == {"name": "{{TENANT}}", "tags": ["a", "b"], "tenant": "acme"}


def test_input_checks_name_the_input(placement):
    url, echo = placement
    r = http_request("GET", f"{url}/things/t1/parts?limit=many")
    assert r.status == 400 and r.json()["errors"] == [{"name": "limit", "in": "query", "detail": "must be an integer, got 'many'"}]
    r = http_request("POST", f"{url}/things/t1/parts", json_body={"tags": "not-a-list"})
    names = {e["name"] for e in r.json()["errors"]}
    assert r.status == 400 and names == {"name", "tags"}
    r = http_request("GET", f"{url}/things/t1/parts", headers={"X-Trace": "a\tb"})
    assert r.status == 200
    assert echo.received and all(e["method"] == "GET" for e in echo.received)


def test_upstream_errors_pass_through(seed_on_echo):
    url, echo, _ = seed_on_echo
    echo.respond_with(404, body=json.dumps({"message": "Session not found"}), headers={"content-type": "application/json"})
    r = http_request("GET", f"{url}/v1/session/abc")
    assert r.status == 404 and r.json() == {"message": "Session not found"}


def test_upstream_rate_limit_passes_its_retry_after_on(seed_on_echo):
    url, echo, _ = seed_on_echo
    echo.respond_with(429, body=json.dumps({"message": "slow down"}), headers={"content-type": "application/json", "Retry-After": "7"})
    r = http_request("POST", f"{url}/v1/session", json_body={"name": "x"})  # POST: never retried
    assert r.status == 429 and r.headers["retry-after"] == "7" and r.json() == {"message": "slow down"}


def test_upstream_timeout_is_a_504_naming_the_upstream_and_serving_goes_on(seed_on_echo):
    url, echo, _ = seed_on_echo
    echo.respond_with(200, delay=3)
    r = http_request("GET", f"{url}/v1/session/slow")
    assert r.status == 504, r.text
    assert r.json()["upstream"] == "sessions-sessions" and "sessions-sessions" in r.json()["detail"]
    assert http_request("GET", f"{url}/v1/session/fast").status == 200


def test_unreachable_upstream_is_a_502_naming_it():
    dead = free_port()
    proc, url = start_seed("--base-uri", f"sessions-sessions=http://127.0.0.1:{dead}")
    with proc:
        r = http_request("GET", f"{url}/v1/session/x")
        assert r.status == 502
        assert r.json()["title"] == "Bad gateway" and "'sessions-sessions' could not be reached" in r.json()["detail"]
        assert API_KEY not in r.text
