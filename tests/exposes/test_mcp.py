"""MCP exposure: tools derived from the file, argument checks, results, transports, the corpus.

In-process tests drive the SDK server through `Client(server)` against a real echo upstream; the
transport tests start `naftiko run` as a subprocess and talk to it with the SDK's Python client
over streamable HTTP (both protocol eras) and over stdio.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import anyio
import pytest
import yaml
from mcp import Client, MCPError, StdioServerParameters

from naftiko_runtime import __version__
from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.plan import compile_plan
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.exposes.mcp import build_server, security_settings
from naftiko_runtime.exposes.mcp_http import build_app
from naftiko_runtime.errors import ERROR_BODY_LIMIT
from naftiko_runtime.exposes.mcp_tools import Toolset
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability, load_text
from tests.e2e.conftest import API_KEY, MCP_NS, REST_NS, SEED
from tests.support.servers import REPO_ROOT, EchoUpstream, Proc, free_port, http_request, naftiko, serve_asgi

pytestmark = pytest.mark.anyio

TOOLS = [f"vapi-sessioncontroller{op}" for op in ("create", "findallpaginated", "findone", "update", "remove")]
CREATE, LIST, FINDONE, UPDATE, REMOVE = TOOLS
ID_SCHEMA = {"type": "object", "properties": {"id": {"type": "string", "description": "The unique identifier for the resource."}}, "required": ["id"]}


def serve_seed(*extra: str, env: dict[str, str | None] | None = None) -> tuple[Proc, str]:
    """`naftiko run` on the seed, both exposures on free ports; returns (proc, MCP endpoint URL)."""
    mcp, rest = free_port(), free_port()
    proc = naftiko(["run", SEED, "--port", f"{MCP_NS}={mcp}", "--port", f"{REST_NS}={rest}", *extra], env=env, ports_to_wait=[mcp])
    return proc, f"http://127.0.0.1:{mcp}/mcp"


def text_of(result: Any) -> str:
    return "".join(c.text for c in result.content)


# --------------------------------------------------------------------------------------
# In process: a small capability against the echo upstream
# --------------------------------------------------------------------------------------

DEMO = """\
naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys:
    DEMO_KEY: DEMO_KEY
capability:
  consumes:
  - type: http
    namespace: demo
    baseUri: https://demo.invalid
    authentication:
      type: bearer
      token: "{{DEMO_KEY}}"
    resources:
    - name: items
      path: /items
      operations:
      - name: list-items
        method: GET
        inputParameters:
        - {name: limit, in: query, type: integer, description: How many items.}
      - name: get-item
        method: GET
        inputParameters:
        - {name: id, in: path, type: string, required: true, description: The item id.}
  exposes:
  - type: mcp
    namespace: demo-mcp
    port: 9999
    description: Demo tools for tests.
    tools:
    - name: list-items
      label: List items
      description: Lists the items.
      hints: {readOnly: true, openWorld: true}
      call: demo.list-items
      with: {limit: demo-mcp.limit}
      outputParameters:
      - type: array
        mapping: $.items
        items:
          type: object
          properties:
            id: {type: string, mapping: $.id}
    - name: get-item
      description: Gets one item, as the upstream sends it.
      call: demo.get-item
      with: {id: mcp.id}
    - name: get-item-named
      description: Gets one item, reshaped.
      call: demo.get-item
      with: {id: "{{id}}"}
      inputParameters:
      - {name: id, type: string, description: The item id.}
      outputParameters:
      - type: object
        properties:
          name: {type: string, mapping: $.json.name}
          path: {type: string, mapping: $.path}
