"""Tests for the JSON Schemas in schemas/ (strict official-alpha2 reconstruction and lenient runtime schema).

No network: the schemas only use internal $refs.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
STRICT_PATH = SCHEMAS / "naftiko-capability-1.0.0-alpha2.strict.json"
LENIENT_PATH = SCHEMAS / "naftiko-capability.json"
CORPUS = Path(__file__).resolve().parent / "corpus"
UNPARSEABLE = {"amazon-ec2-auto-scaling__ec2-auto-scaling.yaml"}  # not YAML at all (tests/test_corpus.py pins why)
ALL_CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))
CORPUS_FILES = [p for p in ALL_CORPUS_FILES if p.name not in UNPARSEABLE]

# shared/corpus/SURVEY.md: the only files that pass the official v1.0.0-alpha2 schema.
STRICT_PASSING = {
    "naftiko-microsoft-outlook-sandbox__microsoft-outlook-calendar-api-consumes.yaml",
    "naftiko-slack-sandbox__slack-admin-api-consumes.yaml",
    "naftiko-youtube-sandbox__youtube-analytics-api-consumes.yaml",
}


# ----------------------------------------------------------------------------- helpers

def _load_schema(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def strict() -> Draft202012Validator:
    return Draft202012Validator(_load_schema(STRICT_PATH))


@pytest.fixture(scope="module")
def lenient() -> Draft202012Validator:
    return Draft202012Validator(_load_schema(LENIENT_PATH))


def _jsonable(node):
    """YAML -> JSON data model: dates become ISO strings, keys become strings."""
    if isinstance(node, dict):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_jsonable(v) for v in node]
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    return node


def _load_yaml(path: Path):
    """Parsed document (JSON data model)."""
    with path.open(encoding="utf-8") as fh:
        return _jsonable(yaml.safe_load(fh))


def test_only_the_known_broken_file_is_unparseable():
    broken = set()
    for path in ALL_CORPUS_FILES:
        try:
            _load_yaml(path)
        except yaml.YAMLError:
            broken.add(path.name)
    assert broken == UNPARSEABLE


def _first_error(validator: Draft202012Validator, doc) -> str | None:
    """'<json path>: <message>' of the most relevant error, or None when the document is valid."""
    error = best_match(validator.iter_errors(doc))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    message = error.message
    if len(message) > 300:  # messages start with the (possibly huge) instance; keep both ends
        message = message[:140] + " ... " + message[-140:]
    return f"{where}: {message}"


def _described_schemas(schema: dict):
    """Yield (pointer, subschema) for every $defs entry and every declared property, at any depth.

    Conditional helper subschemas (if/not and the then/else/allOf/anyOf/oneOf branches that only
    narrow an already-described property) are skipped: they are not what an editor shows.
    """
    def walk(node, pointer, declared):
        if isinstance(node, dict):
            if declared:
                yield pointer, node
            for key, value in node.items():
                if key in ("if", "not", "then", "else", "allOf", "anyOf", "oneOf", "const", "enum",
                           "examples", "default"):
                    continue
                if key in ("properties", "$defs") and isinstance(value, dict):
                    for name, sub in value.items():
                        yield from walk(sub, f"{pointer}/{key}/{name}", True)
                elif isinstance(value, (dict, list)):
                    yield from walk(value, f"{pointer}/{key}", False)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{pointer}/{i}", False)

    yield from walk(schema, "#", False)


# ----------------------------------------------------------------------------- schema files

@pytest.mark.parametrize("path", [STRICT_PATH, LENIENT_PATH], ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path):
    schema = _load_schema(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema.get("$id"), f"{path.name}: missing $id"
    assert schema.get("title"), f"{path.name}: missing title"
    assert schema.get("description"), f"{path.name}: missing description"


@pytest.mark.parametrize("path", [STRICT_PATH, LENIENT_PATH], ids=lambda p: p.name)
def test_every_definition_and_property_has_a_description(path):
    schema = _load_schema(path)
    missing = [pointer for pointer, sub in _described_schemas(schema)
               if isinstance(sub, dict) and not sub.get("description")]
    assert not missing, f"{path.name}: no description at {missing[:10]}"


def test_corpus_is_present():
    assert len(ALL_CORPUS_FILES) >= 59, f"expected the 59-file corpus in {CORPUS}"
    parseable = []
    for path in CORPUS_FILES:
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
            parseable.append(path)
        except yaml.YAMLError:
            pass
    assert len(parseable) >= 58


# ----------------------------------------------------------------------------- strict schema

@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_strict_accepts_exactly_the_survey_files(strict, path):
    doc = _load_yaml(path)
    error = _first_error(strict, doc)
    if path.name in STRICT_PASSING:
        assert error is None, f"strict schema should accept {path.name}; first error: {error}"
    else:
        assert error is not None, f"strict schema should reject {path.name} (SURVEY.md: fails official alpha2)"


OFFICIAL_CAPABILITY = """
naftiko: "1.0.0-alpha2"
info:
  label: Shipyard
  description: Everything the official alpha2 schema allows, in one file.
  tags: [demo]
  created: "2026-01-01"
  modified: "2026-01-02"
  stakeholders:
    - role: owner
      fullName: Ada Lovelace
      email: ada@example.com
