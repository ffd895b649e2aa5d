"""Upstream faults on a real socket: each gets its documented status, and the next request succeeds.

The Vapi Sessions capability runs as `naftiko run` against the fault upstream with short
timeouts. Statuses are the ones docs/RELIABILITY.md documents: 502 for an upstream that cannot be
reached or read, 504 when it is too slow, passthrough for answers it did give.
"""

from __future__ import annotations

import email.utils
import json
import time

import anyio
import pytest

from .faults import Fault
from .harness import VAPI, Naftiko

READ_TIMEOUT = 0.5
TEN_MIB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def vapi(upstream):
    runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream.url}", "--read-timeout", str(READ_TIMEOUT),
                      "--connect-timeout", "1", "--timeout", "5")
    yield runtime
    assert runtime.stop() == 0


def get(vapi, path="/v1/session"):
    return vapi.request("GET", path)


def post(vapi):
    return vapi.request("POST", "/v1/session", json={"name": "x"})


def problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["upstream"] == "sessions-sessions"
    return body


def recovers(vapi, upstream):
    upstream.script()
    response = get(vapi)
    assert response.status_code == 200, response.text
    assert response.json()["target"] == "/session"


def test_normal_request_passes_through(vapi, upstream):
    recovers(vapi, upstream)
    assert upstream.requests[0].headers["authorization"].startswith("Bearer ")


def test_refused_connection_is_502_then_recovers(vapi, upstream):
    upstream.refuse()
    try:
        body = problem(get(vapi), 502)
        assert "could not be reached" in body["detail"] and "refused" in body["detail"].lower()
        problem(post(vapi), 502)
    finally:
        upstream.listen()
    recovers(vapi, upstream)


def test_reset_mid_response_is_502_after_retries_for_get(vapi, upstream):
    upstream.script(Fault.reset(), Fault.reset(), Fault.reset())
    body = problem(get(vapi), 502)
    assert "cut off" in body["detail"] or "connection" in body["detail"]
    assert len(upstream.requests) == 3  # GET: the first attempt and 2 retries
    recovers(vapi, upstream)


def test_reset_mid_response_is_not_retried_for_post(vapi, upstream):
    upstream.script(Fault.reset(), Fault.reset())
    problem(post(vapi), 502)
    assert len(upstream.requests) == 1
    recovers(vapi, upstream)


def test_reset_then_success_is_retried_for_get(vapi, upstream):
    upstream.script(Fault.reset())
    response = get(vapi)
    assert response.status_code == 200 and len(upstream.requests) == 2
    line = [ln for ln in vapi.log.splitlines() if "retrying GET (attempt 2 of 3)" in ln][-1]
    assert line.count("upstream 'sessions-sessions'") == 1 and "cut off" in line, line  # one line says what and where, once


def test_upstream_that_never_answers_is_504_at_the_read_timeout(vapi, upstream):
    upstream.script(Fault.hang())
    started = time.monotonic()
    body = problem(get(vapi), 504)
    elapsed = time.monotonic() - started
    assert "read timeout" in body["detail"] and READ_TIMEOUT <= elapsed < READ_TIMEOUT + 1.5
    assert len(upstream.requests) == 1  # a read timeout is not retried: the budget would only be spent again
    recovers(vapi, upstream)


def test_answer_stalling_past_the_read_timeout_is_504(vapi, upstream):
    upstream.script(Fault.slow(READ_TIMEOUT * 3))
    body = problem(get(vapi), 504)
    assert "no data for" in body["detail"]
    recovers(vapi, upstream)


@pytest.mark.parametrize("codes", [(502,), (503,), (502, 503), (504,)])
def test_gateway_errors_then_success_are_retried_for_get(vapi, upstream, codes):
    upstream.script(*(Fault.answer(c) for c in codes))
    response = get(vapi)
    assert response.status_code == 200, response.text
    assert len(upstream.requests) == len(codes) + 1


def test_500_is_passed_through_not_retried(vapi, upstream):
    upstream.script(Fault.answer(500, '{"error":"boom"}'))
    response = get(vapi)
    assert response.status_code == 500 and response.json() == {"error": "boom"}
    assert len(upstream.requests) == 1
    recovers(vapi, upstream)


def test_retries_are_bounded_then_the_last_answer_passes_through(vapi, upstream):
    upstream.script(*(Fault.answer(503, '{"n":%d}' % i) for i in range(5)))
    response = get(vapi)
    assert response.status_code == 503 and response.json() == {"n": 2}
    assert len(upstream.requests) == 3
    recovers(vapi, upstream)


@pytest.mark.parametrize("code", [500, 502, 503])
def test_post_is_never_retried(vapi, upstream, code):
    upstream.script(Fault.answer(code))
    response = post(vapi)
    assert response.status_code == code and len(upstream.requests) == 1
    recovers(vapi, upstream)


