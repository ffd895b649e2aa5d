"""Exposure authentication over the wire: REST (apikey header) and MCP (bearer) in one process.

A copy of the Vapi Sessions capability with `authentication` on both exposures, served by
`naftiko run --mock`. MCP follows the streamable HTTP transport's rules: every method on the
endpoint (POST, GET, DELETE) is refused with 401 and a `WWW-Authenticate` challenge until the
client presents the token; the SDK client with the token works as usual.
"""

from __future__ import annotations

import anyio
import pytest

from tests.support.servers import wait_http, http_request

from .harness import VAPI, Naftiko

TOKEN = "expose-7c1d9e2f4a6b8c0d"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    text = VAPI.read_text()
    text = text.replace("    VAPI_API_KEY: VAPI_API_KEY\n", "    VAPI_API_KEY: VAPI_API_KEY\n    EXPOSE_TOKEN: EXPOSE_TOKEN\n", 1)
    text = text.replace("    namespace: sessions-sessions-rest\n", "    namespace: sessions-sessions-rest\n"
                        "    authentication: {type: apikey, key: X-API-Key, value: '{{EXPOSE_TOKEN}}', placement: header}\n", 1)
    text = text.replace("    namespace: sessions-sessions-mcp\n", "    namespace: sessions-sessions-mcp\n"
                        "    authentication: {type: bearer, token: '{{EXPOSE_TOKEN}}'}\n", 1)
    path = tmp_path_factory.mktemp("cap") / "vapi-secured.yaml"
    path.write_text(text)
    runtime = Naftiko(path, "--mock", env={"EXPOSE_TOKEN": TOKEN})
    yield runtime
    assert runtime.stop() == 0
    runtime.assert_no_secret()
    assert TOKEN not in runtime.log and not any(TOKEN.encode() in b for b in runtime.bodies)


def mcp_url(runtime: Naftiko, path: str = "/mcp") -> str:
    return f"http://127.0.0.1:{runtime.ports['sessions-sessions-mcp']}{path}"


def refused(runtime: Naftiko, response, challenge: str) -> None:
    runtime.keep(response.body)
    assert response.status == 401, response.text
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Unauthorized" and TOKEN not in response.text


def test_rest_requires_the_key_everywhere_but_the_probes(secured):
    base = secured.url
    refused(secured, http_request("GET", f"{base}/v1/session"), 'ApiKey realm="naftiko", in="header", name="X-API-Key"')
    refused(secured, http_request("GET", f"{base}/openapi.json"), 'ApiKey realm="naftiko", in="header", name="X-API-Key"')
    assert http_request("GET", f"{base}/v1/session", headers={"X-API-Key": TOKEN}).status == 200
    assert http_request("GET", f"{base}/healthz").status == 200
    # readiness turns 200 once every listener of the process (REST and MCP) is up, like a probe sees it
    assert wait_http(f"{base}/readyz", timeout=10, ok=lambda status: status == 200) == 200


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("path", ["/mcp", "/"])
def test_mcp_refuses_every_method_without_the_token(secured, method, path):
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    body = INITIALIZE if method == "POST" else None
    refused(secured, http_request(method, mcp_url(secured, path), headers=headers, json_body=body), 'Bearer realm="naftiko"')
    wrong = http_request(method, mcp_url(secured, path), headers={**headers, "Authorization": "Bearer nope"}, json_body=body)
    refused(secured, wrong, 'Bearer realm="naftiko", error="invalid_token"')


def test_mcp_probes_are_open(secured):
    assert http_request("GET", mcp_url(secured, "/healthz")).json() == {"status": "alive"}
    assert http_request("GET", mcp_url(secured, "/readyz")).json() == {"status": "ready"}


def test_mcp_client_with_the_token_works_and_without_it_fails(secured):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def session(headers: dict[str, str]):
        transport = streamable_http_client(mcp_url(secured), http_client=create_mcp_http_client(headers=headers))
        async with Client(transport) as client:
            tools = await client.list_tools()
            created = await client.call_tool("vapi-sessioncontrollercreate", {"body": {"name": "x"}})
            return [t.name for t in tools.tools], created

    names, created = anyio.run(session, {"Authorization": f"Bearer {TOKEN}"})
    assert "vapi-sessioncontrollercreate" in names and not created.is_error
    with pytest.raises(Exception) as refused_session:  # the SDK wraps it in task-group exception groups
        anyio.run(session, {"Authorization": "Bearer wrong"})
    assert "MCPError" in repr(refused_session.value)
