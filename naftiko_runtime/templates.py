"""`{{...}}` templates: parsed once at load, bound to secrets at startup, rendered per request.

A deliberately small Mustache subset (variable tags only, no HTML escaping), not Jinja2: capability
files name variables like `{{get-ship.imo}}` that Jinja2 reads as subtraction, and a template
language with expressions is attack surface a declarative gateway does not need. Rendering is a
single pass over precompiled parts, so a value that comes from a request is never re-read as a
template: a client sending `{{env.VAPI_API_KEY}}` gets exactly that text sent upstream.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

_TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
MISSING: Any = object()


@dataclass(frozen=True)
class Ref:
    """A `{{a.b.c}}` variable; `in_string` is set for JSON templates inside a string literal."""

    path: tuple[str, ...]
    in_string: bool = False

    @property
    def text(self) -> str:
        return ".".join(self.path)


Part = str | Ref


def refs_in(text: Any) -> list[Ref]:
    if not isinstance(text, str):
        return []
    return [Ref(tuple(m.group(1).split("."))) for m in _TAG.finditer(text) if m.group(1)]


def placeholder_names(text: str) -> tuple[list[str], str | None]:
    """The `{{name}}` tags of `text`, and a snippet around a stray `{{` or `}}` (None when balanced)."""
    names = [m.group(1) for m in _TAG.finditer(text) if m.group(1)]
    rest = _TAG.sub("", text)
    stray = min((i for i in (rest.find("{{"), rest.find("}}")) if i >= 0), default=-1)
    return names, (rest[max(0, stray - 20): stray + 22] if stray >= 0 else None)


def to_text(value: Any) -> str:
    """How a value appears inside text: JSON for lists and objects, lowercase booleans."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Template:
    """A compiled template. `bind` folds in values known at startup; `render` fills the rest."""

    __slots__ = ("source", "parts", "json_mode")

    def __init__(self, source: str, parts: tuple[Part, ...], json_mode: bool = False):
        self.source = source
        self.parts = parts
        self.json_mode = json_mode

    @classmethod
    def compile(cls, source: str) -> "Template":
        parts: list[Part] = []
        last = 0
        for m in _TAG.finditer(source):
            if m.start() > last:
                parts.append(source[last : m.start()])
            parts.append(Ref(tuple(m.group(1).split("."))) if m.group(1) else m.group(0))
            last = m.end()
        if last < len(source):
            parts.append(source[last:])
        return cls(source, tuple(_merge_literals(parts)))

    @classmethod
    def compile_json(cls, source: str) -> "Template":
        """A raw JSON body template: values are JSON-encoded where they stand.

        Inside a string literal (`"{{name}}"`) a value is escaped as string content; elsewhere
        (`{{ids}}`) it is written as a JSON value, `null` when absent. A quote in a value can
        therefore never break the document, as it does with plain text substitution.
        """
        parts: list[Part] = []
        last = 0
        for m in _TAG.finditer(source):
            if m.start() > last:
                parts.append(source[last : m.start()])
            if m.group(1):
                parts.append(Ref(tuple(m.group(1).split(".")), _inside_string(source, m.start())))
            else:
                parts.append(m.group(0))
            last = m.end()
        if last < len(source):
            parts.append(source[last:])
        return cls(source, tuple(_merge_literals(parts)), json_mode=True)

    @property
    def refs(self) -> list[Ref]:
        return [p for p in self.parts if isinstance(p, Ref)]

    @property
    def is_constant(self) -> bool:
        return not any(isinstance(p, Ref) for p in self.parts)

    @property
    def single_ref(self) -> Ref | None:
        """The variable when the template is exactly one `{{x}}` (its value keeps its type)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Ref):
            return self.parts[0]
        return None

    def constant(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    def bind(self, known: Callable[[Ref], Any]) -> "Template":
        """Replace every ref `known` can answer now (returns MISSING otherwise) by its text."""
        parts: list[Part] = []
        for part in self.parts:
            if isinstance(part, Ref):
                value = known(part)
                if value is not MISSING:
                    parts.append(self._encode(part, value))
                    continue
            parts.append(part)
        return Template(self.source, tuple(_merge_literals(parts)), self.json_mode)

    def render(self, lookup: Callable[[Ref], Any]) -> str:
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else self._encode(part, lookup(part)))
        return "".join(out)

    def render_value(self, lookup: Callable[[Ref], Any]) -> Any:
        """Like render, but a lone `{{x}}` returns x's own value (list, number...), MISSING if absent."""
        ref = self.single_ref
        if ref is not None:
            return lookup(ref)
        return self.render(lookup)

    def all_missing(self, lookup: Callable[[Ref], Any]) -> bool:
        refs = self.refs
        return bool(refs) and all(lookup(r) is MISSING for r in refs)

    def _encode(self, ref: Ref, value: Any) -> str:
        if not self.json_mode:
            return to_text(value)
        if ref.in_string:
            return json.dumps(to_text(value), ensure_ascii=False)[1:-1]
        if value is MISSING:
            value = None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _merge_literals(parts: Iterable[Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if out and isinstance(out[-1], str):
                out[-1] = out[-1] + part
                continue
        out.append(part)
    return out


def _inside_string(source: str, index: int) -> bool:
    """Whether `index` in a JSON text falls inside a string literal (tags count as opaque)."""
    inside = False
    i = 0
    while i < index:
        ch = source[i]
        if source.startswith("{{", i):
            end = source.find("}}", i)
            if end == -1 or end >= index:
                break
            i = end + 2
            continue
        if inside and ch == "\\":
            i += 2
            continue
        if ch == '"':
            inside = not inside
        i += 1
    return inside
