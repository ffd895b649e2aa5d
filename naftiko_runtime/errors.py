"""Errors raised while serving a request; each adapter renders them its own way (problem+json, isError)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputProblem:
    name: str
    location: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "detail": self.detail}
        if self.location:
            out["in"] = self.location
        return out


class InputError(Exception):
    """The caller's input is missing, malformed or unsafe: a 400, never sent upstream."""

    def __init__(self, problems: list[InputProblem], title: str = "Invalid input"):
        self.problems = problems
        self.title = title
        super().__init__("; ".join(f"{p.name}: {p.detail}" for p in problems))

    @classmethod
    def one(cls, name: str, location: str | None, detail: str) -> "InputError":
        return cls([InputProblem(name, location, detail)])


@dataclass
class UpstreamFailure(Exception):
    """The upstream could not be reached, timed out, or answered something unusable."""

    namespace: str
    kind: str  # unreachable | timeout | too-large | bad-response | busy
    detail: str = ""
    status: int = field(default=502)
    retryable: bool = False  # a fault an idempotent request may safely be sent again after

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        what = {
            "unreachable": "could not be reached",
            "timeout": "did not answer in time",
            "too-large": "answered with a body over the size limit",
            "bad-response": "answered with a response that could not be read",
            "busy": "has no free connection",
        }.get(self.kind, "failed")
        return f"upstream '{self.namespace}' {what}" + (f": {self.detail}" if self.detail else "")