binds:
  - namespace: env
    keys:
      REGISTRY_TOKEN: REGISTRY_TOKEN
  - namespace: secrets
    description: local secrets
    location: "file:///./shared/secrets.yaml"
    keys:
      MCP_SERVER_TOKEN: mcp-server-token
capability:
  consumes:
    - namespace: registry
      type: http
      baseUri: "https://registry.example.com/v1"
      description: Ship registry
      inputParameters:
        - name: Registry-Version
          in: header
          value: "2024-01"
      authentication:
        type: apikey
        key: X-API-Key
        value: "{{REGISTRY_TOKEN}}"
        placement: header
      resources:
        - name: ships
          path: /ships
          operations:
            - name: list-ships
              method: GET
              inputParameters:
                - name: status
                  in: query
              outputParameters:
                - name: imo
                  type: string
                  value: $.imo_number
            - name: create-ship
              method: POST
              body:
                type: json
                data: {"name": "{{name}}"}
        - name: ship
          path: "/ships/{{imo}}"
          operations:
            - name: get-ship
              method: GET
              outputRawFormat: xml
            - name: update-ship
              method: PUT
              body: |
                {"name": "{{name}}"}
    - location: ./shared/crew-consumes.yml
      import: crew-api
      as: crew
  exposes:
    - type: rest
      port: 8080
      address: 0.0.0.0
      namespace: shipyard-api
      authentication:
        type: bearer
        token: "{{MCP_SERVER_TOKEN}}"
      resources:
        - path: "/ships/{{imo}}"
          name: ship
          description: One ship
          inputParameters:
            - name: imo
              in: path
              type: string
              description: IMO number
          operations:
            - method: GET
              call: registry.get-ship
              with:
                imo: shipyard-api.imo
                limit: 3
              outputParameters:
                - type: object
                  properties:
                    imo: {type: string, mapping: $.imo}
                    crew:
                      type: array
                      mapping: $.crew
                      items:
                        type: object
                        properties:
                          name: {type: string, mapping: $.name}
                    active: {type: boolean, mapping: $.active}
            - method: POST
              name: enrich-ship
              steps:
                - type: call
                  name: get-ship
                  call: registry.get-ship
                  with: {imo: "{{imo}}"}
                - type: lookup
                  name: find-crew
                  index: get-ship
                  match: imo
                  lookupValue: $.get-ship.imo
                  outputParameters: [name, rank]
              mappings:
                - targetName: ship.crew
                  value: $.find-crew
              outputParameters:
                - name: ship
                  type: object
            - method: PUT
              outputParameters:
                - name: status
                  type: string
                  value: "updated {{imo}}"
            - method: DELETE
              ref: fleet.retire-ship
        - path: "/proxy/{{path}}"
          forward:
            targetNamespace: registry
            trustedHeaders: [Authorization]
    - type: mcp
      namespace: shipyard-tools
      description: Ship tools
      port: 9090
      tools:
        - name: get-ship
          label: Get ship
          description: Get one ship
          hints: {readOnly: true, openWorld: false}
          inputParameters:
            - name: imo
              type: string
              description: IMO number
            - name: verbose
              type: boolean
              description: more output
              required: false
          call: registry.get-ship
          with: {imo: shipyard-tools.imo}
          outputParameters:
            - type: string
              mapping: $.name
        - name: retire-ship
          ref: fleet.retire-ship
        - name: hello
          description: Mock tool
          outputParameters:
            - name: greeting
              type: string
              value: "hello {{who}}"
      resources:
        - name: fleet-docs
          label: Fleet docs
          uri: docs://fleet
          description: Static docs
          location: "file:///./docs"
        - name: ship-card
          label: Ship card
          uri: "ships://{imo}"
          description: A ship
          mimeType: application/json
          call: registry.get-ship
      prompts:
        - name: summarize-ship
          label: Summarize ship
          description: Summarize a ship
          arguments:
            - name: imo
              description: IMO number
          template:
            - role: user
              content: "Summarize {{imo}}"
        - name: from-file
          label: From file
          description: Prompt from a file
          location: "file:///./prompts/p.md"
    - type: mcp
      namespace: shipyard-stdio
      transport: stdio
      tools:
        - name: ping
          description: Mock ping
    - type: skill
      port: 8090
      namespace: shipyard-skills
      description: Skills
      skills:
        - name: ship-ops
          description: Operate ships
          license: Apache-2.0
          location: "file:///./skills/ship-ops"
          allowed-tools: get-ship
          tools:
            - name: get-ship
              description: Get a ship
              from: {sourceNamespace: shipyard-tools, action: get-ship}
            - name: guide
              description: How to
              instruction: guide.md
    - type: control
      port: 9999
      management:
        health: true
        info: true
      observability:
        enabled: true
        traces:
          sampling: 0.5
          propagation: w3c
          local: {enabled: true, buffer-size: 200}
  aggregates:
    - label: Fleet
      namespace: fleet
      functions:
        - name: retire-ship
          description: Retire a ship
          semantics: {safe: false, idempotent: true}
          inputParameters:
            - name: imo
              type: string
              description: IMO number
          call: registry.update-ship
          with: {imo: fleet.imo}
