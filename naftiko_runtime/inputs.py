"""Inputs of an exposed operation or tool: derived, described, coerced and checked.

When an author declares no input parameters (the seed declares none on its MCP tools), the inputs
are derived from the `with` map and the consumed operation: each input gets the consumed
parameter's type, description, requiredness and location. REST and MCP share this, so a tool's
JSON Schema and a route's OpenAPI parameters always agree with what the call will send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from naftiko_runtime.errors import InputError, InputProblem
from naftiko_runtime.capability.model import Action, Capability, ConsumedOperation, Param, WithRef
from naftiko_runtime.templates import Template, refs_in


@dataclass(frozen=True)
class Input:
    """One input as a client sees it. Immutable: adapters derive new lists, never edit shared ones."""

    name: str
    type: str = "string"
    location: str | None = None  # REST: path | query | header | cookie | body (None: a body field)
    required: bool = False
    description: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    whole_body: bool = False  # the entire JSON request body
    value: Any = None  # declared static value or `$.` JSONPath into the body

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.description:
            out["description"] = self.description
        out.update({k: v for k, v in self.schema.items() if k not in ("example", "examples")})
        if self.type == "array" and "items" not in out:
            out["items"] = {}
        return out


def _from_param(p: Param, name: str | None = None, required: bool | None = None) -> Input:
    location = p.location if p.location != "environment" else None
    return Input(
        name=name or p.name, type=p.type, location=location,
        required=p.required if required is None else required, description=p.description,
        schema=dict(p.schema), whole_body=(p.location == "body" and p.name == "body" and (name or p.name) == "body"),
        value=p.value if not isinstance(p.value, str) or p.value.startswith("$") else None,
    )


def template_inputs(op: ConsumedOperation, is_bind: Callable[[tuple[str, ...]], bool], prefixes: frozenset[str]) -> dict[str, str]:
    """Input names the consumed operation's templates read (path, body, parameter values) -> where."""
    found: dict[str, str] = {}

    def scan(text: Any, where: str) -> None:
        for ref in refs_in(text):
            path = ref.path[1:] if len(ref.path) > 1 and ref.path[0] in prefixes else ref.path
            if not is_bind(ref.path) and path:
                found.setdefault(path[0], where)

    scan(op.path, "path")
    for p in op.params:
        if isinstance(p.value, str):
            scan(p.value, p.location or "query")
    if op.body is not None:
        _walk(op.body.data, lambda s: scan(s, "body"))
    return found


def _walk(data: Any, visit: Callable[[str], None]) -> None:
    if isinstance(data, dict):
        for v in data.values():
            _walk(v, visit)
    elif isinstance(data, list):
        for v in data:
            _walk(v, visit)
    elif isinstance(data, str):
        visit(data)


def derive_inputs(action: Action, op: ConsumedOperation | None, is_bind: Callable[[tuple[str, ...]], bool], prefixes: frozenset[str]) -> list[Input]:
    """Declared inputs when there are any; otherwise what `with` and the consumed operation need."""
    consumed = {p.name: p for p in op.params} if op else {}
    if action.inputs is not None:
        out = []
        for p in action.inputs:
            base = consumed.get(p.name)
            inp = _from_param(p)
            if base is not None:  # fill what the author left out from the consumed side
                inp = replace(inp, description=inp.description or base.description)
                if p.location is None:
                    inp = replace(inp, location=base.location if base.location != "environment" else None,
                                  whole_body=base.location == "body" and base.name == "body")
            out.append(inp)
        return out
    inputs: dict[str, Input] = {}
    covered: set[str] = set()
    for key, value in action.with_.items():
        covered.add(key)
        if isinstance(value, WithRef):
            base = consumed.get(key)
            if value.name in inputs:
                continue
            if base is not None:
                inputs[value.name] = replace(_from_param(base, name=value.name), whole_body=base.location == "body" and base.name == "body")
            else:
                inputs[value.name] = Input(name=value.name, location=None)
        elif isinstance(value, str) and "{{" in value:
            for ref in Template.compile(value).refs:
                path = ref.path[1:] if len(ref.path) > 1 and ref.path[0] in prefixes else ref.path
                if not is_bind(ref.path) and path[0] not in inputs:
                    base = consumed.get(path[0])
                    inputs[path[0]] = _from_param(base, required=False) if base else Input(name=path[0])
    for name, p in consumed.items():
        if name in covered or name in inputs or p.location == "environment":
            continue
        if p.value is not None and not (isinstance(p.value, str) and "{{" in p.value):
            continue  # a fixed value the caller cannot change
        if isinstance(p.value, str):
            continue  # its template names the inputs it reads (collected below)
        inputs[name] = _from_param(p)
    if op is not None:
        for name, where in template_inputs(op, is_bind, prefixes).items():
            if name not in inputs and name not in covered:
                inputs[name] = Input(name=name, location=where if where in ("path", "query", "header", "cookie") else None,
                                     required=where == "path",
                                     description=f"`{{{{{name}}}}}` in the upstream path {op.path}" if where == "path" else "")
    return list(inputs.values())


