"""Bad input never crashes the checker: each case is a diagnostic (fast), never a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from naftiko_runtime.check import runner
from naftiko_runtime.check.runner import MAX_CHECK_BYTES, check_file

ALIAS_BOMB = """\
naftiko: 1.0.0-alpha2
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
capability: {exposes: [], consumes: []}
"""

MINIMAL = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
  - {type: http, namespace: api, baseUri: 'https://api.example.com'}
  exposes:
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - {name: ping, description: Ping, outputParameters: [{name: ok, type: string, value: pong}]}
"""


def run(tmp_path: Path, content: str | bytes, name: str = "cap.yaml"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    start = time.perf_counter()
    result = check_file(path)
    return result.diagnostics, time.perf_counter() - start


def rules(diags, severity: str = "error") -> list[str]:
    return [d.rule for d in diags if d.severity == severity]


@pytest.mark.parametrize("content, rule", [
    ("", "yaml-empty"),
    ("   \n\n# only a comment\n", "yaml-empty"),
    ("- a\n- list\n", "structure"),
    ("just a string\n", "structure"),
    ("42\n", "structure"),
    (b"\x00\x01\x02binary\xff\xfe", "file-binary"),
    (b"naftiko: 1.0.0-alpha2\ninfo:\n  label: caf\xe9\n", "file-encoding"),
    ("naftiko: 1.0.0-alpha2\ncapability:\n\tconsumes: []\n", "yaml-syntax"),
    ("naftiko: 1.0.0-alpha2\n---\nnaftiko: 1.0.0-alpha2\n", "yaml-syntax"),
    ("naftiko: [unclosed\n", "yaml-syntax"),
    ("info: {label: x}\n", "version"),
    ("naftiko: 9.9.9\ncapability: {}\n", "version"),
    ("naftiko: 1.0.0-alpha2\ncapability: [1, 2]\n", "structure"),
    ("a: &x [*x]\n", "yaml-recursive-alias"),
    ("[" * 5000 + "]" * 5000 + "\n", "yaml-too-deep"),
], ids=["empty", "blank", "list-root", "string-root", "number-root", "binary", "latin-1", "tab",
        "two-documents", "unclosed", "no-version", "bad-version", "capability-list", "recursive-alias", "deep"])
def test_bad_file_is_one_error_diagnostic(tmp_path, content, rule):
    diags, seconds = run(tmp_path, content)
    assert rule in rules(diags), [str(d) for d in diags]
    assert "internal-error" not in rules(diags)
    assert seconds < 2


def test_invalid_utf8_points_at_the_bad_byte(tmp_path):
    diags, _ = run(tmp_path, b"naftiko: 1.0.0-alpha2\ninfo:\n  label: caf\xe9\n")
    [d] = [d for d in diags if d.rule == "file-encoding"]
    assert (d.pos.line, d.pos.col) == (3, 13) and "0xe9" in d.message


def test_alias_bomb_is_refused_fast(tmp_path):
    diags, seconds = run(tmp_path, ALIAS_BOMB)
    assert rules(diags) == ["yaml-alias-bomb"]
    assert seconds < 2


def test_duplicate_key_is_a_warning(tmp_path):
    diags, _ = run(tmp_path, MINIMAL.replace("    port: 9090\n", "    port: 9090\n    port: 9091\n"))
    [w] = [d for d in diags if d.rule == "yaml-duplicate-key"]
    assert w.severity == "warning" and "duplicate key 'port' (first at line 8)" in w.message and w.pos.line == 9
    assert rules(diags) == []


def test_ten_megabyte_file_is_refused_fast(tmp_path):
    content = "naftiko: 1.0.0-alpha2\ninfo:\n  label: big\n  description: '" + "x" * (10 * 1024 * 1024) + "'\n"
    diags, seconds = run(tmp_path, content)
    assert rules(diags) == ["file-too-large"]
    assert f"{MAX_CHECK_BYTES:,}" in diags[0].message
    assert seconds < 1


def test_odd_scalars_and_keys_do_not_crash_the_schema_check(tmp_path):
    odd = MINIMAL + "x-extra:\n  200: ok\n  true: yes\n  1.5: float\n  null: nothing\n  when: 2024-01-01\n  blob: !!binary aGVsbG8=\n  set: !!set {a, b}\n"
    diags, _ = run(tmp_path, odd)
    assert rules(diags) == [], [str(d) for d in diags]


def test_complex_key_is_a_warning_not_a_crash(tmp_path):
    diags, _ = run(tmp_path, MINIMAL + "? [a, b]\n: value\n")
    assert "yaml-complex-key" in rules(diags, "warning")
    assert rules(diags) == []


def test_a_checker_bug_is_an_internal_error_for_that_file_only(tmp_path, monkeypatch):
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("ping", "boom"))
    real = runner.run_rules

    def flaky(ctx):
        if ctx.cap.file.endswith("bad.yaml"):
            raise RuntimeError("simulated checker bug")
        return real(ctx)

    monkeypatch.setattr(runner, "run_rules", flaky)
    bad_result, good_result = check_file(bad), check_file(good)
    [d] = [d for d in bad_result.diagnostics if d.rule == "internal-error"]
    assert d.severity == "error" and "RuntimeError: simulated checker bug" in d.message
    assert rules(good_result.diagnostics) == []