"""
DEMO_KEY = "demo-secret-7c1e"


def demo_engine(base_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str = DEMO) -> Runtime:
    monkeypatch.setenv("DEMO_KEY", DEMO_KEY)
    d = Diagnostics()
    cap = load_text(text, str(tmp_path / "demo.yaml"), tmp_path, d)
    assert cap is not None and not d.errors, [str(x) for x in d.errors]
    return Runtime(compile_plan(cap, resolve_binds(cap, tmp_path), base_uris={"demo": base_uri}))


@pytest.fixture
async def demo(echo: EchoUpstream, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[tuple[Client, Runtime]]:
    engine = demo_engine(echo.base_url, monkeypatch, tmp_path)
    try:
        async with Client(build_server(engine.plan.mcp[0], engine), mode="legacy") as client:
            yield client, engine
    finally:
        await engine.close()


async def test_server_identity_and_tool_definitions(demo):
    client, engine = demo
    assert (client.server_info.name, client.server_info.version) == ("demo-mcp", __version__)
    assert client.instructions == "Demo tools for tests."
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert list(tools) == ["list-items", "get-item", "get-item-named"]
    listing = tools["list-items"]
    assert listing.title == "List items" and listing.annotations.title == "List items"
    assert (listing.annotations.read_only_hint, listing.annotations.open_world_hint) == (True, True)
    assert listing.annotations.destructive_hint is None and listing.annotations.idempotent_hint is None  # unset stays unset
    assert listing.input_schema == {"type": "object", "properties": {"limit": {"type": "integer", "description": "How many items."}}}
    # An array shape is published wrapped: MCP output schemas describe objects.
    assert listing.output_schema["type"] == "object" and listing.output_schema["properties"]["result"]["type"] == "array"
    assert tools["get-item"].annotations is None and tools["get-item"].output_schema is None and tools["get-item"].title is None
    assert tools["get-item-named"].input_schema["required"] == ["id"]  # MCP inputs are required unless `required: false`


async def test_with_references_and_templates_reach_the_upstream(demo, echo: EchoUpstream):
    client, _ = demo
    echo.respond_with(200, {"items": [{"id": "a", "extra": 1}, {"id": "b"}]})
    listed = await client.call_tool("list-items", {"limit": 2})  # `<ns>.x`; the SDK client checks outputSchema
    assert not listed.is_error and listed.structured_content == {"result": [{"id": "a"}, {"id": "b"}]}
    assert json.loads(text_of(listed)) == listed.structured_content
    assert echo.last["query"] == [["limit", "2"]] and echo.last["headers"]["authorization"] == f"Bearer {DEMO_KEY}"

    got = await client.call_tool("get-item", {"id": "a b/c"})  # `mcp.x`; the raw echo record comes back as is
    assert not got.is_error and got.structured_content["raw_path"] == "/items/a%20b%2Fc"
    assert json.loads(text_of(got)) == got.structured_content

    named = await client.call_tool("get-item-named", {"id": "x1"})  # `{{x}}` template, reshaped output
    assert named.structured_content == {"name": None, "path": "/items/x1"}


async def test_bad_arguments_are_tool_errors_and_nothing_is_sent(demo, echo: EchoUpstream):
    client, engine = demo
    missing = await client.call_tool("get-item", {})
    assert missing.is_error and "'id' is required (string: The item id.)" in text_of(missing)
    wrong = await client.call_tool("list-items", {"limit": "many"})
    assert wrong.is_error and "'limit' must be an integer, got a string" in text_of(wrong)
    runner = Toolset(engine.plan.mcp[0], engine).runners["get-item"]
    not_object = await runner.call(["x"])  # the SDK rejects this on the wire already; the runner does too
    assert not_object.is_error and "must be a JSON object" in text_of(not_object)
    assert echo.received == []


async def test_unknown_tool_is_invalid_params(demo):
    client, _ = demo
    with pytest.raises(MCPError) as err:
        await client.call_tool("no-such-tool", {})
    assert err.value.code == -32602 and "Unknown tool: no-such-tool" in err.value.message


async def test_upstream_errors_carry_status_and_a_capped_body(demo, echo: EchoUpstream):
    client, _ = demo
    echo.respond_with(404, {"message": "no item x", "echo": f"Bearer {DEMO_KEY}"})
    result = await client.call_tool("get-item", {"id": "x"})
    assert result.is_error and result.structured_content is None
    text = text_of(result)
    assert text.startswith("Upstream 'demo' answered HTTP 404 Not Found: ") and "no item x" in text
    assert DEMO_KEY not in text and "Bearer ***" in text

    echo.respond_with(500, "e" * (ERROR_BODY_LIMIT * 3))
    big = text_of(await client.call_tool("get-item", {"id": "x"}))
    assert "HTTP 500 Internal Server Error" in big and len(big) < ERROR_BODY_LIMIT + 200 and "cut at 4,096" in big


async def test_non_json_answer_is_text_only(demo, echo: EchoUpstream):
    client, _ = demo
    echo.respond_with(200, "plain words")
    result = await client.call_tool("get-item", {"id": "x"})
    assert not result.is_error and result.structured_content is None and text_of(result) == "plain words"


async def test_answer_that_breaks_the_declared_shape_is_an_error(demo, echo: EchoUpstream):
    client, _ = demo
    echo.respond_with(200, {"items": "not a list"})
    result = await client.call_tool("list-items", {})
    assert result.is_error and "does not match the tool's declared output shape" in text_of(result)


async def test_unreachable_upstream_names_it(monkeypatch, tmp_path):
    engine = demo_engine(f"http://127.0.0.1:{free_port()}", monkeypatch, tmp_path)
    try:
        async with Client(build_server(engine.plan.mcp[0], engine)) as client:
            result = await client.call_tool("get-item", {"id": "x"})
    finally:
        await engine.close()
    assert result.is_error and "upstream 'demo' could not be reached" in text_of(result)


async def test_an_internal_failure_is_a_safe_result_and_logged(demo, monkeypatch, caplog):
    client, engine = demo
    async def boom(namespace, request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engine, "send", boom)
    with caplog.at_level(logging.ERROR, logger="naftiko.mcp"):
        result = await client.call_tool("get-item", {"id": "x"})
    assert result.is_error and "internal error" in text_of(result) and "secret internals" not in text_of(result)
    assert any(r.name == "naftiko.mcp" and r.exc_info for r in caplog.records)


# --------------------------------------------------------------------------------------
# The HTTP app: routes, methods, DNS-rebinding protection
# --------------------------------------------------------------------------------------

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def seed_app_url() -> Iterator[str]:
    cap = load_capability(REPO_ROOT / SEED)
    engine = Runtime(compile_plan(cap, resolve_binds(cap, REPO_ROOT, allow_missing=True), mock=True))
    with serve_asgi(build_app(engine, engine.plan.mcp[0], "127.0.0.1")) as url:
        yield url


@pytest.mark.parametrize("path", ["/mcp", "/"])
def test_root_and_mcp_answer_json_without_redirects(seed_app_url, path):
    r = http_request("POST", seed_app_url + path, json_body=INIT, headers=JSON_HEADERS)
    assert r.status == 200 and r.headers["content-type"].startswith("application/json"), r.text
    assert r.json()["result"]["serverInfo"]["name"] == MCP_NS
    assert "mcp-session-id" not in r.headers  # stateless


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_served_and_the_405_says_so_honestly(seed_app_url, method):
    r = http_request(method, seed_app_url + "/mcp", headers={"Accept": "text/event-stream"}, timeout=5)
    assert r.status == 405 and r.headers["allow"] == "POST"
    assert r.headers["content-type"] == "application/problem+json" and "POST" in r.json()["detail"]


def test_loopback_listener_refuses_foreign_host_and_origin(seed_app_url):
    port = seed_app_url.rsplit(":", 1)[1]
    post = lambda **h: http_request("POST", seed_app_url + "/mcp", json_body=INIT, headers={**JSON_HEADERS, **h})  # noqa: E731
    assert post(Host=f"evil.example:{port}").status == 421
    assert post(Origin="http://evil.example").status == 403
    assert post(Host=f"localhost:{port}", Origin=f"http://localhost:{port}").status == 200


def test_exposure_authentication_guards_the_endpoint(monkeypatch, tmp_path):
    guarded = DEMO.replace("    description: Demo tools for tests.\n",
                           "    description: Demo tools for tests.\n    authentication:\n      type: bearer\n      token: \"{{DEMO_KEY}}\"\n")
    engine = demo_engine("http://127.0.0.1:9", monkeypatch, tmp_path, guarded)
    with serve_asgi(build_app(engine, engine.plan.mcp[0])) as url:
        assert http_request("POST", url + "/mcp", json_body=INIT, headers=JSON_HEADERS).status == 401
        authorized = {**JSON_HEADERS, "Authorization": f"Bearer {DEMO_KEY}"}
        assert http_request("POST", url + "/", json_body=INIT, headers=authorized).status == 200


def test_other_interfaces_have_no_host_checks():
    assert security_settings("0.0.0.0") is None and security_settings("10.1.2.3") is None
    assert security_settings("::1") is not None and security_settings("localhost") is not None


# --------------------------------------------------------------------------------------
# `naftiko run` subprocesses: streamable HTTP (both eras) and stdio
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_mock() -> Iterator[str]:
    proc, url = serve_seed("--mock", env={"VAPI_API_KEY": None})
    with proc:
        yield url


async def check_seed_tools(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == TOOLS
    by_name = {t.name: t for t in tools}
    assert all(t.title is None for t in tools)  # the seed declares no labels
    hints = {t.name: (t.annotations.read_only_hint, t.annotations.destructive_hint, t.annotations.idempotent_hint) for t in tools}
    assert hints == {CREATE: (False, False, False), LIST: (True, False, True), FINDONE: (True, False, True),
                     UPDATE: (False, False, False), REMOVE: (False, True, True)}
    assert by_name[FINDONE].input_schema == ID_SCHEMA
    assert by_name[CREATE].input_schema["properties"]["body"]["type"] == "object"
    assert by_name[UPDATE].input_schema["required"] == ["body", "id"]
    listing = by_name[LIST].input_schema["properties"]
    assert "limit" in listing and "name" in listing and "required" not in by_name[LIST].input_schema


async def round_trip(client: Client) -> str:
    """create -> findone -> update -> list -> remove -> findone (gone); returns the id."""
    created = await client.call_tool(CREATE, {"body": {"name": "demo", "status": "active"}})
    assert not created.is_error, text_of(created)
    sid = created.structured_content["id"]
    assert json.loads(text_of(created)) == created.structured_content
    found = await client.call_tool(FINDONE, {"id": sid})
    assert found.structured_content["name"] == "demo"
    updated = await client.call_tool(UPDATE, {"id": sid, "body": {"name": "renamed"}})
    assert updated.structured_content["name"] == "renamed" and updated.structured_content["status"] == "active"
    listed = await client.call_tool(LIST, {"name": "renamed"})
    assert [s["id"] for s in listed.structured_content["result"]] == [sid]  # a list is wrapped as {"result": [...]}
    assert not (await client.call_tool(REMOVE, {"id": sid})).is_error
    gone = await client.call_tool(FINDONE, {"id": sid})
    assert gone.is_error and "HTTP 404" in text_of(gone)
    return sid


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_streamable_http_both_protocol_eras(seed_mock, mode):
    async with Client(seed_mock, mode=mode) as client:
        assert (client.protocol_version == "2026-07-28") == (mode == "auto")
        await check_seed_tools(client)
        await round_trip(client)
        with pytest.raises(MCPError) as err:
            await client.call_tool("vapi-nothing", {})
        assert err.value.code == -32602


def stdio_params(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "naftiko_runtime", "run", *args], cwd=str(REPO_ROOT))


async def test_stdio_serves_the_same_tools():
    with anyio.fail_after(30):
        async with Client(stdio_params(SEED, "--stdio", "--mock")) as client:
            assert client.server_info.name == MCP_NS
            await check_seed_tools(client)
            await round_trip(client)


async def test_a_stdio_exposure_runs_on_stdio_without_the_flag(tmp_path: Path):
    doc = yaml.safe_load((REPO_ROOT / SEED).read_text())
    exposure = next(e for e in doc["capability"]["exposes"] if e["type"] == "mcp")
    exposure.pop("port")
    exposure["transport"] = "stdio"
    doc["capability"]["exposes"] = [exposure]
    path = tmp_path / "stdio.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with anyio.fail_after(30):
        async with Client(stdio_params(str(path), "--mock")) as client:
            assert [t.name for t in (await client.list_tools()).tools] == TOOLS


async def test_client_configurations_in_examples_start_the_server():
    entries = [json.loads((REPO_ROOT / "examples" / f).read_text())["mcpServers"]["vapi-sessions"]
               for f in ("claude-desktop.json", "cursor-mcp.json")]
    assert entries[0] == entries[1]
    entry = entries[0]
    placeholder = "/ABSOLUTE/PATH/TO/naftiko-runtime"
    assert entry["args"] == ["run", f"{placeholder}/{SEED}", "--stdio"] and set(entry["env"]) == {"VAPI_API_KEY"}
    command = shutil.which(entry["command"])
    prefix = [command] if command else [sys.executable, "-m", "naftiko_runtime"]
    args = [*prefix[1:], *(a.replace(placeholder, str(REPO_ROOT)) for a in entry["args"])]
    with anyio.fail_after(30):  # listing tools sends nothing upstream, so the placeholder key is enough
        async with Client(StdioServerParameters(command=prefix[0], args=args, env=entry["env"], cwd="/")) as client:
            assert [t.name for t in (await client.list_tools()).tools] == TOOLS


async def test_missing_argument_sends_nothing_upstream(echo: EchoUpstream):
    proc, url = serve_seed("--base-uri", f"sessions-sessions={echo.base_url}", env={"VAPI_API_KEY": API_KEY})
    with proc:
        async with Client(url) as client:
            result = await client.call_tool(FINDONE, {})
            assert result.is_error and "'id' is required" in text_of(result)
            assert echo.received == []
            sid = str(uuid.uuid4())
            ok = await client.call_tool(FINDONE, {"id": sid})  # the echo record comes back as the result
    assert not ok.is_error and ok.structured_content["raw_path"] == f"/session/{sid}"
    assert echo.last["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert ok.structured_content["headers"]["authorization"] == "Bearer ***"  # an echoed credential is masked
    assert len(echo.received) == 1
    assert API_KEY not in proc.stderr_text()


# --------------------------------------------------------------------------------------
# The corpus: every file with an MCP exposure lists its tools, and every tool answers
# --------------------------------------------------------------------------------------

CORPUS = REPO_ROOT / "tests" / "corpus"
MCP_FILES = sorted(p.name for p in CORPUS.glob("*.yaml") if re.search(r"type:\s*['\"]?mcp\b", p.read_text()))
# file -> a fragment of the first error (which names file:line): each is broken as written.
BROKEN = {
    # imports shared/ec2-auto-scaling.yaml, which has unescaped quotes in a description
    "amazon-ec2-auto-scaling__ec2-auto-scaling-management.yaml": "shared/ec2-auto-scaling.yaml:96:202: error: invalid YAML",
    "amazon-fsx__amazon-fsx-file-system-management.yaml": "consumes 'fsx' is missing `baseUri`",
    "amplitude__amplitude-identity-and-privacy.yaml": "GET /v1/users is served twice",  # REST side: getScimUser has no id
    "apache-orc__orc-workflow.yaml": "call 'orc.getFileSchema': consumes 'orc' has no operation 'getFileSchema'",
    "upbound__platform-engineering.yaml": "call 'upbound.list-teams': consumes 'upbound' has no operation 'list-teams'",
}
SAMPLES = {"string": "x1", "integer": 1, "number": 1.5, "boolean": True, "array": ["a"], "object": {"k": "v"}}


def corpus_engine(name: str) -> Runtime:
    """Load and compile on --mock, or raise with the first positioned error as text."""
    path = CORPUS / name
    d = Diagnostics()
    cap = load_capability(path, d)
    if cap is None or d.errors:
        raise AssertionError(str(d.errors[0]))
    try:
        return Runtime(compile_plan(cap, resolve_binds(cap, path.parent, allow_missing=True), mock=True))
    except CapabilityError as exc:
        raise AssertionError(str(exc.diagnostics[0])) from None


def passes_inputs(tool, cap) -> bool:
    """Whether a call can carry caller values: `with` entries, declared inputs, or open consumed parameters."""
    action = tool.tool.action
    op = cap.consumes[action.call[0]].operations[action.call[1]] if action.call else None
    consumed = [p for p in (op.params if op else []) if p.location != "environment" and p.value is None]
    return bool(action.with_ or action.inputs or consumed or (op and "{{" in op.path))


def test_corpus_lists_mcp_files():
    assert len(MCP_FILES) >= 40 and set(BROKEN) <= set(MCP_FILES)


@pytest.mark.parametrize("name", MCP_FILES)
async def test_corpus_tools(name: str):
    if name in BROKEN:
        with pytest.raises(AssertionError) as err:
            corpus_engine(name)
        message = str(err.value)
        assert BROKEN[name] in message and re.search(r"\.ya?ml:\d+:\d+: error: ", message), message
        return
    engine = corpus_engine(name)
    assert engine.plan.mcp, "a file with `type: mcp` yields at least one MCP exposure"
    for api in engine.plan.mcp:
        tools = Toolset(api, engine)
        assert [t.name for t in tools.listing.tools] == [t.name for t in api.exposure.tools]
        for tool, definition in zip(api.tools, tools.listing.tools):
            schema = definition.input_schema
            assert schema["type"] == "object" and len(schema.get("required", [])) == len(set(schema.get("required", [])))
            assert set(schema.get("required", [])) <= set(schema.get("properties", {}))
            if passes_inputs(tool, engine.plan.cap):
                assert schema.get("properties"), f"{tool.tool.name}: its call takes inputs but the schema lists none"
            args = {k: SAMPLES.get(v.get("type"), "x1") for k, v in schema.get("properties", {}).items()}
            result = await tools.runners[definition.name].call(args)  # against the in-process mock upstream
            assert "internal error" not in text_of(result), f"{tool.tool.name}: {text_of(result)}"
            if result.structured_content is not None:
                assert isinstance(result.structured_content, dict)
    await engine.close()
