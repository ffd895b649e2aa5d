"""`naftiko migrate`: every real file moves to beta4 and serves what it served; comments survive;
migrating twice changes nothing; going down to a version that lacks a used feature is an error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability, load_text
from naftiko_runtime.check.runner import check_file
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.migrate import MigrationError, migrate_file, surface
from naftiko_runtime.plan import compile_plan

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
PAIR = ROOT / "tests" / "fixtures" / "versions"
FILES = sorted(p.name for p in CORPUS.glob("*.yaml"))
REFUSED = {  # file -> why migrate refuses it (each says what to fix)
    "amazon-ec2-auto-scaling__ec2-auto-scaling.yaml": "the file has errors",  # not valid YAML
    "amazon-ec2-auto-scaling__ec2-auto-scaling-management.yaml": "the file has errors",  # imports the file above
    "amazon-fsx__amazon-fsx-file-system-management.yaml": "the file has errors",  # no upstream at all
    "vapi-ai__sessions-sessions.yaml": "duplicate key 'name'",  # which of the two `name:` lines is meant?
}
VERSION_HINTS = re.compile(r"rename `|keyed by name|exists from|named entries are")


def comments(text: str) -> list[str]:
    return [m.group(0).strip() for m in re.finditer(r"(?:^|\s)#[^\n]*", text)]


def routes_and_tools(cap, base: Path):
    try:
        plan = compile_plan(cap, resolve_binds(cap, base, allow_missing=True), mock=True)
    except CapabilityError as exc:
        return sorted(re.sub(r"line \d+", "line N", d.message) for d in exc.diagnostics)  # the same refusal, then
    return ([(r.method, r.path, [i.name for i in r.invocation.inputs]) for api in plan.rest for r in api.routes],
            [(t.tool.name, t.invocation.input_schema) for api in plan.mcp for t in api.tools])


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_every_corpus_file_migrates_to_beta4_and_serves_the_same(name, tmp_path):
    path = CORPUS / name
    if name in REFUSED:
        with pytest.raises(MigrationError) as err:
            migrate_file(path, "1.0.0-beta4")
        assert REFUSED[name] in str(err.value) and name in str(err.value)
        return
    result = migrate_file(path, "1.0.0-beta4")
    assert re.search(r'^ikanos: "?1\.0\.0-beta4"?', result.text, re.M) and not re.search(r"^naftiko:", result.text, re.M)
    # it loads, with nothing the normalizer has to note about the version's shape
    migrated = CORPUS / f".migrated-{name}"  # next to the original: imports resolve the same way
    migrated.write_text(result.text)
    try:
        d = Diagnostics()
        after = load_capability(migrated, d)
        assert not d.errors, [str(x) for x in d.errors]
        assert not [x for x in d if x.rule.startswith("version-")], [str(x) for x in d if x.rule.startswith("version-")]
        before = load_capability(path, Diagnostics())
        assert surface(after) == surface(before)
        assert routes_and_tools(after, CORPUS) == routes_and_tools(before, CORPUS)
        # validates; what --strict still reports is not about the version's shape (docs/migrate.md)
        report = check_file(migrated, strict=True).diagnostics
        refusals = lambda diags: sorted(x.rule for x in diags if x.severity == "error" and x.rule != "strict-schema")  # noqa: E731
        assert refusals(report) == refusals(check_file(path).diagnostics)  # what validate refuses, it still refuses
        assert not [str(x) for x in report if x.rule == "strict-schema" and VERSION_HINTS.search(x.message)]
        # idempotent
        again = migrate_file(migrated, "1.0.0-beta4")
        assert again.changes == [] and again.text == result.text
    finally:
        migrated.unlink()
    # every comment of the original is still there
    assert comments(result.text) == comments(result.original) or set(comments(result.original)) <= set(comments(result.text))


def test_the_alpha2_fixture_migrates_to_a_strict_beta4_file_serving_the_same(tmp_path):
    result = migrate_file(PAIR / "shipyard-alpha2.yaml", "1.0.0-beta4")
    out = PAIR / ".migrated.yaml"
    out.write_text(result.text)
    try:
        errors = [str(x) for x in check_file(out, strict=True).diagnostics if x.severity == "error"]
        assert errors == []
        assert surface(load_capability(out, Diagnostics())) == surface(load_capability(PAIR / "shipyard-beta4.yaml", Diagnostics()))
    finally:
        out.unlink()
    assert "`label` -> `display`" in "\n".join(result.changes) and "`location` -> `from`" in "\n".join(result.changes)
    assert result.notes and "shared/registry-alpha2.yaml (1.0.0-alpha2): migrate it too" in result.notes[0]


COMMENTED = """\
# The ships capability.   <- a header comment
naftiko: "1.0.0-alpha2"   # the version
info:
  label: Ships  # shown in catalogs
  description: Ships.
