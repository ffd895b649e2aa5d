"""The `naftiko validate` command: paths, output formats, exit codes (as CI and pre-commit use it)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from naftiko_runtime.check import schema
from naftiko_runtime.check.report import github_line, text_line
from naftiko_runtime.cli import main
from naftiko_runtime.capability.diagnostics import Diagnostic, Pos

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"

GOOD = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
  - type: http
    namespace: api
    baseUri: https://api.example.com
    resources:
    - name: items
      path: /items
      operations:
      - {name: list-items, method: GET}
  exposes:
  - type: mcp
    namespace: tools
    port: 9090
    tools:
    - {name: list, description: List items, call: api.list-items}
"""
BAD = GOOD.replace("call: api.list-items", "call: api.list-itemz")
NOTE = GOOD.replace("  - type: http\n    namespace: api", "  - namespace: api")  # no consumes `type`: a note (http is used)


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The installed entry point, as CI runs it (a fresh process, real exit code)."""
    return subprocess.run([sys.executable, "-m", "naftiko_runtime", "validate", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yml").write_text(BAD)
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "nested" / "deeper" / "note.yaml").write_text(NOTE)
    (tmp_path / "nested" / "workflow.yml").write_text("name: ci\non: push\n")  # not a capability
    (tmp_path / "nested" / "README.md").write_text("# naftiko: not yaml\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "skipped.yaml").write_text(BAD)
    return tmp_path


def test_exit_0_when_no_errors(files):
    done = cli("good.yaml", cwd=files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "1 file, 0 errors, 0 warnings"


def test_exit_1_with_one_positioned_line_per_finding(files):
    done = cli("good.yaml", "bad.yml", cwd=files)
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "bad.yml:17:51: error: tool 'list': call 'api.list-itemz': consumes 'api' has no operation 'list-itemz'; did you mean 'list-items'? (it has: list-items) [call-unresolved]"
    assert lines[-1] == "2 files, 1 error, 0 warnings"


def test_exit_2_for_a_missing_path_but_the_others_are_still_checked(files):
    done = cli("good.yaml", "nope.yaml", "nope-*.yaml", cwd=files)
    assert done.returncode == 2
    assert "nope.yaml: no such file or directory" in done.stderr
    assert "nope-*.yaml: no file matches this pattern" in done.stderr
    assert done.stdout.strip().endswith("1 file, 0 errors, 0 warnings")


def test_exit_2_when_a_directory_holds_no_capability(tmp_path):
    (tmp_path / "ci.yml").write_text("on: push\n")
    done = cli(str(tmp_path))
    assert done.returncode == 2 and "no capability files found" in done.stderr


def test_github_format_is_workflow_annotations(files):
    done = cli("--format", "github", "bad.yml", "nested", cwd=files)
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("::error file=bad.yml,line=17,col=51,title=call-unresolved::tool 'list'")
    assert any(line.startswith("::notice file=nested/deeper/note.yaml,line=") for line in lines)
    assert lines[-1] == "2 files, 1 error, 0 warnings"


def test_github_escaping():
    d = Diagnostic("warning", Pos("a,b:c.yaml", 3, 4), "50% done\nnext line", "some-rule")
    assert github_line(d) == "::warning file=a%2Cb%3Ac.yaml,line=3,col=4,title=some-rule::50%25 done%0Anext line"
    assert github_line(Diagnostic("error", Pos("f.yaml"), "m", "r")) == "::error file=f.yaml,title=r::m"
    assert text_line(d) == "a,b:c.yaml:3:4: warning: 50% done\\nnext line [some-rule]"  # one finding, one line


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_format(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, out, _ = run_main(capsys, "--format", "json", ".")
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"] == {"files": 3, "errors": 1, "warnings": 0, "notes": 1}
    assert [f["file"] for f in doc["files"]] == ["bad.yml", "good.yaml", "nested/deeper/note.yaml"]
    first = doc["diagnostics"][0]
    assert first == {"file": "bad.yml", "line": 17, "col": 51, "severity": "error", "rule": "call-unresolved", "message": first["message"]}


def test_directories_are_searched_for_capabilities_only(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, out, _ = run_main(capsys, ".")
    assert "workflow.yml" not in out and "README" not in out and ".hidden" not in out
    assert out.strip().splitlines()[-1] == "3 files, 1 error, 0 warnings"


def test_quiet_hides_notes(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, out, _ = run_main(capsys, "nested")
    assert code == 0 and ": note: " in out and "[dialect-consumes-type]" in out
    code, out, _ = run_main(capsys, "--quiet", "nested")
    assert code == 0 and out.strip() == "1 file, 0 errors, 0 warnings"


def test_globs_are_expanded(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, out, _ = run_main(capsys, "**/*.yaml")
    assert out.strip().splitlines()[-1] == "2 files, 0 errors, 0 warnings"  # good.yaml, nested/deeper/note.yaml


def test_explicit_files_are_checked_unless_only_capabilities(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, out, _ = run_main(capsys, "nested/workflow.yml")
    assert code == 1 and "[version]" in out
    code, out, _ = run_main(capsys, "--only-capabilities", "nested/workflow.yml", "good.yaml")
    assert code == 0 and out.strip() == "1 file, 0 errors, 0 warnings"
    code, out, _ = run_main(capsys, "--only-capabilities", "nested/workflow.yml")
    assert code == 0 and out.strip() == "0 files, 0 errors, 0 warnings"


def test_strict_flag(capsys):
    code, out, _ = run_main(capsys, "--strict", "--quiet", str(CORPUS / "advance-auto-parts__auto-parts-shopping.yaml"))
    assert code == 1
    assert "consumed inputParameters allow only name, in, value; remove `type` (the runtime accepts it) [strict-schema]" in out
    code, out, _ = run_main(capsys, "--strict", str(CORPUS / "naftiko-slack-sandbox__slack-admin-api-consumes.yaml"))
    assert code == 0


def test_corpus_in_one_call(capsys):
    code, out, _ = run_main(capsys, "--quiet", str(CORPUS))
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("64 files, ")  # 59 files and the 5 shared ones they import


# ----------------------------------------------------------------------------- packaging

def test_schemas_ship_with_the_package():
    """pyproject installs schemas/*.json where check/schema.py looks for them outside a checkout."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    target = str(schema.DATA_DIR)
    assert data_files[target] == ["schemas/*.json"]
    for name in schema.SCHEMA_FILES.values():
        assert (ROOT / "schemas" / name).is_file()


def test_schemas_are_found_in_an_installed_layout(tmp_path, monkeypatch):
    installed = tmp_path / schema.DATA_DIR
    installed.mkdir(parents=True)
    for name in schema.SCHEMA_FILES.values():
        (installed / name).write_text((ROOT / "schemas" / name).read_text())
    monkeypatch.setattr(schema, "schema_dirs", lambda: [tmp_path / "no-checkout", installed])
    assert schema.schema_path("lenient") == installed / schema.SCHEMA_FILES["lenient"]
    monkeypatch.setattr(schema, "schema_dirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(schema.SchemaNotFound):
        schema.schema_path("strict")


def test_installed_data_dir_is_searched():
    import sysconfig

    assert Path(sysconfig.get_path("data")) / schema.DATA_DIR in schema.schema_dirs()


def test_pre_commit_hook_and_ci_example():
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "naftiko-validate" and hook["entry"].startswith("naftiko validate")
    assert hook["files"] == r"\.(ya?ml)$"
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "naftiko-validate.yml").read_text())
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(r.startswith("pip install") for r in runs)
    assert "naftiko validate --format github capabilities/" in runs
