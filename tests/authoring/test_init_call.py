"""`naftiko init` and `naftiko call`, run as a user runs them: subprocesses in a fresh directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from naftiko_runtime.authoring.init import init_command
from tests.support.servers import REPO_ROOT


def naftiko(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environment.get("PYTHONPATH", "")])
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "naftiko_runtime", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=environment, input=stdin)


@pytest.fixture(scope="module")
def starter(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("starter") / "weather-api"
    where.mkdir()
    done = naftiko("init", "--base-uri", "https://api.weather.example/v1", cwd=where)
    assert done.returncode == 0, done.stderr
    assert "wrote capability.yaml. Next: `naftiko run capability.yaml --mock`; set WEATHER_API_API_KEY" in done.stderr
    return where / "capability.yaml"


def test_init_writes_a_commented_starter_that_validates_clean(starter):
    text = starter.read_text()
    assert text.startswith("# Weather Api: a starter capability written by `naftiko init`.")
    assert "baseUri: https://api.weather.example/v1" in text and "token: \"{{WEATHER_API_API_KEY}}\"" in text
    done = naftiko("validate", str(starter), cwd=starter.parent)
    assert done.returncode == 0 and "1 file, 0 errors, 0 warnings" in done.stdout, done.stdout


def test_init_does_not_overwrite(starter):
    again = naftiko("init", cwd=starter.parent)
    assert again.returncode == 1 and "capability.yaml exists; pass --force" in again.stderr


def test_init_asks_on_a_terminal(tmp_path):
    answers = iter(["crm", "https://crm.example.com", "apikey", ""])
    args = Namespace(file=str(tmp_path / "crm.yaml"), name=None, base_uri=None, auth=None, env=None, version=None, force=False)
    assert init_command(args, read=lambda prompt: next(answers), interactive=True) == 0
    text = (tmp_path / "crm.yaml").read_text()
    assert "namespace: crm" in text and "key: X-API-Key" in text and "CRM_API_KEY: CRM_API_KEY" in text


def test_init_refuses_bad_flags(tmp_path):
    done = naftiko("init", "--name", "Bad Name", cwd=tmp_path)
    assert done.returncode == 2 and "--name Bad Name: use lower-case letters, digits and '-'" in done.stderr


def test_call_runs_one_tool_against_the_mock_and_prints_json(starter):
    created = naftiko("call", "capability.yaml", "create-item", "name=umbrella", 'tags=["rain"]', "--mock", cwd=starter.parent)
    assert created.returncode == 0, created.stderr
    item = json.loads(created.stdout)
    assert item["name"] == "umbrella" and item["tags"] == ["rain"] and item["id"]
    listed = naftiko("call", "capability.yaml", "weather-api-rest.list-items", "limit=5", "--mock", cwd=starter.parent)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []  # a fresh process: a fresh mock store


def test_call_input_errors_read_like_the_rest_exposure(starter):
    wrong = naftiko("call", "capability.yaml", "list-items", "limit=many", "--mock", cwd=starter.parent)
    assert wrong.returncode == 1 and wrong.stdout == ""
    problem = json.loads(wrong.stderr)
    assert problem["status"] == 400 and problem["detail"] == "'limit' (query) must be an integer, got 'many'"
    missing = naftiko("call", "capability.yaml", "create-item", "--mock", cwd=starter.parent)
    assert missing.returncode == 1 and json.loads(missing.stderr)["detail"] == "'name' (body) is required (string: The item's name.)"


def test_call_names_what_exists(starter):
    unknown = naftiko("call", "capability.yaml", "delete-everything", "--mock", cwd=starter.parent)
    assert unknown.returncode == 2
    assert "'delete-everything' is not a tool or REST operation of this capability; known: create-item, get-item, list-items" in unknown.stderr
    bad_input = naftiko("call", "capability.yaml", "get-item", "idd=1", "--mock", cwd=starter.parent)
    assert bad_input.returncode == 2 and "'tool 'get-item'' has no input 'idd'; its inputs: id" not in bad_input.stderr
    assert "has no input 'idd'; its inputs: id" in bad_input.stderr


def test_call_against_a_real_upstream_and_its_errors(starter, echo):
    base = ["--base-uri", f"weather-api={echo.base_url}"]
    missing = naftiko("call", "capability.yaml", "get-item", "id=42", *base, cwd=starter.parent)
    assert missing.returncode == 1 and "WEATHER_API_API_KEY: environment variable 'WEATHER_API_API_KEY' is not set" in missing.stderr
    key = {"WEATHER_API_API_KEY": "secret-1"}
    ok = naftiko("call", "capability.yaml", "get-item", "id=007", *base, cwd=starter.parent, env=key)
    assert ok.returncode == 0, ok.stderr
    assert echo.last["path"] == "/items/007" and echo.last["headers"]["authorization"] == "Bearer secret-1"
    echo.respond_with(404, {"message": "no item 9"})
    gone = naftiko("call", "capability.yaml", "get-item", "id=9", *base, cwd=starter.parent, env=key)
    assert gone.returncode == 1 and "upstream 'weather-api' answered HTTP 404" in gone.stderr and '"no item 9"' in gone.stderr