def test_429_retry_after_seconds_is_honored(vapi, upstream):
    upstream.script(Fault.answer(429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    response = get(vapi)
    assert response.status_code == 200 and len(upstream.requests) == 2
    assert time.monotonic() - started >= 0.95


def test_429_retry_after_http_date_is_honored(vapi, upstream):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: waits 1-2 s
    upstream.script(Fault.answer(429, headers={"Retry-After": when}))
    started = time.monotonic()
    response = get(vapi)
    assert response.status_code == 200 and len(upstream.requests) == 2
    assert time.monotonic() - started >= 0.9


def test_429_retry_after_beyond_the_budget_passes_through_at_once(vapi, upstream):
    upstream.script(Fault.answer(429, '{"error":"slow down"}', headers={"Retry-After": "3600"}))
    started = time.monotonic()
    response = get(vapi)
    assert response.status_code == 429 and response.json() == {"error": "slow down"}
    assert time.monotonic() - started < 1 and len(upstream.requests) == 1
    recovers(vapi, upstream)


def test_429_is_not_retried_for_post(vapi, upstream):
    upstream.script(Fault.answer(429, headers={"Retry-After": "0"}))
    assert post(vapi).status_code == 429 and len(upstream.requests) == 1


def test_invalid_json_under_a_json_content_type_passes_through(vapi, upstream):
    upstream.script(Fault.answer(200, b'{"broken": ', "application/json"))
    response = get(vapi)
    assert response.status_code == 200 and response.content == b'{"broken": '
    recovers(vapi, upstream)


def test_wrong_content_type_passes_through(vapi, upstream):
    upstream.script(Fault.answer(200, b"<html>maintenance</html>", "text/html"))
    response = get(vapi)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.content == b"<html>maintenance</html>"
    recovers(vapi, upstream)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_size_cap_is_502_naming_the_limit(vapi, upstream, chunked):
    upstream.script(Fault.answer(200, b"x" * (TEN_MIB + 1), chunked=chunked))
    body = problem(get(vapi), 502)
    assert "10 MiB" in body["detail"]
    recovers(vapi, upstream)


def test_body_at_the_size_cap_is_served(vapi, upstream):
    upstream.script(Fault.answer(200, b"x" * TEN_MIB, "application/octet-stream"))
    response = get(vapi)
    assert response.status_code == 200 and len(response.content) == TEN_MIB
    vapi.bodies[-1] = b""  # 10 MiB of x: nothing to scan


def test_an_answer_that_is_not_http_is_502(vapi, upstream):
    upstream.script(Fault.garbage())
    body = problem(vapi.request("POST", "/v1/session", json={}), 502)
    assert "not a valid HTTP response" in body["detail"]
    recovers(vapi, upstream)


def test_a_credential_echoed_by_the_upstream_is_masked(vapi, upstream):
    upstream.script()
    response = get(vapi)
    assert response.json()["headers"]["authorization"] == "Bearer ***"


def test_no_secret_in_any_log_line_or_body(vapi):
    vapi.assert_no_secret()


# -- the same faults through the MCP exposure: an `isError` result, then a normal one -----------

LIST = "vapi-sessioncontrollerfindallpaginated"
CREATE = "vapi-sessioncontrollercreate"


def call_tool(vapi, name: str, arguments: dict | None = None):
    from mcp import Client

    async def go():
        async with Client(f"http://127.0.0.1:{vapi.ports['sessions-sessions-mcp']}/mcp") as client:
            return await client.call_tool(name, arguments or {})

    result = anyio.run(go)
    text = "".join(getattr(c, "text", "") for c in result.content)
    vapi.keep(text.encode())
    return result, text


def tool_recovers(vapi, upstream):
    upstream.script()
    result, text = call_tool(vapi, LIST)
    assert not result.is_error, text
    assert json.loads(text)["target"] == "/session"


def test_mcp_refused_connection_is_an_error_result(vapi, upstream):
    upstream.refuse()
    try:
        result, text = call_tool(vapi, LIST)
    finally:
        upstream.listen()
    assert result.is_error and "could not be reached" in text
    tool_recovers(vapi, upstream)


@pytest.mark.parametrize("tool, faults, fragment", [
    (LIST, [Fault.reset()] * 3, "cut off"),
    (CREATE, [Fault.reset()], "cut off"),
    (LIST, [Fault.hang()], "read timeout"),
    (LIST, [Fault.slow(READ_TIMEOUT * 3)], "no data for"),
    (LIST, [Fault.answer(500)], "HTTP 500"),
    (CREATE, [Fault.answer(503)], "HTTP 503"),
    (LIST, [Fault.answer(429, headers={"Retry-After": "3600"})], "HTTP 429"),
    (LIST, [Fault.answer(200, b"x" * (TEN_MIB + 1))], "10 MiB"),
    (CREATE, [Fault.garbage()], "not a valid HTTP response"),
], ids=["reset", "reset-post", "hang", "slow", "500", "503-post", "429-late", "too-large", "garbage"])
def test_mcp_faults_are_error_results(vapi, upstream, tool, faults, fragment):
    upstream.script(*faults)
    result, text = call_tool(vapi, tool, {"body": {"name": "x"}} if tool == CREATE else {})
    assert result.is_error and fragment in text, text
    tool_recovers(vapi, upstream)


@pytest.mark.parametrize("faults", [[Fault.answer(502), Fault.answer(503)], [Fault.reset()],
                                    [Fault.answer(429, headers={"Retry-After": "0"})]], ids=["502-503", "reset", "429"])
def test_mcp_retried_faults_succeed(vapi, upstream, faults):
    upstream.script(*faults)
    result, text = call_tool(vapi, LIST)
    assert not result.is_error, text


@pytest.mark.parametrize("body, content_type", [(b'{"broken": ', "application/json"), (b"<html>x</html>", "text/html")],
                         ids=["invalid-json", "wrong-type"])
def test_mcp_unparseable_answers_come_back_as_text(vapi, upstream, body, content_type):
    upstream.script(Fault.answer(200, body, content_type))
    result, text = call_tool(vapi, LIST)
    assert not result.is_error and text == body.decode()
    tool_recovers(vapi, upstream)


def test_mcp_no_secret_in_any_log_line_or_body(vapi):
    vapi.assert_no_secret()
