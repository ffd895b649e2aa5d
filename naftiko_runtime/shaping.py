"""Output shaping (SEMANTICS 4.5): turn an upstream body into the declared output.

Compiled once per operation. `mapping: $.` (what most files declare) is an identity: the upstream
bytes are passed through untouched, with no JSON round trip. JSONPath expressions are parsed at
load; simple dotted paths use a direct walker, anything else jsonpath-ng.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Callable

import yaml
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from jsonpath_ng.ext.parser import ExtendedJsonPathParser

from naftiko_runtime.capability.model import OutputParam

_SIMPLE = re.compile(r"^\$((?:\.[A-Za-z_][A-Za-z0-9_\-]*|\[\d+\]|\['[^']+'\])*)$")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\['([^']+)'\]")
_NOTHING: Any = object()


@lru_cache(maxsize=1)
def _parser() -> "ExtendedJsonPathParser":
    """Imported on first use: most capabilities map `$.` or plain dotted paths, which need no parser."""
    from jsonpath_ng.ext import parser

    cls = getattr(parser, "ExtendedJsonPathParser", None) or parser.ExtentedJsonPathParser  # renamed in 1.8
    return cls()


@lru_cache(maxsize=4096)
def _jsonpath_parse(expr: str):
    """jsonpath-ng builds a new parser per `parse()` call (20-30 ms each); share one, parse each text once."""
    return _parser().parse(expr)


class JsonPath:
    """A compiled JSONPath; `find` returns the value, a list for multi-matches, or None."""

    def __init__(self, expr: str):
        self.expr = expr.strip()
        self.identity = self.expr in ("$", "$.", "")
        self.steps: list[str | int] | None = None
        self._compiled = None
        if self.identity:
            return
        m = _SIMPLE.match(self.expr)
        if m:
            self.steps = [a if a else (int(b) if b else c) for a, b, c in _STEP.findall(m.group(1))]
        else:
            expr_ = self.expr if self.expr.startswith("$") else "$." + self.expr
            self._compiled = _jsonpath_parse(expr_)  # raises on a bad expression: caught at load

    def find(self, data: Any) -> Any:
        if self.identity:
            return data
        if self.steps is not None:
            value = data
            for step in self.steps:
                if isinstance(step, int):
                    if not isinstance(value, list) or step >= len(value):
                        return None
                    value = value[step]
                elif isinstance(value, dict):
                    value = value.get(step)
                    if value is None:
                        return None
                else:
                    return None
            return value
        matches = [m.value for m in self._compiled.find(data)]
        if not matches:
            return None
        return matches[0] if len(matches) == 1 and "*" not in self.expr and "?" not in self.expr and ".." not in self.expr else matches


class Rule:
    """One compiled output parameter (MappedOutputParameter, or a consumed `{name, value}` projection)."""

    def __init__(self, out: OutputParam):
        self.type = out.type
        self.path = JsonPath(out.mapping) if out.mapping is not None else None
        self.value = out.value
        self.properties = {k: Rule(v) for k, v in out.properties.items()}
        self.items = Rule(out.items) if out.items is not None else None

    @property
    def identity(self) -> bool:
        return self.path is not None and self.path.identity and not self.properties and self.items is None and self.value is None

    def apply(self, root: Any, render: Callable[[str], Any] | None) -> Any:
        if self.value is not None:
            return render(self.value) if render and isinstance(self.value, str) else self.value
        if self.type == "array":
            target = self.path.find(root) if self.path else root
            if not isinstance(target, list):
                return None
            if self.items is None:
                return target
            return [self.items.apply_item(item, render) for item in target]
        if self.type == "object" and self.properties:
            base = self.path.find(root) if self.path and not self.path.identity else root
            if base is None:
                return None
            return {name: rule.apply(base, render) for name, rule in self.properties.items()}
        return self.path.find(root) if self.path else None

    def apply_item(self, element: Any, render: Callable[[str], Any] | None) -> Any:
        if self.properties:
            return {name: rule.apply(element, render) for name, rule in self.properties.items()}
        if self.path is not None:
            return self.path.find(element)
        return element


class Shaper:
    """The outputs of one exposed operation or tool: alternatives, the first non-null wins."""

    def __init__(self, outputs: list[OutputParam], raw_format: str = "json"):
        self.rules = [Rule(o) for o in outputs]
        self.format = raw_format
        self.identity = not self.rules or self.rules[0].identity

    def shape(self, body: bytes, content_type: str | None, render: Callable[[str], Any] | None = None) -> Any:
        """The shaped value, or _NOTHING when every rule is null (callers then return the raw body)."""
        data = decode(body, self.format, content_type)
        if data is _NOTHING:
            return _NOTHING
        for rule in self.rules:
            value = rule.apply(data, render)
            if value is not None:
                return value
        return _NOTHING

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """A JSON Schema the shaped result satisfies, when the shape is declared beyond identity."""
        if self.identity or len(self.rules) != 1:
            return None
        return _schema_of(self.rules[0])


NOTHING = _NOTHING


def _schema_of(rule: Rule) -> dict[str, Any]:
    if rule.type == "object" and rule.properties:
        return {"type": "object", "properties": {k: _nullable(_schema_of(v)) for k, v in rule.properties.items()}}
    if rule.type == "array":
        return {"type": "array", "items": _schema_of(rule.items) if rule.items and rule.items.properties else {}}
    return {}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return schema


def decode(body: bytes, raw_format: str, content_type: str | None = None) -> Any:
    """Upstream bytes -> a JSON-like value per `outputRawFormat` (SEMANTICS 2.5)."""
    if not body:
        return _NOTHING
    fmt = raw_format or "json"
    try:
        if fmt == "json":
            return json.loads(body)
        text = body.decode("utf-8", errors="replace")
        if fmt == "yaml":
            return yaml.safe_load(text)
        if fmt in ("csv", "tsv", "psv"):
            delimiter = {"csv": ",", "tsv": "\t", "psv": "|"}[fmt]
            return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
        if fmt == "xml":
            return _parse_xml(text)
    except (ValueError, yaml.YAMLError, csv.Error):
        return _NOTHING
    return _NOTHING


def _parse_xml(text: str) -> Any:
    import xml.etree.ElementTree as ET  # only for `outputRawFormat: xml`: not a cost of every start

    try:
        return _xml_children(ET.fromstring(text))
    except ET.ParseError:
        return _NOTHING


def _xml_children(element: ET.Element) -> Any:
    """Jackson-style XML tree: the root is dropped, repeated siblings merge into arrays."""
    children = list(element)
    if not children and not element.attrib:
        return (element.text or "").strip()
    out: dict[str, Any] = dict(element.attrib)
    for child in children:
        value = _xml_children(child)
        tag = child.tag.split("}", 1)[-1]
        if tag in out:
            if not isinstance(out[tag], list):
                out[tag] = [out[tag]]
            out[tag].append(value)
        else:
            out[tag] = value
    return out
