"""Hostile input: nothing a caller sends can leave the declared upstream path, host or headers.

`abuse.yaml` places inputs in an upstream path segment, a query parameter, a header and a JSON
body template; the shared echo upstream (tests/support) reports the raw request target it
received. Requests go through `http_request` so their targets reach the runtime byte for byte
(httpx would normalize `../`).
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.servers import echo_upstream, http_request

from .harness import SECRET, Naftiko

ABUSE = Path(__file__).with_name("abuse.yaml")


@pytest.fixture(scope="module")
def echo():
    with echo_upstream() as server:
        yield server


@pytest.fixture
def upstream(echo):
    echo.reset()
    return echo


@pytest.fixture(scope="module")
def web(echo):
    runtime = Naftiko(ABUSE, "--base-uri", f"echo={echo.base_url}/base", exposures=["web"], env={"ABUSE_KEY": SECRET})
    yield runtime
    assert runtime.stop() == 0


def raw(web, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    response = http_request(method, web.url + target, body=body, headers=headers)
    web.keep(response.body)
    return response.status, response.body


@pytest.mark.parametrize("target", [
    "/items/../admin", "/items/..", "/items/.", "/items/%2e%2e", "/items/.%2e", "/items/%2E%2E",
    "/items/%2e%2e%2f%2e%2e%2fadmin", "/items/..%2Fadmin", "/items/..%2f..%2f..%2fetc%2fpasswd", "/items/a%2Fb",
    "/items/%252e%252e%252fadmin", "/items/..%5c..%5cadmin", "/items/%2e%2e;/admin", "/items/x?q=../../admin",
    "/items/x?q=%2e%2e%2f%2e%2e%2fadmin", "/items/%00", "/items/x%23frag", "/items/a%2F..%2F..%2Fadmin",
    "/items/%2E%2E%2F", "/items/.%2F", "/items/%2e%2e%5cadmin",
])
def test_path_traversal_never_leaves_the_declared_path(web, upstream, target):
    status, _ = raw(web, "GET", target)
    assert status < 500
    for seen in [r["raw_path"] for r in upstream.received]:
        path, _, _query = seen.partition("?")
        assert path.startswith("/base/items/"), seen
        segment = path[len("/base/items/"):]
        decoded = unquote(segment).replace("\\", "/").split("/")  # as an upstream that decodes %2F would see it
        assert segment and "/" not in segment and not {".", ".."} & set(decoded), seen
    if status == 200:
        assert len(upstream.received) == 1


@pytest.mark.parametrize("trace", ["a%0d%0aX-Evil:%201", "a%0aX-Evil:%201", "a%0d", "a%00b", "%0d%0a%0d%0aGET%20/admin"])
def test_crlf_in_a_header_bound_input_is_400_and_nothing_is_sent(web, upstream, trace):
    status, body = raw(web, "GET", f"/items/x?trace={trace}")
    assert status == 400, body
    problem = json.loads(body)["errors"][0]  # the caller's own input, and the header it would have become
    assert (problem["name"], problem["in"]) == ("trace", "query") and "(sent upstream as 'X-Trace')" in problem["detail"]
    assert upstream.received == []


@pytest.mark.parametrize("target", ["/items/http:%2F%2Fevil.example%2Fx", "/items/evil.example:80",
                                    "/items/x?q=http://evil.example/", "/items/x?q=//evil.example/x",
                                    "/items/x?trace=http://evil.example/", "/items/@evil.example"])
def test_an_absolute_url_in_an_input_cannot_change_the_upstream_host(web, upstream, target):
    status, _ = raw(web, "GET", target)
    assert status in (200, 404)
    for seen in upstream.received:
        assert seen["raw_path"].startswith("/base/items/") and seen["headers"]["host"] == f"127.0.0.1:{upstream.port}"


def test_an_absolute_url_in_a_body_field_stays_data(web, upstream):
    status, body = raw(web, "POST", "/items", json.dumps({"name": "http://evil.example/", "note": "x"}).encode(),
                       {"Content-Type": "application/json"})
    assert status == 200 and upstream.received[0]["raw_path"] == "/base/items"
    assert upstream.received[0]["json"] == {"name": "http://evil.example/", "note": "x"}


def test_templates_in_inputs_reach_the_upstream_literally(web, upstream):
    status, _ = raw(web, "GET", "/items/%7B%7BABUSE_KEY%7D%7D?q=%7B%7Benv.ABUSE_KEY%7D%7D&trace=%7B%7BABUSE_KEY%7D%7D")
    assert status == 200
    seen = upstream.received[0]
    assert seen["raw_path"] == "/base/items/%7B%7BABUSE_KEY%7D%7D?q=%7B%7Benv.ABUSE_KEY%7D%7D"
    assert seen["headers"]["x-trace"] == "{{ABUSE_KEY}}"
    upstream.reset()
    note = '{{ABUSE_KEY}}", "injected": "{{#x}}{{/x}}'
    status, _ = raw(web, "POST", "/items", json.dumps({"name": "{{ABUSE_KEY}}", "note": note}).encode(), {"Content-Type": "application/json"})
    assert status == 200
    assert upstream.received[0]["json"] == {"name": "{{ABUSE_KEY}}", "note": note}
    assert all(SECRET not in r["raw_path"] + r["body"] + r["headers"].get("x-trace", "") for r in upstream.received)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_bodies_get_413(web, upstream, chunked):
    payload = json.dumps({"name": "x" * (1024 * 1024 + 10)}).encode()
    headers = {"Content-Type": "application/json"}
    if chunked:
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        conn.request("POST", "/items", body=iter([payload[i:i + 65536] for i in range(0, len(payload), 65536)]),
                     headers={**headers, "Transfer-Encoding": "chunked"}, encode_chunked=True)
        response = conn.getresponse()
        status, body = response.status, response.read()
        conn.close()
    else:
        status, body = raw(web, "POST", "/items", payload, headers)
    assert status == 413 and json.loads(body)["title"] == "Request body too large"
    assert upstream.received == []


@pytest.mark.parametrize("depth", [100, 990, 1_000, 5_000, 100_000, 500_000])
@pytest.mark.parametrize("shape", ["array", "object", "field"])
def test_deeply_nested_json_is_400_not_a_crash(web, upstream, depth, shape):
    if shape == "array":
        payload = "[" * depth + "]" * depth
    elif shape == "object":
        payload = '{"a":' * depth + "1" + "}" * depth
    else:
        payload = '{"name":' + "[" * depth + "]" * depth + "}"
    status, body = raw(web, "POST", "/items", payload.encode(), {"Content-Type": "application/json"})
    expected = {413} if len(payload) > 1024 * 1024 else {400, 200} if depth <= 100 else {400}
    assert status in expected, body[:300]
    assert raw(web, "GET", "/items/ok")[0] == 200  # and the runtime is still serving


def test_invalid_json_and_wrong_types_are_400(web, upstream):
    for payload in (b"{", b"\xff\xfe", b'{"name": 1e999999}', b'{"name": NaN}', b"[1,]"):
        status, _ = raw(web, "POST", "/items", payload, {"Content-Type": "application/json"})
        assert status == 400, payload


def test_no_secret_in_any_log_line_or_body(web):
    web.assert_no_secret()
