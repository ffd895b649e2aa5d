"""Requests a browser or a careless client can send (issue 15, items 7, 9, 10, 11, 14).

Cross-site requests to a loopback listener (a foreign Host through DNS rebinding, a foreign
Origin, a `text/plain` body that needs no CORS preflight) never reach the upstream; bodies that
cannot be sent on as JSON (NaN, Infinity, lone surrogates) are 400 naming the field; an upstream
Content-Type outside visible ASCII (what the upstream client can read) is a 502, never a 500.
"""

from __future__ import annotations

import json

import httpx
import pytest

from .attacks import exchange, head, status_of
from .faults import Fault
from .harness import VAPI, Naftiko


@pytest.fixture(scope="module")
def vapi(upstream):
    runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream.url}", "--retries", "0")
    yield runtime
    assert runtime.stop() == 0


def post(vapi, body: bytes, content_type: str | None = "application/json", **headers: str) -> httpx.Response:
    if content_type:
        headers["Content-Type"] = content_type
    return vapi.request("POST", "/v1/session", content=body, headers=headers)


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil", "10.0.0.1"])
def test_a_foreign_host_is_421_and_nothing_is_sent(vapi, upstream, host):
    upstream.script()
    body = problem(post(vapi, b'{"name": "x"}', Host=host), 421)
    assert "loopback Host" in body["detail"]
    assert not upstream.requests


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null", "http://127.0.0.1.nip.io"])
def test_a_foreign_origin_is_403_and_nothing_is_sent(vapi, upstream, origin):
    upstream.script()
    problem(post(vapi, b'{"name": "x"}', Origin=origin), 403)
    assert not upstream.requests


@pytest.mark.parametrize("host, origin", [("localhost:8080", "http://localhost:3000"), ("[::1]:9", None), ("127.0.0.1", "https://127.0.0.1")])
def test_loopback_hosts_and_origins_are_served(vapi, upstream, host, origin):
    upstream.script()
    headers = {"Host": host, **({"Origin": origin} if origin else {})}
    assert post(vapi, b'{"name": "x"}', **headers).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])
def test_a_body_that_is_not_declared_json_is_415_and_nothing_is_sent(vapi, upstream, content_type):
    upstream.script()
    body = problem(post(vapi, b'{"name": "x"}', content_type), 415)
    assert "application/json" in body["detail"]
    assert not upstream.requests


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json", "Application/JSON"])
def test_json_media_types_are_accepted(vapi, upstream, content_type):
    upstream.script()
    assert post(vapi, b'{"name": "x"}', content_type).status_code == 200


@pytest.mark.parametrize("raw, field", [
    (b'{"x": NaN, "y": 1}', "x"), (b'{"a": {"b": [1, Infinity]}}', "a.b[1]"), (b'{"y": -Infinity}', "y"),
    (b'{"x": 1, "y": 1e999}', "y"), (b'{"big": 1' + b"0" * 400 + b'.5}', "big"),
])
def test_non_finite_numbers_are_400_naming_the_field(vapi, upstream, raw, field):
    upstream.script()
    body = problem(post(vapi, raw), 400)
    assert body["errors"][0]["name"] == field and "finite" in body["detail"], body
    assert not upstream.requests


@pytest.mark.parametrize("raw, field", [(b'{"x": "\\ud800"}', "x"), (b'{"a": ["ok", "\\udfff tail"]}', "a[1]"),
                                        (b'{"\\ud800": 1}', "\\ud800"), (b'{"x": "\xed\xa0\x80"}', "x")],
                         ids=["escaped", "nested", "key", "raw-utf8"])
def test_lone_surrogates_are_400_naming_the_field(vapi, upstream, raw, field):
    upstream.script()
    response = post(vapi, raw)
    if raw.endswith(b'\xed\xa0\x80"}'):  # not UTF-8 at all: invalid JSON
        problem(response, 400)
    else:
        body = problem(response, 400)
        assert "surrogate" in body["detail"], body
    assert not upstream.requests


def test_a_surrogate_pair_is_text(vapi, upstream):
    upstream.script()
    response = post(vapi, b'{"name": "\\ud83d\\ude00"}')
    assert response.status_code == 200
    assert json.loads(upstream.requests[0].body) == {"name": "\U0001F600"}


@pytest.mark.parametrize("content_type", ["application/json; x=\u20ac", "text/\u4e2d\u6587", "application/json; x=\u00e9"])
def test_an_upstream_content_type_outside_ascii_is_502(vapi, upstream, content_type):
    upstream.script(Fault.answer(200, b"{}", content_type=content_type))
    body = problem(vapi.request("GET", "/v1/session"), 502)
    assert "Content-Type" in body["detail"] and body["upstream"] == "sessions-sessions"


def test_another_unreadable_upstream_header_is_dropped(vapi, upstream):
    upstream.script(Fault.answer(200, b'{"ok": true}', headers={"X-Note": "caf\u00e9"}))
    response = vapi.request("GET", "/v1/session")
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_a_websocket_upgrade_on_mcp_is_refused_with_403(vapi):
    answer = exchange(vapi.ports["sessions-sessions-mcp"], head("GET", "/mcp", {"Upgrade": "websocket", "Connection": "Upgrade",
                                                                               "Sec-WebSocket-Version": "13",
                                                                               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}))
    assert status_of(answer) == 403 and b"application/problem+json" in answer


def test_no_secret_in_any_log_line_or_body(vapi):
    vapi.assert_no_secret()
