"""MCP resources and prompts through real clients: the Python SDK over HTTP and stdio, and the
TypeScript SDK; static files (with traversal attempts), dynamic reads against the echo upstream,
prompts with and without their required arguments, and the startup errors of broken declarations.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from mcp import Client, MCPError, StdioServerParameters

from tests.support.servers import (
    MCP_TS_SDK_DIR,
    NODE_DIR,
    REPO_ROOT,
    EchoUpstream,
    free_port,
    naftiko,
    require_node_tool,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452")
CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: registry
    baseUri: http://127.0.0.1:9
    resources:
    - name: ships
      path: /ships/{{imo}}
      operations:
      - {name: get-ship, method: GET, inputParameters: [{name: imo, in: path}]}
    - name: fleet
      path: /fleet
      operations:
      - {name: list-fleet, method: GET, inputParameters: [{name: year, in: query, type: integer}]}
  exposes:
  - type: mcp
    namespace: shipyard
    port: 9
    tools:
    - {name: get-ship, description: One ship., call: registry.get-ship, with: {imo: shipyard.imo}}
    resources:
    - name: docs
      label: Shipyard docs
      uri: docs://shipyard
      description: The shipyard handbook.
      location: file:///./docs
    - name: fleet
      label: Fleet
      uri: data://fleet
      description: Every ship.
      call: registry.list-fleet
      with: {year: 2024}
    - name: fleet-archive
      uri: archive://fleet
      description: Every ship, as bytes (`binary`, beta1).
      call: registry.list-fleet
      binary: true
    - name: handbook-bytes
      uri: bytes://shipyard
      description: The handbook's files as bytes.
      location: file:///./docs/guides
      binary: true
    - name: ship
      label: Ship
      uri: ship://{imo}/details
      description: One ship by IMO number.
      mimeType: application/json
      call: registry.get-ship
    prompts:
    - name: brief
      label: Ship brief
      description: Brief a captain on a ship.
      arguments:
      - {name: ship, description: The ship's name.}
      - {name: tone, description: How to say it., required: false}
      template:
      - {role: user, content: "Brief me on {{ship}} in a {{tone}} tone."}
      - {role: assistant, content: "Briefing on {{ship}}:"}
    - name: checklist
      label: Checklist
      description: The departure checklist.
      arguments:
      - {name: port, description: Departure port.}
      location: file:///./prompts/checklist.md
"""


def make_capability(root: Path) -> Path:
    """The capability with its folders: docs (a hidden folder, a symlink out, a binary) and a prompt file."""
    (root / "docs" / "guides").mkdir(parents=True)
    (root / "docs" / ".git").mkdir()
    (root / "docs" / "README.md").write_text("# Shipyard\n")
    (root / "docs" / "guides" / "departure.md").write_text("Cast off at dawn.\n")
    (root / "docs" / "logo.png").write_bytes(PNG)
    (root / "docs" / ".git" / "config").write_text("[secret]\n")
    (root / "outside.txt").write_text("not for clients\n")
    os.symlink("../outside.txt", root / "docs" / "escape.md")
    (root / "prompts").mkdir()
    (root / "prompts" / "checklist.md").write_text("Before leaving {{port}}: fuel, crew, charts.\n")
    path = root / "cap.yaml"
    path.write_text(CAPABILITY)
    return path


@pytest.fixture(scope="module")
def capability(tmp_path_factory) -> Path:
    return make_capability(tmp_path_factory.mktemp("content"))


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def server(capability: Path, echo: EchoUpstream) -> Iterator[str]:
    port = free_port()
    with naftiko(["run", capability, "--port", f"shipyard={port}", "--base-uri", f"registry={echo.base_url}"], ports_to_wait=[port]):
        yield f"http://127.0.0.1:{port}/mcp"


async def test_static_files_are_listed_recursively_without_hidden_files_or_escaping_symlinks(server):
    async with Client(server) as client:
        caps = client.server_capabilities
        assert caps.resources is not None and caps.prompts is not None
        listed = {r.uri: r for r in (await client.list_resources()).resources}
    assert sorted(listed) == ["archive://fleet", "bytes://shipyard/departure.md", "data://fleet", "docs://shipyard/README.md",
                              "docs://shipyard/guides/departure.md", "docs://shipyard/logo.png"]
    readme = listed["docs://shipyard/README.md"]
    assert (readme.name, readme.title, readme.mime_type) == ("docs", "Shipyard docs", "text/markdown")
    assert listed["docs://shipyard/logo.png"].mime_type == "image/png"


async def test_templates_list_only_uri_templates(server):
    async with Client(server) as client:
        templates = (await client.list_resource_templates()).resource_templates
    assert [(t.uri_template, t.name, t.title, t.mime_type) for t in templates] == [("ship://{imo}/details", "ship", "Ship", "application/json")]


