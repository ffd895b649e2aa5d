"""`--mock` is bounded like a real upstream (issue 15, item 14): items kept per collection, the
newest first in lists of at most `--mock-list-limit`, answers over `--max-response` refused."""

from __future__ import annotations

import json

import anyio
import pytest

from naftiko_runtime.errors import UpstreamTooLarge
from naftiko_runtime.mock import MockTransport
from naftiko_runtime.settings import Settings
from naftiko_runtime.upstream.request import Prepared


def send(mock: MockTransport, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    request = Prepared(method, f"http://mock{path}", {}, json.dumps(body).encode() if body is not None else None, [], False)
    response = anyio.run(mock.send, request)
    return response.status, json.loads(response.body)


def test_a_collection_keeps_the_newest_items_and_lists_them_newest_first():
    mock = MockTransport(Settings(mock_max_items=5, mock_list_limit=3))
    for i in range(8):
        assert send(mock, "POST", "/things", {"n": i})[0] == 201
    assert len(mock.collections["/things"]) == 5
    status, items = send(mock, "GET", "/things")
    assert status == 200 and [item["n"] for item in items] == [7, 6, 5]


def test_a_list_over_the_response_cap_is_the_upstream_size_error():
    mock = MockTransport(Settings(max_response_bytes=2000))
    for i in range(30):
        send(mock, "POST", "/things", {"text": "x" * 100})
    with pytest.raises(UpstreamTooLarge, match="over the 2,000 bytes limit"):
        send(mock, "GET", "/things")


def test_defaults_are_documented_values():
    assert (Settings().mock_max_items, Settings().mock_list_limit) == (1000, 100)
