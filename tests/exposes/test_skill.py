"""Skill exposure over HTTP through `naftiko run`: catalog, detail, zip download, file contents,
traversal attempts, 404s, authentication, and the startup errors of broken catalogs."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.servers import REPO_ROOT, free_port, http_request, naftiko

pytestmark = pytest.mark.e2e

TOKEN = "skill-token-7a1c"
CAPABILITY = """\
naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys: {SKILL_TOKEN: SKILL_TOKEN}
capability:
  consumes:
  - type: http
    namespace: registry
    baseUri: http://127.0.0.1:9
    resources:
    - name: ships
      path: /ships
      operations:
      - {name: list-ships, method: GET}
      - {name: create-voyage, method: POST}
  exposes:
  - type: rest
    namespace: shipyard-api
    port: 9
    resources:
    - path: /voyages
      operations:
      - {method: POST, name: plan-voyage, description: Plan a voyage., call: registry.create-voyage}
  - type: mcp
    namespace: shipyard-tools
    port: 9
    tools:
    - {name: list-ships, description: List ships in the shipyard., call: registry.list-ships}
  - type: skill
    namespace: shipyard-skills
    port: 9
    description: Shipyard skills.
    authentication: {type: bearer, token: "{{SKILL_TOKEN}}"}
    skills:
    - name: fleet-ops
      description: Fleet management.
      license: Apache-2.0
      argument-hint: "[ship]"
      metadata: {team: ops}
      location: file:///./skills/fleet-ops
      tools:
      - name: list-ships
        description: ""
        from: {sourceNamespace: shipyard-tools, action: list-ships}
      - name: plan-voyage
        description: Plan a voyage over REST.
        from: {sourceNamespace: shipyard-api, action: plan-voyage}
      - name: safety-check
        description: The safety checklist.
        instruction: checks/safety.md
    - name: voyage-ops
      description: Voyage planning (no files).
      tools:
      - {name: plan, description: Plan one., from: {sourceNamespace: shipyard-api, action: plan-voyage}}