def action_inputs(cap: Capability, action: Action, is_bind: Callable[[tuple[str, ...]], bool], prefixes: frozenset[str]) -> list[Input]:
    """The inputs of any action: declared ones; else derived from its call, from what its steps
    read that no earlier step provides, or (for a `ref`) from the aggregate function's action."""
    if action.ref is not None and action.inputs is None:
        function = cap.function(action.ref)
        return action_inputs(cap, function.action, is_bind, prefixes) if function is not None else []
    if action.inputs is not None or action.call is not None or not action.steps:
        return derive_inputs(action, cap.operation(action.call), is_bind, prefixes)
    found = {i.name: i for i in derive_inputs(Action(action.pos, with_=action.with_), None, is_bind, prefixes)}
    earlier: set[str] = set()
    for step in action.steps:
        if step.kind == "call":
            read = derive_inputs(Action(step.pos, call=step.call, with_=step.with_), cap.operation(step.call), is_bind, prefixes)
        else:
            paths = [ref.path[1:] if len(ref.path) > 1 and ref.path[0] in prefixes else ref.path
                     for ref in Template.compile(step.lookup_value).refs if not is_bind(ref.path)]
            read = [Input(name=path[0]) for path in paths]
        for inp in read:
            if inp.name not in earlier:
                found.setdefault(inp.name, inp)
        earlier.add(step.name)
    return list(found.values())


def json_schema(inputs: list[Input]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {i.name: i.json_schema() for i in inputs}}
    required = [i.name for i in inputs if i.required]
    if required:
        schema["required"] = required
    return schema


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_ARTICLE = {"integer": "an integer", "object": "an object", "array": "an array", "string": "a string", "number": "a number", "boolean": "a boolean"}


class Checker:
    """Required and type checks, fast for plain types; full JSON Schema where extras are declared."""

    def __init__(self, inputs: tuple[Input, ...] | list[Input]):
        self.required = [i for i in inputs if i.required]
        self.typed = [(i.name, i.location, i.type, _TYPE_CHECKS[i.type]) for i in inputs if i.type in _TYPE_CHECKS]
        extras = [i for i in inputs if i.schema]
        self.validator = schema_validator(json_schema(extras)) if extras else None
        self.locations = {i.name: i.location for i in inputs}

    def check(self, values: dict[str, Any]) -> None:
        problems: list[InputProblem] = []
        for i in self.required:
            if values.get(i.name) is None:
                problems.append(InputProblem(i.name, i.location, f"is required ({i.type}{': ' + _short(i.description) if i.description else ''})"))
        for name, location, type_, ok in self.typed:
            value = values.get(name)
            if value is not None and not ok(value):
                problems.append(InputProblem(name, location, f"must be {_ARTICLE[type_]}, got {_json_type(value)}"))
        if self.validator is not None and not problems:
            for err in self.validator.iter_errors(values):
                name = str(err.path[0]) if err.path else "(input)"
                problems.append(InputProblem(name, self.locations.get(name), err.message))
        if problems:
            raise InputError(problems)


def schema_validator(schema: dict[str, Any]) -> Any:
    """jsonschema is imported only for inputs that declare more than a type (enum, pattern, items...)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)


def coerce(text: str, type_: str) -> Any:
    """A string from a path, query or header, read as the declared type (ValueError if it is not)."""
    if type_ == "string":
        return text
    if type_ == "integer":
        return int(text)
    if type_ == "number":
        value = float(text)
        return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    if type_ == "boolean":
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if type_ in ("object", "array"):
        value = json.loads(text)
        if type_ == "array" and not isinstance(value, list):
            return [value]
        return value
    return text


def text_problem(name: str, location: str | None, type_: str, raw: str) -> InputProblem:
    """A path, query, header or cookie text that is not of its declared type (REST and `naftiko call`)."""
    return InputProblem(name, location, f"must be {'an' if type_[0] in 'aeio' else 'a'} {type_}, got '{raw[:40]}'")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
