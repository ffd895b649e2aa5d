"""What real files mean: undeclared path placeholders, server-variable base URIs, bodies of any
media type, each against an echo upstream on a real socket (and `validate` saying the same)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from naftiko_runtime.check.runner import check_file
from tests.support.servers import REPO_ROOT, free_port, http_request, naftiko

CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: files
    baseUri: "{scheme}://{host}/api"
    resources:
    - name: file
      path: /files/{{fileId}}
      operations:
      - name: get-file
        method: GET
      - name: put-cbor
        method: PUT
        inputParameters:
        - {name: payload, in: body, type: string, description: The CBOR document, base64}
        body: {type: binary, mediaType: application/cbor, data: "{{payload}}"}
      - name: put-csv
        method: POST
        inputParameters:
        - {name: rows, in: body, type: string}
        body: {type: text, mediaType: text/csv, data: "{{rows}}"}
      - name: put-raw
        method: PATCH
        inputParameters:
        - {name: Content-Type, in: header}
  exposes:
  - type: rest
    namespace: api
    port: 8080
    resources:
    - path: /files
      operations:
      - {method: GET, name: get, call: files.get-file}
      - {method: PUT, name: cbor, call: files.put-cbor}
      - {method: POST, name: csv, call: files.put-csv}
      - {method: PATCH, name: raw, call: files.put-raw, with: {Content-Type: application/xml}}
"""


@pytest.fixture
def capability(tmp_path: Path) -> Path:
    path = tmp_path / "files.yaml"
    path.write_text(CAPABILITY)
    return path


def test_validate_notes_the_implied_input_and_warns_about_server_variables(capability):
    diags = check_file(capability).diagnostics
    assert not [d for d in diags if d.severity == "error"], [str(d) for d in diags]
    implied = [d.message for d in diags if d.rule == "path-param-implied"]
    assert len(implied) == 4 and all("{{fileId}}" in m and "required string path input(s) fileId" in m for m in implied)
    [server] = [d for d in diags if d.rule == "baseuri-server-variables"]
    assert server.severity == "warning"
    assert "{scheme}, {host}" in server.message and "--base-uri files=URL" in server.message


def test_run_refuses_server_variables_naming_base_uri(capability):
    done = subprocess.run([sys.executable, "-m", "naftiko_runtime", "run", str(capability)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 1
    assert "error: baseUri of consumes 'files' has server variables {scheme}, {host} with no value; pass `--base-uri files=URL`" in done.stderr
    assert done.stderr.rstrip().endswith(f"run `naftiko validate {capability}` to see every finding.")


@pytest.fixture
def served(capability, echo):
    port = free_port()
    proc = naftiko(["run", capability, "--port", f"api={port}", "--base-uri", f"files={echo.base_url}/api"], ports_to_wait=[port])
    with proc:
        yield f"http://127.0.0.1:{port}", echo


def test_implied_path_input_is_required_routed_and_documented(served):
    url, echo = served
    r = http_request("GET", f"{url}/files/f%201")
    assert r.status == 200, r.text
    assert echo.last["raw_path"] == "/api/files/f%201"
    spec = json.loads(http_request("GET", f"{url}/openapi.json").text)
    [param] = spec["paths"]["/files/{fileId}"]["get"]["parameters"]
    assert param["in"] == "path" and param["required"] is True and param["schema"]["type"] == "string"


def test_binary_body_is_sent_as_bytes_with_its_media_type(served):
    url, echo = served
    cbor = bytes([0xA2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x02, 0x03, 0xFF, 0x00])
    r = http_request("PUT", f"{url}/files/f1", json_body={"payload": base64.b64encode(cbor).decode()})
    assert r.status == 200, r.text
    assert echo.last["headers"]["content-type"] == "application/cbor"
    assert base64.b64decode(echo.last["body_base64"]) == cbor
    r = http_request("PUT", f"{url}/files/f1", json_body={"payload": "not base64!"})
    assert r.status == 400 and "payload" in r.text and "base64" in r.text


def test_text_bodies_keep_their_bytes_and_declared_type(served):
    url, echo = served
    rows = "id,name\n1,Zoë\n"
    r = http_request("POST", f"{url}/files/f1", json_body={"rows": rows})
    assert r.status == 200, r.text
    assert echo.last["headers"]["content-type"] == "text/csv"
    assert base64.b64decode(echo.last["body_base64"]) == rows.encode()
    xml = '<a b="1">ü</a>'
    r = http_request("PATCH", f"{url}/files/f1", json_body=xml)  # the whole body, a JSON string
    assert r.status == 200, r.text
    assert echo.last["headers"]["content-type"] == "application/xml"
    assert base64.b64decode(echo.last["body_base64"]) == xml.encode()