async def test_static_reads_return_text_and_binary_files(server):
    async with Client(server, mode="legacy") as client:
        text = (await client.read_resource("docs://shipyard/guides/departure.md")).contents[0]
        blob = (await client.read_resource("docs://shipyard/logo.png")).contents[0]
    assert (text.uri, text.mime_type, text.text) == ("docs://shipyard/guides/departure.md", "text/markdown", "Cast off at dawn.\n")
    assert blob.mime_type == "image/png" and base64.b64decode(blob.blob) == PNG


async def test_binary_resources_are_read_as_blobs_whatever_their_media_type(server, echo):
    async with Client(server) as client:
        archive = (await client.read_resource("archive://fleet")).contents[0]
        guide = (await client.read_resource("bytes://shipyard/departure.md")).contents[0]
    assert not hasattr(archive, "text") and json.loads(base64.b64decode(archive.blob))["raw_path"] == "/fleet"
    assert guide.mime_type == "text/markdown" and base64.b64decode(guide.blob) == b"Cast off at dawn.\n"


@pytest.mark.parametrize("uri", [
    "docs://shipyard/../outside.txt",  # dot-dot
    "docs://shipyard/%2e%2e/outside.txt",  # encoded dot-dot
    "docs://shipyard/guides%2F..%2F..%2Foutside.txt",  # encoded slashes
    "docs://shipyard//etc/passwd",  # an absolute path after the prefix
    "docs://shipyard/escape.md",  # a symlink out of the folder
    "docs://shipyard/.git/config",  # hidden
    "docs://shipyard",  # the folder itself
    "docs://other/README.md",  # no such resource
])
async def test_reads_outside_the_folder_are_refused_with_invalid_params(server, uri):
    async with Client(server) as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource(uri)
    assert err.value.error.code == -32602
    assert "not for clients" not in err.value.error.message and "secret" not in err.value.error.message


async def test_dynamic_reads_call_the_upstream_with_the_uri_variables(server, echo):
    async with Client(server) as client:
        fleet = (await client.read_resource("data://fleet")).contents[0]
        ship = (await client.read_resource("ship://IMO%209321483/details")).contents[0]
    assert json.loads(fleet.text)["raw_path"] == "/fleet?year=2024" and fleet.mime_type == "application/json"
    assert ship.uri == "ship://IMO%209321483/details" and ship.mime_type == "application/json"
    assert json.loads(ship.text)["raw_path"] == "/ships/IMO%209321483"  # decoded from the uri, encoded again for the path


async def test_upstream_errors_on_reads_name_the_upstream(server, echo):
    echo.respond_with(404, {"error": "no such ship"}).respond_with(503, "maintenance", times=3)
    async with Client(server) as client:
        with pytest.raises(MCPError) as missing:
            await client.read_resource("ship://IMO-0/details")
        with pytest.raises(MCPError) as failing:
            await client.read_resource("ship://IMO-1/details")
    assert missing.value.error.code == -32602 and "upstream 'registry' answered HTTP 404" in missing.value.error.message
    assert "no such ship" in missing.value.error.message
    assert failing.value.error.code == -32603 and "upstream 'registry'" in failing.value.error.message and "503" in failing.value.error.message


async def test_prompts_render_arguments_once_and_enforce_required_ones(server):
    async with Client(server) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        brief = await client.get_prompt("brief", {"ship": "Northern {{tone}} Star"})
        checklist = await client.get_prompt("checklist", {"port": "Oslo"})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("brief", {"tone": "calm"})
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("nope", {})
    assert [(a.name, a.required) for a in prompts["brief"].arguments] == [("ship", True), ("tone", False)]
    assert prompts["brief"].title == "Ship brief"
    assert [(m.role, m.content.text) for m in brief.messages] == [
        ("user", "Brief me on Northern {{tone}} Star in a  tone."),  # the value is not re-read; optional tone is empty
        ("assistant", "Briefing on Northern {{tone}} Star:"),
    ]
    assert [(m.role, m.content.text) for m in checklist.messages] == [("user", "Before leaving Oslo: fuel, crew, charts.\n")]
    assert missing.value.error.code == -32602 and "'ship' is required" in missing.value.error.message
    assert unknown.value.error.code == -32602 and "brief, checklist" in unknown.value.error.message


async def test_stdio_serves_the_same_resources_and_prompts(capability, echo):
    params = StdioServerParameters(command=sys.executable, args=["-m", "naftiko_runtime", "run", str(capability), "--stdio",
                                                                  "--base-uri", f"registry={echo.base_url}"], cwd=str(REPO_ROOT))
    async with Client(params) as client:
        uris = [r.uri for r in (await client.list_resources()).resources]
        readme = (await client.read_resource("docs://shipyard/README.md")).contents[0]
        ship = (await client.read_resource("ship://IMO-7/details")).contents[0]
        with pytest.raises(MCPError) as refused:
            await client.read_resource("docs://shipyard/%2e%2e/outside.txt")
        prompt = await client.get_prompt("checklist", {"port": "Bergen"})
    assert "docs://shipyard/guides/departure.md" in uris and readme.text == "# Shipyard\n"
    assert json.loads(ship.text)["path"] == "/ships/IMO-7" and refused.value.error.code == -32602
    assert prompt.messages[0].content.text.startswith("Before leaving Bergen")


