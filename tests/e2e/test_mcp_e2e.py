"""End to end: the seed's MCP tools through `naftiko run`, against Prism and from the TypeScript SDK.

Prism validates every request against the Vapi OpenAPI (bearer auth, uuid ids, bodies) and answers
401/422 otherwise, so a successful tool call proves the runtime sent a correct request. In CI
(CI=true) a missing Prism or Node fails these tests instead of skipping them.
"""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
from mcp import Client

from tests.e2e.conftest import API_KEY
from tests.exposes.test_mcp import CREATE, FINDONE, LIST, REMOVE, TOOLS, UPDATE, serve_seed, text_of
from tests.support.servers import mcp_interop

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
SID = str(uuid.uuid4())


@pytest.fixture(scope="module")
def mcp_on_prism(prism_vapi: str) -> Iterator[str]:
    proc, url = serve_seed("--base-uri", f"sessions-sessions={prism_vapi}", env={"VAPI_API_KEY": API_KEY})
    with proc:
        yield url


async def test_all_five_tools_succeed_against_the_contract(mcp_on_prism):
    calls = [
        (CREATE, {"body": {"name": "demo", "status": "active", "expirationSeconds": 3600}}),
        (LIST, {"limit": "10", "sortOrder": "DESC", "assistantId": "a1"}),
        (FINDONE, {"id": SID}),
        (UPDATE, {"id": SID, "body": {"name": "renamed", "status": "completed"}}),
        (REMOVE, {"id": SID}),
    ]
    async with Client(mcp_on_prism) as client:
        assert [t.name for t in (await client.list_tools()).tools] == TOOLS
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, f"{name}: {text_of(result)}"
            assert isinstance(result.structured_content, dict) and result.structured_content, name
    assert "id" in (await _call(mcp_on_prism, FINDONE, {"id": SID})).structured_content


async def _call(url: str, name: str, arguments: dict):
    async with Client(url, mode="legacy") as client:
        return await client.call_tool(name, arguments)


async def test_upstream_422_is_a_tool_error_with_prisms_body(mcp_on_prism):
    result = await _call(mcp_on_prism, FINDONE, {"id": "not-a-uuid"})
    text = text_of(result)
    assert result.is_error and "HTTP 422 Unprocessable Entity" in text
    assert "UNPROCESSABLE_ENTITY" in text and 'must match format \\"uuid\\"' in text  # the upstream's own explanation


async def test_argument_validation_is_a_tool_error(mcp_on_prism):
    result = await _call(mcp_on_prism, UPDATE, {"id": SID})
    assert result.is_error and "'body' is required (object" in text_of(result)


@pytest.fixture(scope="module")
def mcp_mock() -> Iterator[str]:
    proc, url = serve_seed("--mock", env={"VAPI_API_KEY": None})
    with proc:
        yield url


async def test_typescript_sdk_reads_what_python_wrote(mcp_mock):
    created = await _call(mcp_mock, CREATE, {"body": {"name": "interop"}})
    sid = created.structured_content["id"]
    out = mcp_interop(mcp_mock, FINDONE, {"id": sid})
    assert out["tools"] == TOOLS
    result = out["result"]
    assert not result.get("isError") and result["structuredContent"]["id"] == sid
    assert result["structuredContent"]["name"] == "interop" and result["content"][0]["type"] == "text"
    missing = mcp_interop(mcp_mock, FINDONE, {})["result"]
    assert missing["isError"] and "'id' is required" in missing["content"][0]["text"]
