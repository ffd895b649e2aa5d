"""Unknown keys: a near miss is an error with did-you-mean at the typo's own line:col, anything else
a warning, `x-` keys are silent; the symptoms a typo causes name it; `run` refuses with the same text.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from naftiko_runtime.capability.keys import KINDS, near_miss
from naftiko_runtime.check.runner import check_file

ROOT = Path(__file__).resolve().parents[2]

CLEAN = """\
naftiko: 1.0.0-alpha2
info:
  label: Items
  description: Typo tests.
capability:
  consumes:
  - type: http
    namespace: api
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items
      operations:
      - name: create-item
        method: POST
        inputParameters:
        - name: name
          in: body
          required: true
      - name: get-item
        method: GET
        path: /{{id}}
  exposes:
  - type: rest
    namespace: shop
    port: 8080
    resources:
    - path: /items
      operations:
      - method: POST
        name: create
        call: api.create-item
  - type: mcp
    namespace: shop-tools
    port: 9090
    tools:
    - name: get-item
      description: Get one item
      call: api.get-item
"""
STEPS = """\
    - name: get-item-in-steps
      description: Get one item, orchestrated
      steps:
      - type: call
        name: fetch
        call: api.get-item
"""

# (position kind, the line as written in CLEAN + STEPS, the same line with a near miss, the key it meant)
TYPOS = [
    ("top level", "info:\n", "infos:\n", "info"),
    ("consumes", "    baseUri: https://api.example.com", "    baseUrl: https://api.example.com", "baseUri"),
    ("operation", "        method: POST", "        mehtod: POST", "method"),
    ("parameter", "          required: true", "          requried: true", "required"),
    ("exposure", "    port: 8080", "    prot: 8080", "port"),
    ("tool", "      description: Get one item", "      descripton: Get one item", "description"),
    ("step", "        call: api.get-item\n", "        cal: api.get-item\n", "call"),
]
ANCHORS = {"top level": "naftiko: 1.0.0-alpha2\n"}  # a line after which an unknown key stays at that level


def check(tmp_path: Path, text: str, name: str = "cap.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path, check_file(path).diagnostics


def line_col(text: str, needle: str) -> tuple[int, int]:
    before = text[: text.index(needle)]
    line = before.count("\n") + 1
    row = text.splitlines()[line - 1]
    return line, len(row) - len(row.lstrip()) + 1


def test_the_clean_file_has_no_key_findings(tmp_path):
    _, diags = check(tmp_path, CLEAN + STEPS)
    assert not [d for d in diags if d.rule in ("key-typo", "unknown-key")]
    _, diags = check(tmp_path, CLEAN)
    assert not [d for d in diags if d.severity != "note"]


@pytest.mark.parametrize("where,line,typo,meant", TYPOS, ids=[t[0] for t in TYPOS])
def test_a_near_miss_is_an_error_with_did_you_mean_at_its_own_line(tmp_path, where, line, typo, meant):
    assert line in CLEAN + STEPS
    text = (CLEAN + STEPS).replace(line, typo, 1)
    _, diags = check(tmp_path, text)
    [err] = [d for d in diags if d.rule == "key-typo"]
    written = typo.split(":")[0].strip()
    assert err.severity == "error"
    assert f"unknown key `{written}`" in err.message and f"did you mean `{meant}`?" in err.message
    assert (err.pos.line, err.pos.col) == line_col(text, typo.strip("\n"))


@pytest.mark.parametrize("where,line,typo,meant", TYPOS, ids=[t[0] for t in TYPOS])
def test_an_unrelated_key_is_a_warning_and_x_keys_are_silent(tmp_path, where, line, typo, meant):
    anchor = ANCHORS.get(where, line.rstrip("\n") + "\n")
    indent = anchor[: len(anchor) - len(anchor.lstrip())]
    text = (CLEAN + STEPS).replace(anchor, f"{anchor}{indent}flavour: vanilla\n{indent}x-team: payments\n", 1)
    _, diags = check(tmp_path, text)
    found = [d for d in diags if d.rule in ("key-typo", "unknown-key")]
    assert [(d.severity, d.rule) for d in found] == [("warning", "unknown-key")]
    assert "unknown key `flavour`" in found[0].message and "is ignored" in found[0].message
    assert (found[0].pos.line, found[0].pos.col) == line_col(text, "flavour: vanilla")


def test_a_missing_method_names_the_typo_that_caused_it(tmp_path):
    text = CLEAN.replace("        method: POST", "        mehtod: POST", 1)
    _, diags = check(tmp_path, text)
    [warning] = [d for d in diags if d.rule == "missing-method"]
    assert warning.severity == "warning"
    assert "has no `method`; GET is used" in warning.message
    assert f"probably caused by the misspelt key `mehtod` at line {line_col(text, 'mehtod')[0]}" in warning.message


def test_a_consumed_operation_without_method_is_a_warning(tmp_path):
    _, diags = check(tmp_path, CLEAN.replace("        method: GET\n", "", 1))
    [warning] = [d for d in diags if d.rule == "missing-method"]
    assert warning.severity == "warning" and "probably caused" not in warning.message


def test_a_misspelt_collection_is_named_by_the_calls_it_breaks(tmp_path):
    text = (CLEAN + STEPS).replace("      operations:\n      - name: create-item", "      opertions:\n      - name: create-item", 1)
    _, diags = check(tmp_path, text)
    [typo] = [d for d in diags if d.rule == "key-typo"]
    assert "did you mean `operations`?" in typo.message
    unresolved = [d for d in diags if d.rule == "call-unresolved"]
    assert len(unresolved) == 3  # create, get-item, and the step `fetch` of get-item-in-steps
    assert all("probably caused by the misspelt key `opertions`" in d.message for d in unresolved)


def test_requried_is_not_silently_optional(tmp_path):
    _, diags = check(tmp_path, CLEAN.replace("          required: true", "          requried: true", 1))
    assert [d.severity for d in diags if d.rule == "key-typo"] == ["error"]


def test_every_collection_spelling_is_walked(tmp_path):
    """Keyed maps (the Ikanos form) are walked like lists: a typo inside one is found."""
    text = CLEAN.replace("""      operations:
      - name: create-item
        method: POST""", """      operations:
        create-item:
          mehtod: POST""", 1).replace("""        inputParameters:
        - name: name
          in: body
          required: true
      - name: get-item""", """          inputParameters:
            name:
              in: body
              required: true
        get-item:""", 1).replace("""        method: GET
        path: /{{id}}""", """          method: GET
          path: /{{id}}""", 1)
    _, diags = check(tmp_path, text)
    assert [d.message.split(";")[0] for d in diags if d.rule == "key-typo"] == ["unknown key `mehtod` in a consumed operation"]


def test_near_miss_rules():
    known = list(KINDS["consumed-operation"].keys)
    assert near_miss("mehtod", known) == "method"
    assert near_miss("Method", known) == "method"
    assert near_miss("inputParameter", known) == "inputParameters"
    assert near_miss("input_parameters", known) == "inputParameters"
    assert near_miss("opertions", KINDS["consumed-resource"].keys) == "operations"
    assert near_miss("flavour", known) is None
    assert near_miss("id", KINDS["parameter"].keys) is None  # two letters: too short to guess


def test_run_refuses_a_typo_with_the_same_text(tmp_path):
    text = CLEAN.replace("        method: POST", "        mehtod: POST", 1)
    path, diags = check(tmp_path, text)
    [typo] = [d for d in diags if d.rule == "key-typo"]
    done = subprocess.run([sys.executable, "-m", "naftiko_runtime", "run", str(path), "--mock"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert f"{path}:{typo.pos.line}:{typo.pos.col}: error: {typo.message} [key-typo]" in done.stderr
    assert done.stderr.rstrip().endswith(f"run `naftiko validate {path}` to see every finding.")


def _schema_keys(node, acc: set[str]) -> None:
    """Every property name anywhere in a JSON Schema, except inside values that are data."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    acc.add(name)
                    _schema_keys(sub, acc)
            elif key not in ("examples", "default", "const", "enum"):
                _schema_keys(value, acc)
    elif isinstance(node, list):
        for value in node:
            _schema_keys(value, acc)


# Keys the schemas define inside values the walker does not read as format keys: a body's `data`
# and its multipart parts (`filename`, `contentType`), the dialect `workflow` steps (`consume`) and
# `http` exposure paths (`summary`).
NOT_WALKED = {"data", "filename", "contentType", "consume", "summary"}


def test_the_key_table_knows_every_key_of_every_shipped_schema():
    import json

    from naftiko_runtime.capability.keys import EXPOSURE_KINDS, KINDS

    known = {key for kind in [*KINDS.values(), *EXPOSURE_KINDS.values()] for key in kind.keys}
    schemas = sorted((ROOT / "schemas").glob("*.json"))
    assert len(schemas) >= 8  # every version, strict and lenient
    for path in schemas:
        keys: set[str] = set()
        _schema_keys(json.loads(path.read_text()), keys)
        assert keys - known - NOT_WALKED == set(), path.name