def test_import_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "naftiko: 1.0.0-alpha2\nconsumes:\n- {location: ./a.yaml, import: api}\n"
        "capability:\n  consumes:\n  - {location: ./a.yaml, import: api}\n  exposes: []\n")
    diags = check_file(tmp_path / "a.yaml").diagnostics
    assert "import-cycle" in rules(diags)
    assert "internal-error" not in rules(diags)


# --------------------------------------------------------------------------- the compiled schema check

def _schema_documents():
    """Every corpus file, plus each made invalid in a way the lenient schema catches."""
    from naftiko_runtime.capability.diagnostics import Diagnostics
    from naftiko_runtime.capability.yamlsource import load_yaml_file
    from naftiko_runtime.check.schema import to_json

    root = Path(__file__).resolve().parents[1] / "corpus"
    for path in sorted([*root.glob("*.yaml"), *root.glob("shared/*.y*ml")]):
        doc = load_yaml_file(path, Diagnostics())
        if doc is None:
            continue
        doc = to_json(doc)
        yield doc
        yield {**doc, "capability": ["not", "a", "mapping"]}
        yield {**doc, "naftiko": "0.9"}


def test_the_compiled_schema_check_agrees_with_jsonschema_on_every_schema():
    """validate skips jsonschema when the compiled validator (jsonschema-rs) finds a file valid; both
    must give the same verdict for that to lose no finding."""
    from jsonschema import Draft202012Validator
    import jsonschema_rs

    schemas = sorted((Path(__file__).resolve().parents[2] / "schemas").glob("*.json"))
    docs = list(_schema_documents())
    assert len(schemas) >= 2 and len(docs) > 150
    seen: set[bool] = set()
    for path in schemas:
        schema = json.loads(path.read_text())
        slow, fast = Draft202012Validator(schema), jsonschema_rs.validator_for(schema)
        verdicts = [(fast.is_valid(doc), slow.is_valid(doc)) for doc in docs]
        assert all(a == b for a, b in verdicts), path.name
        seen |= {a for a, _ in verdicts}
    assert seen == {True, False}  # both verdicts were exercised


@pytest.mark.parametrize("content", [
    "naftiko: 1.0.0-alpha2\ninfo: " + "[" * 120 + "]" * 120 + "\n",
    "naftiko: 1.0.0-alpha2\n" + "".join(" " * i + f"k{i}:\n" for i in range(120)),
], ids=["flow", "block"])
def test_deep_nesting_is_refused_before_the_parser_whatever_its_release(tmp_path, content):
    diags, _ = run(tmp_path, content)
    assert rules(diags) == ["yaml-too-deep"], [str(d) for d in diags]
    assert "more than 100 levels deep" in diags[0].message and diags[0].pos.line == (2 if "[" in content else 102)


def test_nesting_a_real_file_uses_is_read(tmp_path):
    content = "naftiko: 1.0.0-alpha2\ninfo:\n  description: 'brackets [[[[ in text ]]] and {{x}}'\n" + "capability:\n  x-deep: " + "[" * 60 + "]" * 60 + "\n"
    diags, _ = run(tmp_path, content)
    assert "yaml-too-deep" not in rules(diags)