def test_typescript_sdk_lists_reads_and_gets(server):
    require_node_tool(MCP_TS_SDK_DIR, "The TypeScript MCP SDK (@modelcontextprotocol/sdk)")
    plan = {"read": ["docs://shipyard/README.md", "ship://IMO-9/details", "docs://shipyard/../outside.txt"],
            "prompt": {"name": "brief", "arguments": {"ship": "Aurora", "tone": "dry"}}}
    run = subprocess.run(["node", str(NODE_DIR / "mcp-content.mjs"), server, json.dumps(plan)], capture_output=True, text=True,
                         timeout=60, cwd=NODE_DIR, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert "resources" in out["capabilities"] and "prompts" in out["capabilities"]
    assert {r["uri"] for r in out["resources"]} >= {"docs://shipyard/README.md", "data://fleet"}
    assert [t["uriTemplate"] for t in out["templates"]] == ["ship://{imo}/details"]
    readme, ship, refused = out["reads"]
    assert readme["contents"][0]["text"] == "# Shipyard\n"
    assert json.loads(ship["contents"][0]["text"])["path"] == "/ships/IMO-9"
    assert refused["error"]["code"] == -32602
    assert [m["content"]["text"] for m in out["prompt"]["messages"]] == ["Brief me on Aurora in a dry tone.", "Briefing on Aurora:"]


async def test_an_exposure_without_resources_or_prompts_does_not_announce_them(tmp_path):
    path = tmp_path / "tools-only.yaml"
    text = CAPABILITY.split("    resources:\n    - name: docs")[0]
    path.write_text(text)
    port = free_port()
    with naftiko(["run", path, "--port", f"shipyard={port}"], ports_to_wait=[port]):
        async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
            caps = client.server_capabilities
    assert caps.tools is not None and caps.resources is None and caps.prompts is None


BROKEN = [
    ("location: file:///./docs", "location: file:///./missing", "location 'file:///./missing' does not exist", "location-not-found"),
    ("location: file:///./prompts/checklist.md", "location: file:///./prompts", "is not a file", "location-not-found"),
    ('content: "Brief me on {{ship}} in a {{tone}} tone."', 'content: "Brief me on {{ship} in a tone."', "unbalanced", "prompt-template"),
    ('content: "Briefing on {{ship}}:"', 'content: "Briefing on {{vessel}}:"', "`{{vessel}}` names no argument (declared: ship, tone)", "prompt-template"),
    ("uri: ship://{imo}/details", "uri: ship://details", "its call needs imo, which its uri 'ship://details' does not provide", "resource-inputs"),
]
AT = {"resource-inputs": "- name: ship"}  # reported at the resource, not the line changed


@pytest.mark.parametrize("old,new,message,rule", BROKEN, ids=[b[3] + str(i) for i, b in enumerate(BROKEN)])
def test_broken_declarations_stop_run_and_validate_with_their_position(tmp_path, old, new, message, rule):
    path = make_capability(tmp_path)
    assert old in CAPABILITY
    path.write_text(CAPABILITY.replace(old, new))
    line = next(i for i, text in enumerate(CAPABILITY.splitlines(), 1) if old in text and rule not in AT or text.strip() == AT.get(rule))
    for args in (["validate", path], ["run", path, "--port", "shipyard=0"]):
        result = subprocess.run([sys.executable, "-m", "naftiko_runtime", *map(str, args)], capture_output=True, text=True,
                                timeout=60, cwd=REPO_ROOT)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert message in output and f"[{rule}]" in output and f"cap.yaml:{line}:" in output, output


@pytest.mark.parametrize("old,new,what,first", [
    ("    - name: ship\n      label: Ship", "    - name: fleet\n      label: Ship", "resource 'fleet'", "- name: fleet"),
    ("    - name: checklist", "    - name: brief", "prompt 'brief'", "- name: brief"),
])
def test_a_name_declared_twice_is_reported_at_the_second_with_the_first_line(tmp_path, old, new, what, first):
    path = make_capability(tmp_path)
    text = CAPABILITY.replace(old, new)
    assert text != CAPABILITY
    path.write_text(text)
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == first]
    result = subprocess.run([sys.executable, "-m", "naftiko_runtime", "validate", str(path)], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT)
    rule = "duplicate-" + what.split()[0]
    assert result.returncode == 1
    assert f"cap.yaml:{lines[-1]}:" in result.stdout and f"{what} is declared twice (first at line {lines[-2]})" in result.stdout \
        and f"[{rule}]" in result.stdout, result.stdout
