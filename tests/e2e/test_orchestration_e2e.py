"""End to end: a two-call + lookup + mappings pipeline, written inline on an MCP tool and a REST
operation and once as an aggregate function that another tool and operation `ref`, served by
`naftiko run` against a fake registry on a real socket, driven by the MCP Python SDK and over HTTP.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest
from mcp import Client

from tests.support.servers import RoutesUpstream, free_port, http_request, naftiko

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
CAPABILITY = "examples/orchestration/shipyard.yaml"  # the runnable example of docs/orchestration.md
TOKEN = "tok-registry-5c1e"
SHIP = {"imo_number": "IMO-9321483", "vessel_name": "Northern Star", "dimensions": {"length_overall": 229},
        "assignedCrew": ["CREW-001", "CREW-003", "CREW-404"]}
CREW = [{"crewId": "CREW-001", "fullName": "Ann Larsen", "role": "captain", "salary": 1},
        {"crewId": "CREW-002", "fullName": "Bo Berg", "role": "cook"},
        {"crewId": "CREW-003", "fullName": "Cy Holm", "role": "mate"}]
EXPECTED = {"imo": "IMO-9321483", "name": "Northern Star", "specs": {"length": 229},
            "crew": [{"fullName": "Ann Larsen", "role": "captain"}, {"fullName": "Cy Holm", "role": "mate"}]}
ROUTES = {
    ("GET", "/v1/ships/IMO-9321483"): (200, SHIP),
    ("GET", "/v1/ships/IMO-0000000"): (404, {"error": "no ship IMO-0000000"}),
    ("GET", "/v1/ships/IMO-5000000"): (503, {"error": "registry maintenance"}),
    ("GET", "/v1/crew"): (200, CREW),
}


@pytest.fixture(scope="module")
def registry() -> Iterator[RoutesUpstream]:
    with RoutesUpstream(ROUTES, delay=0.2) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def shipyard(registry: RoutesUpstream) -> Iterator[tuple[str, str]]:
    rest, mcp = free_port(), free_port()
    proc = naftiko(["run", CAPABILITY, "--base-uri", f"registry={registry.base_url}/v1",
                    "--port", f"shipyard-api={rest}", "--port", f"shipyard-tools={mcp}"],
                   env={"REGISTRY_TOKEN": TOKEN}, ports_to_wait=[rest, mcp])
    with proc:
        yield f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp"


@contextlib.contextmanager
def fresh(registry: RoutesUpstream) -> Iterator[list[dict]]:
    registry.received.clear()
    yield registry.received


def overlapped(received: list[dict]) -> bool:
    ship = next(r for r in received if r["path"].startswith("/v1/ships/"))
    crew = next(r for r in received if r["path"] == "/v1/crew")
    return ship["started"] < crew["ended"] and crew["started"] < ship["ended"]


async def test_tool_with_steps_and_the_tool_that_refs_the_function_answer_alike(shipyard, registry):
    _, mcp = shipyard
    async with Client(mcp) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        ref = tools["resolve-crew"]
        assert ref.description == "Resolve crew member names and roles for a given ship"  # inherited
        assert ref.input_schema == {"type": "object", "properties": {"imo": {"type": "string", "description": "IMO number of the ship"}},
                                    "required": ["imo"]}
        hints = ref.annotations
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (True, False, True, None)
        assert tools["get-ship-with-crew"].annotations is None
        for name in ("get-ship-with-crew", "resolve-crew"):
            with fresh(registry) as received:
                result = await client.call_tool(name, {"imo": "IMO-9321483"})
            assert not result.is_error and result.structured_content == EXPECTED, name
            assert {r["headers"]["authorization"] for r in received} == {f"Bearer {TOKEN}"}
            assert overlapped(received), "the two independent calls ran one after the other"


async def test_rest_operation_with_steps_and_the_operation_that_refs_the_function(shipyard, registry):
    rest, _ = shipyard
    for path in ("/ships/IMO-9321483/crew", "/crew-of/IMO-9321483"):
        with fresh(registry) as received:
            response = http_request("GET", rest + path)
        assert response.status == 200 and response.headers["content-type"] == "application/json", response.text
        assert response.json() == EXPECTED
        assert overlapped(received)
    openapi = http_request("GET", rest + "/openapi.json").json()
    operation = openapi["paths"]["/crew-of/{imo}"]["get"]
    assert operation["operationId"] == "resolve_crew_for_ship" and operation["summary"].startswith("Resolve crew member names")
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [("imo", "path", True)]


async def test_a_failing_step_names_itself_and_the_upstreams_answer(shipyard, registry):
    rest, mcp = shipyard
    missing = http_request("GET", rest + "/ships/IMO-0000000/crew")
    assert missing.status == 404 and missing.headers["content-type"] == "application/problem+json"
    problem = missing.json()
    assert problem["detail"] == "step 'get-ship' failed: upstream 'registry' answered HTTP 404 Not Found"
    assert (problem["step"], problem["upstream"], problem["upstreamStatus"], problem["upstreamBody"]) == (
        "get-ship", "registry", 404, {"error": "no ship IMO-0000000"})
    down = http_request("GET", rest + "/crew-of/IMO-5000000")
    assert down.status == 502 and down.json()["upstreamStatus"] == 503
    async with Client(mcp) as client:
        result = await client.call_tool("resolve-crew", {"imo": "IMO-0000000"})
        assert result.is_error
        assert result.content[0].text == ("Tool 'resolve-crew' failed: step 'get-ship' failed: upstream 'registry' answered "
                                          'HTTP 404 Not Found: {"error": "no ship IMO-0000000"}')
        missing_arg = await client.call_tool("resolve-crew", {})
        assert missing_arg.is_error and "'imo' is required" in missing_arg.content[0].text
