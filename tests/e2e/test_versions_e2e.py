"""One capability in the alpha2 shape and in the beta4 shape, served by `naftiko run` against the
echo upstream: the same routes, tools and answers (versions change nothing the file did not ask for).
"""

from __future__ import annotations

import contextlib

import pytest
from mcp import Client

from tests.support.servers import free_port, http_request, naftiko

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
TOKEN = "tok-versions-81f3"


@contextlib.contextmanager
def serve(shape: str, echo):
    rest, mcp = free_port(), free_port()
    proc = naftiko(["run", f"tests/fixtures/versions/shipyard-{shape}.yaml", "--base-uri", f"registry={echo.base_url}/v1",
                    "--port", f"shipyard-rest={rest}", "--port", f"shipyard-tools={mcp}"],
                   env={"REGISTRY_TOKEN": TOKEN}, ports_to_wait=[rest, mcp])
    with proc:
        yield f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp"


async def observe(rest: str, mcp: str, echo) -> dict:
    seen: dict = {}
    for path in ("/ships?status=active", "/ships/9321483", "/ships"):
        r = http_request("GET", rest + path)
        seen[path] = (r.status, r.headers["content-type"], r.json() if r.status == 200 else r.text, echo.last["raw_path"])
    async with Client(mcp) as client:
        tools = (await client.list_tools()).tools
        seen["tools"] = [(t.name, t.title, t.input_schema) for t in tools]
        for name, args in (("list-ships", {"status": "laid_up"}), ("get-ship", {"imo": "9321483"})):
            result = await client.call_tool(name, args)
            seen[name] = (result.is_error, result.structured_content, echo.last["raw_path"])
    return seen


async def test_alpha2_and_beta4_files_serve_the_same_routes_tools_and_answers(echo):
    with serve("alpha2", echo) as (rest, mcp):
        alpha2 = await observe(rest, mcp, echo)
        openapi = http_request("GET", rest + "/openapi.json").json()
        assert set(openapi["paths"]) == {"/ships", "/ships/{imo}"}
    with serve("beta4", echo) as (rest, mcp):
        beta4 = await observe(rest, mcp, echo)
    assert alpha2 == beta4
    assert echo.last["headers"]["authorization"] == f"Bearer {TOKEN}"  # the bind reached the upstream...
    assert beta4["/ships/9321483"][2] == {"imo": "/v1/ships/9321483", "auth": "Bearer ***"}  # ...and never a caller
    assert beta4["/ships?status=active"][3] == "/v1/ships?status=active"
    assert beta4["get-ship"] == (False, {"imo": "/v1/ships/9321483", "auth": "Bearer ***"}, "/v1/ships/9321483")
    assert [t[0:2] for t in beta4["tools"]] == [("list-ships", "List ships"), ("get-ship", "Get ship")]