"""


def test_strict_accepts_an_official_capability_using_every_feature(strict, lenient):
    doc = yaml.safe_load(OFFICIAL_CAPABILITY)
    assert _first_error(strict, doc) is None, f"strict: {_first_error(strict, doc)}"
    assert _first_error(lenient, doc) is None, f"lenient: {_first_error(lenient, doc)}"
    doc["naftiko"] = "1.0.0-alpha3"  # alpha3 has its own schema (tests/check/test_strict_versions.py)
    assert "is not one of ['1.0.0-alpha2']" in _first_error(strict, doc)


def _official():
    return yaml.safe_load(OFFICIAL_CAPABILITY)


def _rest(doc):
    return doc["capability"]["exposes"][0]


def _mcp(doc):
    return doc["capability"]["exposes"][1]


def _consumes(doc):
    return doc["capability"]["consumes"][0]


STRICT_BREAKERS = {
    "alpha1 version": lambda d: d.update(naftiko="1.0.0-alpha1"),
    "capability and root consumes": lambda d: d.update(consumes=[copy.deepcopy(_consumes(d))]),
    "description on rest expose": lambda d: _rest(d).update(description="x"),
    "consumed param with type": lambda d: _consumes(d)["inputParameters"][0].update(type="string"),
    "templated baseUri": lambda d: _consumes(d).update(baseUri="{{BASE_URL}}/v1"),
    "bearer with value": lambda d: _rest(d)["authentication"].update(value="x"),
    "apikey placement cookie": lambda d: _consumes(d)["authentication"].update(placement="cookie"),
    "object output without properties": lambda d: _mcp(d)["tools"][0].update(
        outputParameters=[{"type": "object", "mapping": "$."}]),
    "named mapped output": lambda d: _mcp(d)["tools"][0]["outputParameters"][0].update(name="x"),
    "exposed param with required": lambda d: _rest(d)["resources"][0]["inputParameters"][0].update(
        required=True),
    "exposed param without in": lambda d: _rest(d)["resources"][0]["inputParameters"][0].pop("in"),
    "tool name with underscore": lambda d: _mcp(d)["tools"][0].update(name="get_ship"),
    "mcp http without port": lambda d: _mcp(d).pop("port"),
    "mcp stdio with port": lambda d: d["capability"]["exposes"][2].update(port=1234),
    "lowercase method": lambda d: _rest(d)["resources"][0]["operations"][0].update(method="get"),
    "operation-level path": lambda d: _consumes(d)["resources"][0]["operations"][0].update(path="/x"),
    "unknown auth type": lambda d: _consumes(d)["authentication"].update(type="oauth1"),
    "http expose type": lambda d: _rest(d).update(type="http"),
    "call and steps together": lambda d: _rest(d)["resources"][0]["operations"][1].update(
        call="registry.get-ship"),
}


@pytest.mark.parametrize("name", sorted(STRICT_BREAKERS))
def test_strict_rejects_dialect_forms(strict, name):
    doc = _official()
    STRICT_BREAKERS[name](doc)
    assert _first_error(strict, doc) is not None, f"strict schema should reject: {name}"


# ----------------------------------------------------------------------------- lenient schema

@pytest.mark.parametrize("path", CORPUS_FILES + [ROOT / "capabilities" / "vapi-sessions.yaml"],
                         ids=lambda p: p.name)
def test_lenient_accepts_every_parseable_file(lenient, path):
    doc = _load_yaml(path)
    error = _first_error(lenient, doc)
    assert error is None, f"lenient schema should accept {path.name}; first error: {error}"


MINIMAL = """
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: https://api.example.com
      resources:
        - name: items
          path: /items/{id}
          operations:
            - name: get-item
              method: GET
  exposes:
    - type: rest
      port: 8080
      namespace: rest
      resources:
        - path: /items/{id}
          operations:
            - method: GET
              call: api.get-item
    - type: mcp
      port: 9090
      namespace: tools
      tools:
        - name: get-item
          description: Get an item
          call: api.get-item
