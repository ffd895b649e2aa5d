"""Print results as text (people), JSON (tools) or GitHub workflow annotations (pull requests)."""

from __future__ import annotations

import json
from typing import Callable, TextIO

from naftiko_runtime.check.runner import FileResult
from naftiko_runtime.capability.diagnostics import Diagnostic

FORMATS = ("text", "json", "github")
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(results: list[FileResult]) -> str:
    """`N files, E errors, W warnings`: the last line of text and GitHub output."""
    errors = sum(r.count("error") for r in results)
    warnings = sum(r.count("warning") for r in results)
    return f"{_plural(len(results), 'file')}, {_plural(errors, 'error')}, {_plural(warnings, 'warning')}"


def _shown(results: list[FileResult], quiet: bool) -> list[Diagnostic]:
    return [d for r in results for d in r.diagnostics if not (quiet and d.severity == "note")]


def text_line(d: Diagnostic) -> str:
    """`file:line:col: severity: message [rule]`, always one line (values quoted from the file may hold newlines)."""
    return str(d).replace("\r", "\\r").replace("\n", "\\n")


def _text(results: list[FileResult], quiet: bool, out: TextIO) -> None:
    for d in _shown(results, quiet):
        print(text_line(d), file=out)
    print(summary(results), file=out)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    """`::error file=F,line=L,col=C,title=RULE::message` (a workflow command GitHub turns into an annotation)."""
    props = [f"file={_escape_property(d.pos.file)}"]
    if d.pos.line:
        props += [f"line={d.pos.line}", f"col={d.pos.col}"]
    props.append(f"title={_escape_property(d.rule)}")
    return f"::{_GITHUB_LEVEL[d.severity]} {','.join(props)}::{_escape_data(d.message)}"


def _github(results: list[FileResult], quiet: bool, out: TextIO) -> None:
    for d in _shown(results, quiet):
        print(github_line(d), file=out)
    print(summary(results), file=out)


def _json(results: list[FileResult], quiet: bool, out: TextIO) -> None:
    doc = {
        "summary": {
            "files": len(results),
            "errors": sum(r.count("error") for r in results),
            "warnings": sum(r.count("warning") for r in results),
            "notes": sum(r.count("note") for r in results),
        },
        "files": [{"file": r.file, "errors": r.count("error"), "warnings": r.count("warning"), "notes": r.count("note")} for r in results],
        "diagnostics": [
            {"file": d.pos.file, "line": d.pos.line, "col": d.pos.col, "severity": d.severity, "rule": d.rule, "message": d.message}
            for d in _shown(results, quiet)
        ],
    }
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")


_WRITERS: dict[str, Callable[[list[FileResult], bool, TextIO], None]] = {"text": _text, "json": _json, "github": _github}


def write(results: list[FileResult], fmt: str, quiet: bool, out: TextIO) -> None:
    _WRITERS[fmt](results, quiet, out)
