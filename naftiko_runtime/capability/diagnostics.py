"""Diagnostics: every problem the loader, normalizer or checker finds, with its source position.

One type serves `run` (errors stop startup), `validate` (all are printed) and the normalizer's
notes (a dialect form was rewritten), so a message is written once and shown the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

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
