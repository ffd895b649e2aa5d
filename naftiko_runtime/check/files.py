"""Turn command-line PATHS (files, directories, globs) into the list of files to check.

Directories are searched recursively for YAML files that carry a top-level `ikanos` or `naftiko` key, so a
repository can be validated as a whole without listing files or tripping over CI workflows and
other YAML. Files named explicitly (or matched by a glob) are always checked, since an empty or
broken file deserves a diagnostic, unless `capabilities_only` applies the directory rule to them
too: pre-commit passes every changed YAML file by name.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")
_SKIPPED_DIRS = {"node_modules", "__pycache__", "venv"}  # plus every hidden directory (.git, .venv...)
_VERSION_KEY = re.compile(rb"^(?:\xef\xbb\xbf)?[\"']?(?:naftiko|ikanos)[\"']?[ \t]*:", re.MULTILINE)
_SNIFF_BYTES = 1024 * 1024


@dataclass
class Selection:
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # usage problems: exit code 2


def is_capability(path: Path) -> bool:
    """Whether a YAML file has a top-level `ikanos:` or `naftiko:` key in its first MiB (cheap: no parsing)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return False
    return _VERSION_KEY.search(head) is not None


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for parent, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(parent) / name
            if path.suffix.lower() in YAML_SUFFIXES and is_capability(path):
                found.append(path)
    return found


def select(paths: list[str], capabilities_only: bool = False) -> Selection:
    """Expand PATHS in order, without duplicates; a path that matches nothing is a usage problem."""
    out = Selection()
    seen: set[Path] = set()

    def add(path: Path, explicit: bool) -> None:
        key = path.resolve()
        if key in seen:
            return
        if not explicit and not is_capability(path):
            return
        seen.add(key)
        out.files.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in _walk(path):
                add(found, explicit=False)
        elif path.exists():
            add(path, explicit=not capabilities_only)
        elif glob.has_magic(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                out.problems.append(f"{raw}: no file matches this pattern")
            for match in matches:
                m = Path(match)
                if m.is_dir():
                    for found in _walk(m):
                        add(found, explicit=False)
                elif m.suffix.lower() in YAML_SUFFIXES:  # a glob may also match READMEs and the like
                    add(m, explicit=not capabilities_only)
        else:
            out.problems.append(f"{raw}: no such file or directory")
    return out
