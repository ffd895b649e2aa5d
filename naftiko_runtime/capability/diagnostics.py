"""Diagnostics: every problem the loader, normalizer or checker finds, with its source position.

One type serves `run` (errors stop startup), `validate` (all are printed) and the normalizer's
notes (a dialect form was rewritten), so a message is written once and shown the same everywhere.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in a source file."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    pos: Pos
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message} [{self.rule}]"


@dataclass
class Diagnostics:
    """An ordered collection of diagnostics, appended to by every stage."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, severity: Severity, pos: Pos, message: str, rule: str) -> None:
        self.items.append(Diagnostic(severity, pos, message, rule))

    def error(self, pos: Pos, message: str, rule: str) -> None:
        self.add("error", pos, message, rule)

    def warning(self, pos: Pos, message: str, rule: str) -> None:
        self.add("warning", pos, message, rule)

    def note(self, pos: Pos, message: str, rule: str) -> None:
        self.add("note", pos, message, rule)

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# ------------------------------------------------------------------ shared wording


def loose_name(name: str) -> str:
    """A name with case, `-` and `_` ignored: how near-miss names are compared."""
    return name.lower().replace("-", "").replace("_", "")


def did_you_mean(word: str, candidates: Any) -> str:
    """'; did you mean 'x'?' for near names (case, '-' and '_' ignored), or ''."""
    names = [str(c) for c in candidates]
    loose = {loose_name(n): n for n in names}
    hits = [loose[loose_name(word)]] if loose_name(word) in loose else []
    cutoff = 0.6 if len(word) <= 6 else 0.75  # one typo in a short name is a large share of it
    for near in difflib.get_close_matches(loose_name(word), list(loose), n=3, cutoff=cutoff):
        if loose[near] not in hits:
            hits.append(loose[near])
    if not hits:
        return ""
    return "; did you mean " + " or ".join(f"'{h}'" for h in hits[:3]) + "?"


def name_list(names: Any, limit: int = 8) -> str:
    """Sorted names for a message, the first `limit` of them; 'none' when empty."""
    items = sorted(str(n) for n in names)
    if not items:
        return "none"
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
