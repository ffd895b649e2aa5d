"""OpenAPI schemas (3.0 and 3.1) as the JSON Schema a capability's inputs carry.

What a capability needs from a schema is what a caller needs: types, enums, defaults, limits,
descriptions, and the shape of nested objects deep enough to write a valid request. Conversions:
`nullable: true` -> a `null` type, 3.0 boolean `exclusiveMinimum` -> the 2020-12 number form,
`allOf` merged, `oneOf`/`anyOf` kept as `anyOf`, `readOnly` properties dropped (never sent),
examples dropped. Nesting stops at `MAX_DEPTH` and recursion at the first repeat, leaving
`{type: object}` with the description: an MCP tool schema is read by a model on every call, and
the Vapi create body would otherwise inline 585 KB of assistant configuration.
"""

from __future__ import annotations

from typing import Any

from naftiko_runtime.authoring.openapi_source import Loc, OpenApiSource

MAX_DEPTH = 2  # levels of nested `properties`/`items` kept below an input
_KEPT = ("title", "description", "enum", "const", "default", "format", "minimum", "maximum", "multipleOf",
         "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties")
JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object")


class SchemaConverter:
    """Converts schemas of one description, following `$ref`s and cutting cycles."""

    def __init__(self, source: OpenApiSource):
        self.source = source
        self._cache: dict[tuple[str, str, int], dict[str, Any]] = {}

    def convert(self, node: Any, loc: Loc, depth: int = 0, stack: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
        sibling_description = node.get("description") if isinstance(node, dict) and "$ref" in node else None
        followed = False
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node, loc = self.source.follow(node, loc)
            key = (str(loc.file), loc.pointer)
            if key in stack:  # recursive schema: stop here
                return {"type": "object"} if not sibling_description else {"type": "object", "description": sibling_description}
            stack, followed = (*stack, key), True
            cached = self._cache.get((*key, depth))
            if cached is not None:
                return _with_description(cached, sibling_description)
        if not isinstance(node, dict):
            return {}
        out = self._convert(node, loc, depth, stack)
        if followed:
            self._cache[(*stack[-1], depth)] = out
        return _with_description(out, sibling_description)

    def _convert(self, node: dict, loc: Loc, depth: int, stack: tuple) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, part in enumerate(node.get("allOf") or []):
            _merge(out, self.convert(part, loc.child("allOf", i), depth, stack))
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [str(k) for k in kind if k in JSON_TYPES or k == "null"]
            out["type"] = kinds[0] if len(kinds) == 1 else kinds
        elif kind in JSON_TYPES:
            out["type"] = kind
        for key in _KEPT:
            if key in node and (key in ("enum", "default", "const") or not isinstance(node[key], dict)):
                out[key] = _plain(node[key])
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(bound)
            if value is True and limit in node:  # 3.0: a flag on minimum/maximum
                out[bound] = out.pop(limit)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[bound] = value
        variants = node.get("oneOf") or node.get("anyOf")
        if isinstance(variants, list) and variants:
            which = "oneOf" if node.get("oneOf") else "anyOf"
            converted = [self.convert(v, loc.child(which, i), depth, stack) for i, v in enumerate(variants)]
            common = {json_type(c) for c in converted}
            if len(common) == 1 and None not in common and "type" not in out:
                out["type"] = common.pop()
            if depth < MAX_DEPTH:
                out["anyOf"] = converted
        props = node.get("properties")
        if isinstance(props, dict) and props:
            kept = {name: spec for name, spec in props.items() if not _read_only(spec, self.source, loc)}
            out.setdefault("type", "object")
            if depth < MAX_DEPTH:
                merged = dict(out.get("properties") or {})
                for name, spec in kept.items():
                    merged[str(name)] = self.convert(spec, loc.child("properties", name), depth + 1, stack)
                out["properties"] = merged
            required = [r for r in node.get("required") or [] if r in kept]
            if required and depth < MAX_DEPTH:
                out["required"] = list(dict.fromkeys([*out.get("required", []), *required]))
        items = node.get("items")
        if isinstance(items, dict):
            out.setdefault("type", "array")
            if depth < MAX_DEPTH:
                out["items"] = self.convert(items, loc.child("items"), depth + 1, stack)
        extra = node.get("additionalProperties")
        if extra is False and "properties" in out:
            out["additionalProperties"] = False
        elif isinstance(extra, dict):
            out.setdefault("type", "object")
        if node.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        if depth >= MAX_DEPTH:  # too deep to spell out: keep what a reader needs to know
            out.pop("anyOf", None)
        return out


def json_type(schema: dict[str, Any]) -> str | None:
    """The one JSON type a schema has (None when it allows several or says nothing)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else None
    if kind:
        return str(kind)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        first = enum[0]
        return "boolean" if isinstance(first, bool) else "integer" if isinstance(first, int) else "number" if isinstance(first, float) else "string"
    return None


def _read_only(spec: Any, source: OpenApiSource, loc: Loc) -> bool:
    try:
        target, _ = source.deref(spec, loc)
    except Exception:  # a broken $ref is reported where the property is converted
        return False
    return isinstance(target, dict) and target.get("readOnly") is True


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties":
            into.setdefault("properties", {}).update(value)
        elif key == "required":
            into["required"] = list(dict.fromkeys([*into.get("required", []), *value]))
        else:
            into.setdefault(key, value)


def _with_description(schema: dict[str, Any], description: Any) -> dict[str, Any]:
    if not description:
        return schema
    return {**schema, "description": str(description)}


def _plain(value: Any) -> Any:
    """YAML-positioned containers as plain dicts and lists (what is written out)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
