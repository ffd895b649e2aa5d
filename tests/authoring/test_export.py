"""`naftiko export openapi`: the document `/openapi.json` serves, valid OpenAPI 3.1 for every REST
exposure of tests/corpus (openapi-spec-validator), and byte-for-byte the served one for the seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from naftiko_runtime.build import build_plan
from naftiko_runtime.errors import StartupError
from naftiko_runtime.exposes.openapi import openapi_document
from tests.support.servers import REPO_ROOT, free_port, http_request, naftiko

CORPUS = sorted((REPO_ROOT / "tests" / "corpus").glob("*.yaml"))
SEED = REPO_ROOT / "capabilities" / "vapi-sessions.yaml"


def exported_documents() -> list[tuple[str, dict]]:
    out = []
    for path in CORPUS:
        try:
            plan = build_plan(path, mock=True)
        except StartupError:
            continue  # `run` refuses it too (tests/test_corpus.py says why); there is nothing to export
        out += [(f"{path.name}:{api.exposure.namespace}", openapi_document(plan, api)) for api in plan.rest]
    return out


def test_every_exported_document_of_the_corpus_is_valid_openapi():
    documents = exported_documents()
    assert len(documents) >= 40  # most corpus files have a REST exposure that compiles
    for name, document in documents:
        try:
            validate(document)
        except Exception as exc:  # noqa: BLE001 - the message names the corpus file
            pytest.fail(f"{name}: {exc}")


def _export(*args: str) -> subprocess.CompletedProcess:
    """No secret in the environment: exporting reads none."""
    env = {k: v for k, v in os.environ.items() if k != "VAPI_API_KEY"}
    return subprocess.run([sys.executable, "-m", "naftiko_runtime", "export", "openapi", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.e2e
def test_export_is_the_document_the_exposure_serves(tmp_path):
    done = _export(str(SEED))
    assert done.returncode == 0, done.stderr
    exported = json.loads(done.stdout)
    validate(exported)
    port, mcp = free_port(), free_port()
    with naftiko(["run", str(SEED), "--mock", "--port", f"sessions-sessions-rest={port}", "--port", f"sessions-sessions-mcp={mcp}"],
                 ports_to_wait=[port]):
        served = http_request("GET", f"http://127.0.0.1:{port}/openapi.json").json()
    assert exported == served
    as_yaml = _export(str(SEED), "--format", "yaml", "-o", str(tmp_path / "api.yaml"))
    assert as_yaml.returncode == 0 and yaml.safe_load((tmp_path / "api.yaml").read_text()) == served


def test_export_errors(tmp_path):
    unknown = _export(str(SEED), "--exposure", "nope")
    assert unknown.returncode == 2
    assert "--exposure nope: no REST exposure of that name; known: sessions-sessions-rest" in unknown.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("naftiko: 1.0.0-alpha2\ncapability:\n  exposes: [\n")
    failed = _export(str(broken))
    assert failed.returncode == 1 and "broken.yaml:4:1: error: invalid YAML" in failed.stderr and "naftiko validate" in failed.stderr
