"""`forward` plans: what of a caller's request goes upstream, and the mock upstream's streaming side."""

from __future__ import annotations

import asyncio
import json

import pytest

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.errors import InputError
from naftiko_runtime.mock import MockTransport
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.settings import Settings
from naftiko_runtime.upstream.request import CompileContext, ForwardPlan, Upstream

CAP = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - namespace: api
    type: http
    baseUri: https://api.example.com/v2
    authentication: {type: apikey, key: key, value: s3cret, placement: query}
    resources:
    - {name: r, path: /r, operations: [{name: get, method: GET}]}
"""


def plan(trusted: list[str]) -> ForwardPlan:
    cap = load_text(CAP, "cap.yaml", None)
    upstream = Upstream.compile(cap.consumes["api"], CompileContext(BoundValues(), frozenset()), Settings())
    return ForwardPlan(upstream, trusted, {"X-Fixed": "1"}, "forward /proxy/{path}")


def test_only_trusted_headers_go_with_the_namespaces_fixed_headers_and_credentials():
    headers = [(b"x-request-id", b"r1"), (b"x-other", b"no"), (b"content-type", b"application/json"), (b"x-fixed", b"caller"),
               (b"connection", b"keep-alive"), (b"host", b"gateway.example")]
    prepared = plan(["X-Request-ID", "X-Fixed", "Connection", "Host"]).prepare("PATCH", ["a%20b", "c%2Fd"], "q=1&r=%20", headers)
    assert prepared.method == "PATCH"
    assert prepared.url == "https://api.example.com/v2/a%20b/c%2Fd?q=1&r=%20&key=s3cret"
    assert prepared.headers == {"x-request-id": "r1", "content-type": "application/json", "accept-encoding": "identity", "X-Fixed": "1"}


def test_the_callers_accept_encoding_goes_along_since_the_answer_is_passed_undecoded():
    assert plan([]).prepare("GET", [], "", [(b"accept-encoding", b"gzip")]).headers["accept-encoding"] == "gzip"


@pytest.mark.parametrize("segment", ["..", "%2e%2E", "..%2Fadmin", "a%2F..%2F..", "..%5Cx"])
def test_dot_segments_are_refused(segment):
    with pytest.raises(InputError):
        plan([]).prepare("GET", ["v1", segment], "", [])


def test_the_mock_upstream_streams_too():
    mock = MockTransport()
    forward = plan([])

    async def body():
        yield b'{"name": '
        yield b'"boat"}'

    async def exchange():
        async with mock.stream(forward.prepare("POST", ["boats"], "", []), body()) as created:
            item = json.loads(b"".join([c async for c in created.chunks]))
        async with mock.stream(forward.prepare("GET", ["boats", item["id"]], "", []), None) as read:
            return created.status, read.status, json.loads(b"".join([c async for c in read.chunks]))

    created, status, item = asyncio.run(exchange())
    assert (created, status, item["name"]) == (201, 200, "boat")
