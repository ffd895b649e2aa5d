"""What reaches the upstream is what the plan encoded, byte for byte, whatever the HTTP client does.

The built-in client (upstream/h1.py) writes the plan's target as it is; pyreqwest (TLS upstreams)
parses URLs the WHATWG way: `/x/../y` goes out as `/y`, `%2e%2e` counts as `..`, `\\` as `/`, and a
few characters are re-encoded, so the plan must never give it such a URL. These tests send dot segments, encoded
dots and encoded slashes through REST and MCP to a real upstream socket that records the raw
request target, and check the plan's own constants (base URI, path, fixed query) go out as written.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.errors import CapabilityError, InputError
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.upstream.client import _wire_url
from tests.reliability.faults import Fault, FaultServer
from tests.reliability.harness import Naftiko
from tests.support.servers import http_request

CAP = """naftiko: 1.0.0-alpha3
info: {label: Wire, description: What goes on the wire.}
capability:
  consumes:
  - type: http
    namespace: up
    baseUri: http://placeholder.invalid/v1/a b
    resources:
    - name: files
      path: /files/{{name}}/raw
      operations:
      - name: get-file
        method: GET
        inputParameters:
        - {name: name, in: path, type: string, required: true}
        - {name: q, in: query, type: string}
    - name: odd
      path: "/odd/x`y\\\\z/{{name}}?mode=it's \\"on\\""
      operations:
      - {name: get-odd, method: GET, inputParameters: [{name: name, in: path, type: string, required: true}]}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /files/{name}/raw
      operations: [{method: GET, call: up.get-file}]
    - path: /odd/{name}
      operations: [{method: GET, call: up.get-odd}]
    - path: /docs/{file}
      operations:
      - method: GET
        call: up.get-file
        inputParameters: [{name: file, in: path, type: string, required: true}]
        with: {name: "{{file}}"}
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - {name: get-file, description: One file., call: up.get-file}
"""


@pytest.fixture(scope="module")
def upstream():
    with FaultServer() as server:
        yield server


@pytest.fixture(scope="module")
def wire(upstream, tmp_path_factory):
    path = tmp_path_factory.mktemp("wire") / "wire.yaml"
    path.write_text(CAP)
    runtime = Naftiko(path, "--base-uri", f"up={upstream.url}/v1/a b", exposures=["api", "tools"], verbose=False)
    yield runtime
    assert runtime.stop() == 0


def sent(wire, upstream, target: str) -> tuple[int, str | None]:
    """(REST status, the raw target the upstream received or None)."""
    upstream.script()
    response = http_request("GET", wire.url + target)
    return response.status, upstream.requests[-1].target if upstream.requests else None


@pytest.mark.parametrize("target, wire_target", [
    ("/files/a%2Fb/raw", "/v1/a%20b/files/a%2Fb/raw"),  # an encoded slash stays one segment
    ("/files/.../raw", "/v1/a%20b/files/.../raw"),  # three dots are a name, not a dot segment
    ("/files/%252e%252e/raw", "/v1/a%20b/files/%252e%252e/raw"),  # the text `%2e%2e` stays text
    ("/files/.x/raw", "/v1/a%20b/files/.x/raw"),
    ("/files/x/raw?q=../../etc", "/v1/a%20b/files/x/raw?q=..%2F..%2Fetc"),
    ("/files/x/raw?q=%2e%2e%2F", "/v1/a%20b/files/x/raw?q=..%2F"),
    ("/files/a%5Cb/raw", "/v1/a%20b/files/a%5Cb/raw"),  # a backslash would be a `/` to the client
    ("/odd/n", "/v1/a%20b/odd/x%60y%5Cz/n?mode=it%27s%20%22on%22"),  # the file's constants, pre-encoded
])
def test_the_wire_target_is_exactly_the_plans(wire, upstream, target, wire_target):
    status, got = sent(wire, upstream, target)
    assert status == 200 and got == wire_target


@pytest.mark.parametrize("target", ["/files/%2e%2e/raw", "/files/.%2E/raw", "/files/%2E/raw", "/files/..%2Fx/raw",
                                    "/files/x%2F..%2F..%2Fy/raw", "/files/x%5C..%5Cy/raw", "/files/x%2F./raw"])
def test_dot_segments_in_any_encoding_never_reach_the_upstream(wire, upstream, target):
    status, got = sent(wire, upstream, target)
    assert status in (400, 404) and got is None


def test_a_refused_value_is_named_after_the_callers_input_not_the_upstream_parameter(wire, upstream):
    upstream.script()
    assert sent(wire, upstream, "/docs/readme") == (200, "/v1/a%20b/files/readme/raw")
    upstream.requests.clear()
    response = http_request("GET", wire.url + "/docs/%2e%2e")
    body = response.json()
    assert response.status == 400 and body["errors"][0]["name"] == "file" and body["errors"][0]["in"] == "path", body
    assert "(sent upstream as 'name')" in body["detail"] and upstream.requests == []


def test_mcp_arguments_reach_the_wire_encoded_and_dots_are_refused(wire, upstream):
    from mcp import Client

    async def call(name: str):
        async with Client(f"http://127.0.0.1:{wire.ports['tools']}/mcp") as client:
            return await client.call_tool("get-file", {"name": name})

    for name, wire_target in [("%2e%2e", "/v1/a%20b/files/%252e%252e/raw"), ("a/b", "/v1/a%20b/files/a%2Fb/raw")]:
        upstream.script()
        result = anyio.run(call, name)
        assert not result.is_error and upstream.requests[-1].target == wire_target
    for name in ["..", ".", "../x", "x/..", "x\\.."]:
        upstream.script()
        result = anyio.run(call, name)
        assert result.is_error and "not allowed as a path value" in result.content[0].text and upstream.requests == []


def test_a_url_the_client_would_rewrite_is_not_sent():
    for url in ["http://h/a/%2e%2e/b", "http://h/a/./b", "http://h/a\\b", "http://h/a b"]:
        with pytest.raises(InputError, match="would be rewritten"):
            _wire_url(url)
    assert str(_wire_url("HTTP://LOCALHOST:80/a%2Fb?q=%27")) == "http://localhost/a%2Fb?q=%27"  # host spelling: harmless


@pytest.mark.parametrize("base, path, fragment", [
    ("http://h/api/../v2", "/x", "baseUri of consumes 'up' has a '..' segment"),
    ("http://h/api", "/x/%2E%2e/y", "has a '%2E%2e' segment"),
    ("http://h/api", "/x/./{{id}}", "has a '.' segment"),
])
def test_dot_segments_in_the_file_are_startup_errors(base, path, fragment):
    text = f"""naftiko: 1.0.0-alpha3
capability:
  consumes:
  - {{type: http, namespace: up, baseUri: '{base}', resources: [{{name: r, path: '{path}', operations: [{{name: op, method: GET}}]}}]}}
  exposes:
  - {{type: rest, namespace: api, port: 8080, resources: [{{path: /x, operations: [{{method: GET, call: up.op}}]}}]}}
"""
    d = Diagnostics()
    cap = load_text(text, "cap.yaml", None, d)
    with pytest.raises(CapabilityError) as info:
        compile_plan(cap, resolve_binds(cap, Path.cwd(), allow_missing=True))
    assert fragment in str(info.value) and "write the" in str(info.value)
