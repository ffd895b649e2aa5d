"""End to end: `naftiko import openapi` on the full Vapi description (780 KB, deep $refs), served by
`naftiko run` against Prism, over REST and MCP, with no edit to the generated file.

Prism validates every request against the Vapi contract (bearer auth, uuid ids, query types, body
schemas) and answers 401/422 otherwise, so each success proves the imported capability sends what
the API expects.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from mcp import Client

from tests.authoring.support import VAPI_OPENAPI
from tests.support.servers import REPO_ROOT, free_port, http_request, naftiko

pytestmark = [pytest.mark.e2e]
KEY = "test-key-vapi-import"
SID = str(uuid.uuid4())
TOOLS = ["session-controller-create", "session-controller-find-all-paginated", "session-controller-find-one",
         "session-controller-update", "session-controller-remove"]


@pytest.fixture(scope="module")
def capability(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vapi") / "vapi.yaml"
    done = subprocess.run([sys.executable, "-m", "naftiko_runtime", "import", "openapi", str(VAPI_OPENAPI), "-o", str(out), "--namespace", "vapi"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stderr and "set VAPI_API_KEY" in done.stderr
    return out


@pytest.fixture(scope="module")
def served(capability: Path, prism_vapi: str) -> Iterator[tuple[str, str]]:
    rest, mcp = free_port(), free_port()
    proc = naftiko(["run", str(capability), "--base-uri", f"vapi={prism_vapi}", "--port", f"vapi-rest={rest}", "--port", f"vapi-mcp={mcp}"],
                   env={"VAPI_API_KEY": KEY}, ports_to_wait=[rest, mcp])
    with proc:
        yield f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp"


def test_rest_serves_all_five_operations_against_the_contract(served):
    rest, _ = served
    created = http_request("POST", rest + "/session", json_body={"name": "demo", "status": "active", "expirationSeconds": 3600})
    assert created.status == 201, created.text
    listed = http_request("GET", rest + "/session?page=1&limit=10&numberE164CheckEnabled=true&sortOrder=DESC")
    assert listed.status == 200, listed.text
    assert http_request("GET", f"{rest}/session/{SID}").status == 200
    assert http_request("PATCH", f"{rest}/session/{SID}", json_body={"name": "renamed", "status": "completed"}).status == 200
    assert http_request("DELETE", f"{rest}/session/{SID}").status == 200


def test_rest_checks_types_before_calling(served):
    rest, _ = served
    bad = http_request("GET", rest + "/session?numberE164CheckEnabled=maybe&page=two")
    assert bad.status == 400
    assert bad.json()["detail"] == "'numberE164CheckEnabled' (query) must be a boolean, got 'maybe'; 'page' (query) must be a number, got 'two'"
    enum = http_request("POST", rest + "/session", json_body={"status": "paused"})
    assert enum.status == 400 and "'paused' is not one of ['active', 'completed']" in enum.json()["detail"]


@pytest.mark.anyio
async def test_mcp_tools_carry_the_api_types_and_all_five_succeed(served):
    _, mcp = served
    calls = [
        ("session-controller-create", {"name": "demo", "status": "active", "expirationSeconds": 3600}),
        ("session-controller-find-all-paginated", {"limit": 10, "page": 1, "numberE164CheckEnabled": False, "sortOrder": "ASC"}),
        ("session-controller-find-one", {"id": SID}),
        ("session-controller-update", {"id": SID, "name": "renamed"}),
        ("session-controller-remove", {"id": SID}),
    ]
    async with Client(mcp) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert sorted(tools) == sorted(TOOLS)
        listing = tools["session-controller-find-all-paginated"].input_schema["properties"]
        assert listing["numberE164CheckEnabled"]["type"] == "boolean" and listing["limit"]["type"] == "number"
        assert tools["session-controller-find-one"].annotations.read_only_hint is True
        assert tools["session-controller-remove"].annotations.destructive_hint is True
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, f"{name}: {result.content}"
            assert isinstance(result.structured_content, dict) and result.structured_content, name
