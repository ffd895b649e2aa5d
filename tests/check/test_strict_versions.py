"""`validate --strict` checks a file against the official schema of its own version; a key renamed
between versions, used in the wrong one, is reported with the name that version uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from naftiko_runtime.check.runner import check_file

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
PAIR = ROOT / "tests" / "fixtures" / "versions"

KNOWN_GOOD = {
    "1.0.0-alpha1": "naftiko: 1.0.0-alpha1\ninfo: {label: Ships, description: Ships.}\ncapability:\n  consumes:\n  - namespace: registry\n    type: http\n    baseUri: https://registry.example.org\n    resources:\n    - name: ships\n      path: /ships\n      operations:\n      - {name: list-ships, method: GET}\n  exposes:\n  - type: mcp\n    namespace: tools\n    port: 3001\n    tools:\n    - {name: list-ships, description: List ships., call: registry.list-ships}\n",
    "1.0.0-alpha2": None,  # tests/fixtures/versions/shipyard-alpha2.yaml
    "1.0.0-alpha3": "ikanos: 1.0.0-alpha4\ninfo: {display: Ships, description: Ships.}\ncapability:\n  consumes:\n  - namespace: registry\n    type: http\n    baseUri: https://registry.example.org\n    resources:\n      ships:\n        path: /ships\n        operations:\n          list-ships: {method: GET, tags: [read]}\n  exposes:\n  - type: mcp\n    namespace: tools\n    port: 3001\n    tools:\n      list-ships: {description: List ships., call: registry.list-ships}\n",
    "1.0.0-beta1": "ikanos: 1.0.0-beta2\ninfo: {display: Photos, description: Photos.}\ncapability:\n  consumes:\n  - namespace: photos\n    type: http\n    baseUri: https://photos.example.org\n    resources:\n      photo:\n        path: /photos/{{id}}\n        operations:\n          get-photo:\n            method: GET\n            outputRawFormat: binary\n            maxBinarySize: 5MiB\n            inputParameters: {id: {in: path}}\n  exposes:\n  - type: mcp\n    namespace: tools\n    port: 3001\n    maxBinarySize: 10MiB\n    tools:\n      get-photo: {description: One photo., call: photos.get-photo}\n",
    "1.0.0-beta4": None,  # tests/fixtures/versions/photos-beta4.yaml
}


def check(tmp_path: Path, text: str | None, version: str):
    if text is None:
        path = PAIR / ("shipyard-alpha2.yaml" if version == "1.0.0-alpha2" else "photos-beta4.yaml")
    else:
        path = tmp_path / "cap.yaml"
        path.write_text(text)
    return [d for d in check_file(path, strict=True).diagnostics if d.severity == "error"]


@pytest.mark.parametrize("version", list(KNOWN_GOOD))
def test_a_known_good_file_of_each_schema_version_passes_strict(tmp_path, version):
    assert check(tmp_path, KNOWN_GOOD[version], version) == []


def test_every_beta4_fixture_and_shared_file_passes_the_beta4_schema():
    for path in sorted(PAIR.rglob("*beta4*.yaml")) + sorted((PAIR / "shared").glob("*.yaml")):
        if "alpha2" in path.name:
            continue
        errors = [str(d) for d in check_file(path, strict=True).diagnostics if d.severity == "error"]
        assert errors == [], path


@pytest.mark.parametrize("version,old,new,message", [
    ("1.0.0-alpha3", "display: Ships", "label: Ships", "rename `label` to `display`"),
    ("1.0.0-alpha3", "list-ships: {description: List ships., call: registry.list-ships}",
     "list-ships: {name: list-ships, description: List ships., call: registry.list-ships}", "an entry's key is its name"),
    ("1.0.0-alpha3", "ikanos: 1.0.0-alpha4", "naftiko: 1.0.0-alpha4", "rename `naftiko` to `ikanos`"),
    ("1.0.0-alpha1", "label: Ships", "display: Ships", "rename `display` to `label`"),
    ("1.0.0-alpha1", "{name: list-ships, method: GET}", "{name: list-ships, method: GET, tags: [read]}", "`tags` exist from 1.0.0-alpha3 on"),
    ("1.0.0-alpha3", "list-ships: {method: GET, tags: [read]}", "list-ships: {method: GET, outputMediaType: text/csv}", "`outputMediaType` exists from 1.0.0-beta1 on"),
    ("1.0.0-beta1", "    maxBinarySize: 10MiB\n", "    maxBinarySize: 10MiB\n    ttlMs: 1000\n", "`ttlMs` exists from 1.0.0-beta4 on"),
])
def test_a_renamed_or_newer_key_is_named_as_the_files_version_spells_it(tmp_path, version, old, new, message):
    text = KNOWN_GOOD[version]
    assert old in text
    errors = check(tmp_path, text.replace(old, new), version)
    assert any(message in d.message and d.rule == "strict-schema" for d in errors), [str(d) for d in errors]


def test_a_list_where_an_ikanos_version_keys_by_name_names_the_fix(tmp_path):
    text = KNOWN_GOOD["1.0.0-alpha3"].replace("      list-ships: {description: List ships., call: registry.list-ships}",
                                              "    - {name: list-ships, description: List ships., call: registry.list-ships}")
    errors = check(tmp_path, text, "1.0.0-alpha3")
    assert any("named entries are a map keyed by name (`naftiko migrate` rewrites the file)" in d.message for d in errors), [str(d) for d in errors]


def test_built_schemas_are_up_to_date_and_valid():
    import importlib.util

    spec = importlib.util.spec_from_file_location("schemas_build", SCHEMAS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    built = build.build()
    assert len(built) == 9  # 4 strict (alpha2 is the hand-kept source) + 5 lenient
    for name, text in built.items():
        assert (SCHEMAS / name).read_text() == text, f"schemas/{name} is stale: run python schemas/build.py"
        Draft202012Validator.check_schema(json.loads(text))


def test_lenient_schema_of_a_version_accepts_the_other_spellings_it_reads():
    schema = json.loads((SCHEMAS / "ikanos-capability-1.0.0-beta4.json").read_text())
    doc = yaml.safe_load(KNOWN_GOOD["1.0.0-alpha1"].replace("naftiko: 1.0.0-alpha1", "ikanos: 1.0.0-beta4"))
    assert list(Draft202012Validator(schema).iter_errors(doc)) == []  # lists and `label` in a beta4 file: read (noted)
