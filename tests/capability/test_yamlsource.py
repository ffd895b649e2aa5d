"""The YAML loader keeps positions and turns every bad input into a diagnostic."""

from pathlib import Path

from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.yamlsource import YList, YMap, load_yaml_file, parse_text


def parse(text: str):
    d = Diagnostics()
    return parse_text(text, "f.yaml", d), d


def test_positions_of_keys_values_and_items():
    root, d = parse("a:\n  b: 1\n  c:\n    - x\n    - y\n")
    assert not d.items
    assert isinstance(root, YMap) and isinstance(root["a"]["c"], YList)
    assert str(root["a"].at("b")) == "f.yaml:2:6"
    assert str(root["a"].key_at("c")) == "f.yaml:3:3"
    assert str(root["a"]["c"].at(1)) == "f.yaml:5:7"


def test_syntax_error_names_line_column_and_hint():
    root, d = parse("a: 1\nb: c: d\n")
    assert root is None
    [diag] = d.items
    assert diag.severity == "error" and diag.rule == "yaml-syntax"
    assert str(diag.pos) == "f.yaml:2:5"
    assert "must be quoted" in diag.message


def test_duplicate_key_is_a_warning_naming_the_first():
    root, d = parse("name: a\nname: b\n")
    assert root == {"name": "b"}
    [diag] = d.items
    assert diag.severity == "warning" and "first at line 1" in diag.message and str(diag.pos) == "f.yaml:2:1"


def test_alias_bomb_is_refused_fast():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    import time

    start = time.perf_counter()
    root, d = parse("\n".join(lines))
    assert root is None and d.items[0].rule == "yaml-alias-bomb"
    assert time.perf_counter() - start < 1.0


def test_dates_stay_text_and_aliases_share_values():
    root, d = parse("created: 2026-05-24\nx: &x {k: 1}\ny: *x\n")
    assert root["created"] == "2026-05-24"
    assert root["y"] == {"k": 1}


def test_empty_binary_and_bad_utf8_files(tmp_path: Path):
    cases = {"empty.yaml": b"", "bin.yaml": b"\x00\x01\x02naftiko", "latin.yaml": b"naftiko: 1\nlabel: caf\xe9\n"}
    rules = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        d = Diagnostics()
        assert load_yaml_file(tmp_path / name, d) is None
        rules[name] = (d.items[0].rule, str(d.items[0].pos))
    assert rules["empty.yaml"][0] == "yaml-empty"
    assert rules["bin.yaml"][0] == "file-binary"
    assert rules["latin.yaml"] == ("file-encoding", f"{tmp_path / 'latin.yaml'}:2:11")