"""


def _minimal():
    return yaml.safe_load(MINIMAL)


LENIENT_ACCEPTS = {
    "lowercase method": lambda d: d["capability"]["exposes"][0]["resources"][0]["operations"][0].update(
        method="get"),
    "mixed-case method": lambda d: d["capability"]["consumes"][0]["resources"][0]["operations"][0].update(
        method="Patch"),
    "alpha1": lambda d: d.update(naftiko="1.0.0-alpha1"),
    "alpha3": lambda d: d.update(naftiko="1.0.0-alpha3"),
    "templated baseUri": lambda d: d["capability"]["consumes"][0].update(baseUri="{{BASE_URL}}/v1"),
    "oauth1 auth": lambda d: d["capability"]["consumes"][0].update(
        authentication={"type": "oauth1", "consumerKey": "{{K}}", "signingKey": "{{S}}"}),
    "aws-sig-v4 auth": lambda d: d["capability"]["consumes"][0].update(
        authentication={"type": "aws-sig-v4", "region": "us-east-1"}),
    "hmac auth": lambda d: d["capability"]["consumes"][0].update(authentication={"type": "hmac"}),
    "digest auth": lambda d: d["capability"]["consumes"][0].update(
        authentication={"type": "digest", "username": "u", "password": "p"}),
    "bearer key/value/placement": lambda d: d["capability"]["consumes"][0].update(
        authentication={"type": "bearer", "key": "Authorization", "value": "Bearer {{T}}",
                        "placement": "header"}),
    "apiKey spelling in cookie": lambda d: d["capability"]["consumes"][0].update(
        authentication={"type": "apiKey", "key": "sid", "value": "{{T}}", "placement": "cookie"}),
    "unknown extra keys": lambda d: d["capability"]["exposes"][0].update(x_vendor={"a": 1}),
    "shared consumes file": lambda d: (d.pop("capability"), d.update(consumes=[
        {"namespace": "api", "type": "http", "baseUri": "https://x", "resources": []}])),
}


@pytest.mark.parametrize("name", sorted(LENIENT_ACCEPTS))
def test_lenient_accepts_dialect_forms(lenient, name):
    doc = _minimal()
    LENIENT_ACCEPTS[name](doc)
    error = _first_error(lenient, doc)
    assert error is None, f"lenient schema should accept {name}; first error: {error}"


def _set_tool(doc, tool):
    doc["capability"]["exposes"][1]["tools"] = [tool]


LENIENT_REJECTS = {
    "root is a list": lambda d: [d],
    "root is a string": lambda d: "naftiko: 1.0.0-alpha2",
    "missing naftiko": lambda d: {k: v for k, v in d.items() if k != "naftiko"},
    "naftiko 2.0 (number)": lambda d: dict(d, naftiko=2.0),
    "naftiko 2.0.0": lambda d: dict(d, naftiko="2.0.0"),
    "capability not an object": lambda d: dict(d, capability=["exposes"]),
    "neither capability nor consumes": lambda d: {"naftiko": d["naftiko"]},
    "exposes not a list": lambda d: (d["capability"].update(
        exposes=d["capability"]["exposes"][0]), d)[1],
    "method FETCH": lambda d: (d["capability"]["exposes"][0]["resources"][0]["operations"][0].update(
        method="FETCH"), d)[1],
    "consumed method FETCH": lambda d: (d["capability"]["consumes"][0]["resources"][0]["operations"][0].update(
        method="fetch"), d)[1],
    "tool with no name": lambda d: (_set_tool(d, {"description": "no name", "call": "api.get-item"}), d)[1],
    "tool with empty name": lambda d: (_set_tool(d, {"name": "", "call": "api.get-item"}), d)[1],
    "expose type grpc": lambda d: (d["capability"]["exposes"][0].update(type="grpc"), d)[1],
    "expose without type": lambda d: (d["capability"]["exposes"][0].pop("type"), d)[1],
    "tools not a list": lambda d: (d["capability"]["exposes"][1].update(tools={"name": "x"}), d)[1],
    "port not a number": lambda d: (d["capability"]["exposes"][0].update(port="eighty"), d)[1],
    "unknown auth type": lambda d: (d["capability"]["consumes"][0].update(
        authentication={"type": "magic"}), d)[1],
    "hints not booleans": lambda d: (d["capability"]["exposes"][1]["tools"][0].update(
        hints={"readOnly": "yes"}), d)[1],
}


@pytest.mark.parametrize("name", sorted(LENIENT_REJECTS))
def test_lenient_rejects_broken_documents(lenient, name):
    doc = LENIENT_REJECTS[name](_minimal())
    assert _first_error(lenient, doc) is not None, f"lenient schema should reject: {name}"


def test_minimal_document_is_valid_lenient(lenient):
    assert _first_error(lenient, _minimal()) is None, _first_error(lenient, _minimal())