capability:
  consumes:
    - namespace: registry
      type: http
      baseUri: https://registry.example.org/
      auth: {type: bearer, token: "{{TOKEN}}"}
      resources:
        # one resource per path
        - name: ships   # the fleet
          path: /ships
          operations:
            - name: list-ships
              inputParameters:
                - {name: status, in: query}   # optional filter
  exposes:
    - type: mcp
      namespace: tools
      port: 3001
      tools:
        - name: list-ships   # the only tool
          label: List ships
          description: List ships.
          call: registry.list-ships
          with: {status: tools.status}
binds:
  - namespace: env
    keys: {TOKEN: TOKEN}
"""


def test_comments_quotes_and_order_survive_and_dialect_notes_become_edits(tmp_path):
    path = tmp_path / "ships.yaml"
    path.write_text(COMMENTED)
    result = migrate_file(path, "1.0.0-beta4")
    text = result.text
    for comment in comments(COMMENTED):
        assert comment in text, comment
    assert re.match(r'# The ships capability\.   <- a header comment\nikanos: "1\.0\.0-beta4" +# the version\n', text)
    assert re.search(r"display: Ships +# shown in catalogs", text)
    assert "      authentication: {type: bearer, token: \"{{TOKEN}}\"}" in text  # `auth:` written as the official key
    assert "baseUri: https://registry.example.org\n" in text
    assert re.search(r"list-ships: +# the only tool", text) and "          display: List ships" in text
    changes = "\n".join(result.changes)
    assert f"{path}:11: `auth` -> `authentication`" in changes and "added `method: GET`" in changes
    assert list(re.findall(r"^(\w+):", text, re.M)) == ["ikanos", "info", "capability", "binds"]  # key order kept


@pytest.mark.parametrize("source,target,message", [
    ("photos-beta4.yaml", "1.0.0-alpha3", "is binary content"),
    ("photos-beta4.yaml", "1.0.0-beta1", "is MCP cache hints (`ttlMs`, `cacheScope`), which exists from 1.0.0-beta4 on"),
    ("shipyard-beta4.yaml", "1.0.0-alpha2", "`version` is `info.version`, which exists from 1.0.0-beta4 on"),
    ("shipyard-beta4.yaml", "1.0.0-beta1", "`version` is `info.version`"),
])
def test_migrating_down_past_a_used_feature_is_an_error_naming_it(source, target, message):
    with pytest.raises(MigrationError) as err:
        migrate_file(PAIR / source, target)
    assert message in str(err.value) and f"{target} cannot express it" in str(err.value)


def test_migrating_down_rewrites_keyed_maps_and_new_names_to_the_older_shape(tmp_path):
    beta4 = PAIR / "shared" / "registry-beta4.yaml"
    text = beta4.read_text().replace("            tags: [read]\n", "")
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    result = migrate_file(path, "1.0.0-alpha2")
    assert result.text.startswith('naftiko: "1.0.0-alpha2"\n') and "- name: ships" in result.text
    down = tmp_path / "down.yaml"
    down.write_text(result.text)
    assert [str(x) for x in check_file(down, strict=True).diagnostics if x.severity == "error"] == []
    assert surface(load_capability(down, Diagnostics())) == surface(load_capability(path, Diagnostics()))


def naftiko(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "naftiko_runtime", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_stdout_output_file_and_in_place_with_a_backup(tmp_path):
    path = tmp_path / "ships.yaml"
    path.write_text(COMMENTED)
    done = naftiko("migrate", str(path))
    assert done.returncode == 0 and done.stdout.startswith("# The ships capability.")
    lines = done.stderr.splitlines()
    assert any(line.startswith(f"{path}:2: `naftiko` -> `ikanos`") for line in lines)
    assert lines[-1].endswith("change(s), 1.0.0-alpha2 -> 1.0.0-beta4") and path.read_text() == COMMENTED
    out = tmp_path / "out.yaml"
    assert naftiko("migrate", str(path), "-o", str(out)).returncode == 0 and out.read_text() == done.stdout
    assert naftiko("migrate", str(path), "--in-place").returncode == 0
    assert path.read_text() == done.stdout and (tmp_path / "ships.yaml.bak").read_text() == COMMENTED
    again = naftiko("migrate", str(path), "--in-place")
    assert again.returncode == 0 and "0 change(s)" in again.stderr and "(already in that shape)" in again.stderr
    bad = naftiko("migrate", str(path), "--to", "2.0")
    assert bad.returncode == 2 and "--to 2.0 is not a version" in bad.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("naftiko: 1.0.0-alpha2\ncapability: [\n")
    failed = naftiko("migrate", str(broken))
    assert failed.returncode == 1 and "the file has errors; fix them first" in failed.stderr and failed.stdout == ""
