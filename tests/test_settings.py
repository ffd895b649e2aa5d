"""The settings table: one definition drives the CLI flags, `x-naftiko:` and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from naftiko_runtime.cli import build_parser
from naftiko_runtime.settings import SETTINGS, Settings, markdown_table, parse_size

ROOT = Path(__file__).resolve().parents[1]


def test_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block is not None and block.group(1) == markdown_table()


def test_every_setting_is_a_run_flag_with_its_default():
    args = build_parser().parse_args(["run", "x.yaml"])
    assert Settings.from_args(args) == Settings()
    args = build_parser().parse_args(["run", "x.yaml", "--timeout", "5", "--max-body", "2MiB", "--retries", "0"])
    settings = Settings.from_args(args)
    assert (settings.timeout, settings.max_body_bytes, settings.retries) == (5.0, 2 << 20, 0)
    assert {s.flag for s in SETTINGS} <= {a for action in build_parser()._subparsers._group_actions[0].choices["run"]._actions for a in action.option_strings}


@pytest.mark.parametrize("flag, value", [("--max-body", "0"), ("--max-body", "-5"), ("--timeout", "0"), ("--retries", "1.5"),
                                         ("--max-connections", "0"), ("--max-response", "lots"), ("--grace-period", "-1")])
def test_a_bad_value_is_a_usage_error_before_anything_starts(flag, value):
    result = subprocess.run([sys.executable, "-m", "naftiko_runtime", "run", "capabilities/vapi-sessions.yaml", "--mock", flag, value],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"argument {flag}" in result.stderr and "Traceback" not in result.stderr


def test_sizes_read_units():
    assert [parse_size(x) for x in ("1024", "1KiB", "10MiB", "1GB", "512 KiB")] == [1024, 1024, 10 << 20, 10**9, 512 << 10]
    with pytest.raises(ValueError):
        parse_size("1.5B")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.flag)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "-1", "", "x"])
def test_every_numeric_flag_refuses_what_is_not_a_finite_number_in_range(setting, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "x.yaml", setting.flag, value])
    assert exit_.value.code == 2
    assert f"argument {setting.flag}" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.minimum > 0], ids=lambda s: s.flag)
def test_zero_is_refused_where_the_minimum_is_above_it(setting, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "x.yaml", setting.flag, "0"])