"""
FILES = {"SKILL.md": "---\nname: fleet-ops\n---\nUse the tools.\n", "checks/safety.md": "Life vests.\n", "data/ships.json": '{"n": 2}\n'}


def make_capability(root: Path) -> Path:
    folder = root / "skills" / "fleet-ops"
    for rel, text in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    (folder / ".env").write_text("SECRET=1\n")
    (root / "private.txt").write_text("not in the catalog\n")
    os.symlink("../../private.txt", folder / "private.md")
    path = root / "cap.yaml"
    path.write_text(CAPABILITY)
    return path


@pytest.fixture(scope="module")
def skills(tmp_path_factory) -> Iterator[str]:
    path = make_capability(tmp_path_factory.mktemp("skills"))
    port, rest, mcp = free_port(), free_port(), free_port()
    args = ["run", path, "--port", f"shipyard-skills={port}", "--port", f"shipyard-api={rest}", "--port", f"shipyard-tools={mcp}"]
    with naftiko(args, env={"SKILL_TOKEN": TOKEN}, ports_to_wait=[port]):
        yield f"http://127.0.0.1:{port}"


def get(url: str, token: str | None = TOKEN, method: str = "GET"):
    return http_request(method, url, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_catalog_lists_every_skill_with_its_tool_names(skills):
    response = get(f"{skills}/skills")
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"count": 2, "skills": [
        {"name": "fleet-ops", "description": "Fleet management.", "license": "Apache-2.0", "tools": ["list-ships", "plan-voyage", "safety-check"]},
        {"name": "voyage-ops", "description": "Voyage planning (no files).", "tools": ["plan"]},
    ]}


def test_detail_gives_frontmatter_and_where_each_tool_is_invoked(skills):
    detail = get(f"{skills}/skills/fleet-ops").json()
    assert {k: detail[k] for k in ("license", "argument-hint", "metadata")} == {"license": "Apache-2.0", "argument-hint": "[ship]", "metadata": {"team": "ops"}}
    assert detail["tools"] == [
        {"name": "list-ships", "description": "List ships in the shipyard.", "type": "derived",  # the sibling tool's description
         "invocationRef": {"targetNamespace": "shipyard-tools", "action": "list-ships", "mode": "mcp"}},
        {"name": "plan-voyage", "description": "Plan a voyage over REST.", "type": "derived",
         "invocationRef": {"targetNamespace": "shipyard-api", "action": "plan-voyage", "mode": "rest"}},
        {"name": "safety-check", "description": "The safety checklist.", "type": "instruction", "instruction": "checks/safety.md"},
    ]


def test_download_is_a_zip_of_the_folder_without_hidden_files_or_escaping_symlinks(skills):
    response = get(f"{skills}/skills/fleet-ops/download")
    assert response.status == 200 and response.headers["content-type"] == "application/zip"
    assert 'filename="fleet-ops.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
        assert sorted(archive.namelist()) == sorted(FILES)
        assert {name: archive.read(name).decode() for name in archive.namelist()} == FILES


def test_contents_lists_files_and_serves_each(skills):
    listing = get(f"{skills}/skills/fleet-ops/contents").json()
    assert listing == {"name": "fleet-ops", "files": [
        {"path": "SKILL.md", "size": len(FILES["SKILL.md"]), "type": "text/markdown"},
        {"path": "checks/safety.md", "size": len(FILES["checks/safety.md"]), "type": "text/markdown"},
        {"path": "data/ships.json", "size": len(FILES["data/ships.json"]), "type": "application/json"},
    ]}
    safety = get(f"{skills}/skills/fleet-ops/contents/checks/safety.md")
    assert safety.status == 200 and safety.text == "Life vests.\n" and safety.headers["content-type"].startswith("text/markdown")
    assert get(f"{skills}/skills/fleet-ops/contents/data/ships.json").headers["content-type"] == "application/json"


@pytest.mark.parametrize("path,status", [
    ("../../cap.yaml", 400),
    ("%2e%2e/%2e%2e/cap.yaml", 400),
    ("checks%2F..%2F..%2F..%2Fcap.yaml", 400),
    ("private.md", 400),  # a symlink out of the folder
    (".env", 404),  # hidden
    ("checks", 404),  # a folder
    ("missing.md", 404),
])
def test_file_paths_outside_the_folder_are_refused(skills, path, status):
    response = get(f"{skills}/skills/fleet-ops/contents/{path}")
    assert response.status == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "not in the catalog" not in response.text and "SECRET" not in response.text and "SKILL_TOKEN" not in response.text


def test_unknown_skills_routes_and_folders_are_404s(skills):
    unknown = get(f"{skills}/skills/nope")
    assert unknown.status == 404 and "no skill 'nope'; known: fleet-ops, voyage-ops" in unknown.json()["detail"]
    no_folder = get(f"{skills}/skills/voyage-ops/download")
    assert no_folder.status == 404 and "has no `location` folder" in no_folder.json()["detail"]
    assert get(f"{skills}/nowhere").status == 404
    posted = get(f"{skills}/skills", method="POST")
    assert posted.status == 405 and posted.headers["allow"] == "GET, HEAD"


def test_authentication_guards_the_catalog_but_not_the_probes(skills):
    missing, wrong = get(f"{skills}/skills", token=None), get(f"{skills}/skills/fleet-ops/download", token="wrong")
    assert missing.status == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status == 401 and b"PK" not in wrong.body
    assert get(f"{skills}/healthz", token=None).status == 200


BROKEN = [
    ("from: {sourceNamespace: shipyard-tools, action: list-ships}", "from: {sourceNamespace: shipyard-tool, action: list-ships}",
     "`from.sourceNamespace` 'shipyard-tool' is no REST or MCP exposure of this file; did you mean 'shipyard-tools'?", "skill-source"),
    ("from: {sourceNamespace: shipyard-tools, action: list-ships}", "from: {sourceNamespace: shipyard-tools, action: list-ship}",
     "`from.action` 'list-ship' is no tool of 'shipyard-tools'", "skill-source"),
    ("location: file:///./skills/fleet-ops", "location: file:///./skills/fleet", "location 'file:///./skills/fleet' does not exist", "location-not-found"),
    ("instruction: checks/safety.md", "instruction: checks/missing.md", "instruction 'checks/missing.md' is not a file", "location-not-found"),
]


@pytest.mark.parametrize("old,new,message,rule", BROKEN, ids=[f"{b[3]}-{i}" for i, b in enumerate(BROKEN)])
def test_broken_catalogs_stop_run_and_validate_with_their_position(tmp_path, old, new, message, rule):
    path = make_capability(tmp_path)
    path.write_text(CAPABILITY.replace(old, new))
    for args in (["validate", path], ["run", path]):
        result = subprocess.run([sys.executable, "-m", "naftiko_runtime", *map(str, args)], capture_output=True, text=True,
                                timeout=60, cwd=REPO_ROOT, env={**os.environ, "SKILL_TOKEN": TOKEN})
        output = result.stdout + result.stderr
        assert result.returncode == 1 and message in output and f"[{rule}]" in output, output
        assert "cap.yaml:" in output.split(message)[0].splitlines()[-1], output  # the finding starts with file:line:col


def test_a_skill_port_used_by_another_exposure_is_a_startup_error_naming_both(tmp_path):
    path = make_capability(tmp_path)
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "naftiko_runtime", "run", str(path), "--port", f"shipyard-skills={port}",
                             "--port", f"shipyard-api={port}", "--port", "shipyard-tools=0"],
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env={**os.environ, "SKILL_TOKEN": TOKEN})
    assert result.returncode == 1
    assert re.search(rf"cap\.yaml:\d+:\d+: skill exposure 'shipyard-skills' and \S*cap\.yaml:\d+:\d+: REST exposure 'shipyard-api' "
                     rf"both use port {port}", result.stderr), result.stderr


def test_a_loopback_skill_listener_refuses_foreign_hosts_and_origins(skills):
    """DNS rebinding: a page on another site must not read the catalog through a loopback listener."""
    assert http_request("GET", f"{skills}/skills", headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"}).status == 421
    foreign = http_request("GET", f"{skills}/skills", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"})
    assert foreign.status == 403 and foreign.headers["content-type"] == "application/problem+json"
    assert http_request("GET", f"{skills}/skills", headers={"Origin": "http://localhost:3000", "Authorization": f"Bearer {TOKEN}"}).status == 200
