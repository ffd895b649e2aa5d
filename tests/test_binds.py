"""Binds: env vars and files, every missing value reported by name and place."""

import json
from pathlib import Path

import pytest

from naftiko_runtime.errors import BindError
from naftiko_runtime.binds import load_env_file, read_dotenv, resolve_binds
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.templates import Ref

CAP = """naftiko: 1.0.0-alpha2
binds:
- namespace: env
  keys:
    API_KEY: MY_API_KEY
    REGION: MY_REGION
- namespace: cfg
  location: {location}
  keys:
    TENANT: tenant
capability:
  consumes: []
  exposes: []
"""


def cap_with(tmp_path: Path, location: str):
    return load_text(CAP.format(location=location), "cap.yaml", tmp_path)


def test_env_and_file_values_by_flat_and_namespaced_name(tmp_path, monkeypatch):
    (tmp_path / "cfg.json").write_text(json.dumps({"tenant": "acme"}))
    monkeypatch.setenv("MY_API_KEY", "k-123")
    monkeypatch.setenv("MY_REGION", "eu")
    values = resolve_binds(cap_with(tmp_path, "file:///./cfg.json"), tmp_path)
    assert values.lookup(Ref(("API_KEY",))) == "k-123"
    assert values.lookup(Ref(("env", "API_KEY"))) == "k-123"
    assert values.lookup(Ref(("cfg", "TENANT"))) == "acme"
    assert values.secrets == ["k-123", "eu", "acme"]


@pytest.mark.parametrize("name,content", [("cfg.yaml", "tenant: acme\n"), (".env", "# c\nexport tenant='acme'\n")])
def test_yaml_and_dotenv_files_resolve_relative_to_the_capability(tmp_path, monkeypatch, name, content):
    (tmp_path / name).write_text(content)
    monkeypatch.setenv("MY_API_KEY", "k")
    monkeypatch.setenv("MY_REGION", "r")
    values = resolve_binds(cap_with(tmp_path, f"./{name}"), tmp_path)
    assert values.flat["TENANT"] == "acme"


def test_every_missing_value_is_reported_with_where_it_was_expected(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_API_KEY", raising=False)
    monkeypatch.delenv("MY_REGION", raising=False)
    with pytest.raises(BindError) as err:
        resolve_binds(cap_with(tmp_path, "file:///./nope.yaml"), tmp_path)
    text = [str(m) for m in err.value.missing]
    assert len(text) == 3
    assert "API_KEY: environment variable 'MY_API_KEY' is not set" in text[0] and "cap.yaml:5:5" in text[0]
    assert "REGION" in text[1] and "TENANT" in text[2] and "nope.yaml does not exist" in text[2]


def test_mock_mode_tolerates_missing_values(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_API_KEY", raising=False)
    values = resolve_binds(cap_with(tmp_path, "./nope.yaml"), tmp_path, allow_missing=True)
    assert values.flat["API_KEY"] == ""


def test_env_file_does_not_override_the_environment(tmp_path):
    (tmp_path / "x.env").write_text('A=1\nB="two words" \nC=3 # comment\n')
    env = {"A": "already"}
    load_env_file(tmp_path / "x.env", env)
    assert env == {"A": "already", "B": "two words", "C": "3"}
    assert read_dotenv(tmp_path / "x.env")["A"] == "1"
