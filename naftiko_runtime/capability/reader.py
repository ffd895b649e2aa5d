"""Reading parsed YAML into the model: the helpers every part of the normalizer shares.

Each helper reports what it cannot read as a diagnostic with the node's position and returns
something safe, so one bad entry never stops the rest of a file from being checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from naftiko_runtime.capability.diagnostics import Diagnostics, Pos
from naftiko_runtime.capability.keys import Typos, keyed_fields
from naftiko_runtime.capability.model import (
    HTTP_METHODS,
    JSON_TYPES,
    OutputParam,
    Param,
)
from naftiko_runtime.capability.versions import Rename, is_ikanos
from naftiko_runtime.capability.yamlsource import YList, YMap
from naftiko_runtime.settings import parse_size

# Collections of named objects: a list of `{name: ..., ...}` (Naftiko) or a map keyed by name
# (Ikanos); both are read in every version, because real files mix them. (Ikanos keys consumed
# and orchestrated outputs by name; mapped outputs of exposed operations stay a list.)
NAMED_COLLECTIONS = frozenset({
    "inputParameters", "outputParameters", "resources", "operations", "tools", "skills", "prompts",
    "steps", "arguments", "flows", "functions",
})

PARAM_LOCATIONS = ("path", "query", "header", "cookie", "body", "environment")
SCHEMA_KEYWORDS = (
    "enum", "items", "properties", "format", "default", "minimum", "maximum", "minLength",
    "maxLength", "pattern", "minItems", "maxItems", "const", "examples", "example",
)
SINGLE_BRACE = re.compile(r"(?<!\{)\{([A-Za-z0-9_.\-]+)\}(?!\})")
DOUBLE_BRACE = re.compile(r"\{\{\s*([A-Za-z0-9_\-]+)\s*\}\}")
REF_PREFIXES = ("rest", "tools", "mcp")

Loader = Callable[[Path], Any]


class Reader:
    """State and helpers shared by the consumes and exposes readers."""


    def __init__(self, file: str, base_dir: Path, diagnostics: Diagnostics, load_import: Loader | None = None):
        self.file = file
        self.base_dir = base_dir
        self.d = diagnostics
        self.load_import = load_import
        self._noted_prefixes: set[tuple[str, str]] = set()
        self.version = "1.0.0-alpha2"  # set by the document reader once the file says which it is
        self.typos = Typos()  # near-miss keys of the document (keys.check_keys), for symptoms to cite
        self.bind_vars: set[str] = set()  # variables the document's binds declare (not inputs)

    # ---------------------------------------------------------------- helpers

    def _pos(self, node: Any) -> Pos:
        return getattr(node, "pos", Pos(self.file, 1, 1))

    def _map(self, node: Any, where: str, pos: Pos) -> YMap | None:
        if isinstance(node, YMap):
            return node
        if node is not None:
            self.d.error(pos, f"{where} must be a mapping (key: value), found {kind(node)}", "structure")
        return None

    def _list(self, parent: YMap, key: str, where: str) -> list[tuple[Any, Pos]]:
        """Entries of a collection; named collections may be lists or maps keyed by name."""
        node = parent.get(key)
        if node is None:
            return []
        if isinstance(node, YMap) and key in NAMED_COLLECTIONS:
            if not is_ikanos(self.version):
                self.d.note(parent.key_at(key), f"`{key}` written as a map of name -> entry (the Ikanos form); read as the list of {self.version}", "version-keyed-map")
            return self._keyed(node, key)
        if not isinstance(node, YList):
            self.d.error(parent.at(key), f"`{where}.{key}` must be a list, found {kind(node)}", "structure")
            return []
        if key in NAMED_COLLECTIONS and key != "outputParameters" and is_ikanos(self.version) and node:
            self.d.note(parent.key_at(key), f"`{key}` written as a list (the Naftiko form); {self.version} keys each entry by its name", "version-named-list")
        return [(item, node.at(i)) for i, item in enumerate(node)]

    def _keyed(self, node: YMap, key: str) -> list[tuple[Any, Pos]]:
        """`{name: {...}}` -> entries carrying `name`; the key is the name."""
        out = []
        for name, value in node.items():
            at = node.key_at(name)
            if value is None:  # `id:` with nothing under it: a name alone
                value = YMap()
                value.pos, value.key_pos, value.val_pos = at, {}, {}
            if not isinstance(value, YMap):
                if isinstance(value, str) and key == "outputParameters":
                    out.append((value, at))  # lookup steps list output names
                    continue
                self.d.error(node.at(name), f"`{key}.{name}` must be a mapping (the entry named '{name}'), found {kind(value)}", "structure")
                continue
            if "name" in value and str(value["name"]) != str(name):
                self.d.warning(value.key_at("name"), f"entry '{name}' of `{key}` also says `name: {value['name']}`; the key wins, so it is '{name}' (remove `name`)", "keyed-name-mismatch")
            value["name"] = name
            value.key_pos["name"] = value.val_pos["name"] = at
            out.append((value, at))
        return out

    def spelling(self, node: YMap, rename: Rename, where: str) -> str:
        """Which spelling of a key renamed between versions to read (`label`/`display`...): this
        version's when present, else the other one, which is noted."""
        canonical = rename.canonical(self.version)
        other = rename.new if canonical == rename.old else rename.old
        if other in node:
            self.d.note(node.key_at(other), f"`{other}` in {where}: {self.version} calls it `{canonical}`; read as `{canonical}`", "version-renamed-key")
            if canonical not in node:
                return other
        return canonical

    def renamed(self, node: YMap, rename: Rename, where: str) -> str:
        """A text field renamed between versions, in either spelling."""
        return self._str(node, self.spelling(node, rename, where), where)

    def _named(self, item: Any, pos: Pos, what: str) -> tuple[YMap, str] | None:
        """A mapping with a (required) `name`, or None after reporting what is wrong."""
        node = self._map(item, what, pos)
        if node is None:
            return None
        name = self._str(node, "name", what, required=True)
        return (node, name) if name else None

    def _str(self, node: YMap, key: str, where: str, required: bool = False) -> str:
        value = node.get(key)
        if value is None:
            if required:
                self.d.error(node.pos, f"{where} is missing `{key}`{self.typos.cause(node.pos, [key])}", "required-field")
            return ""
        if isinstance(value, (YMap, YList)):
            self.d.error(node.at(key), f"`{key}` in {where} must be text, found {kind(value)}", "structure")
            return ""
        return str(value)

    def tags(self, node: YMap, where: str) -> tuple[str, ...]:
        raw = node.get("tags")
        if raw is None:
            return ()
        if isinstance(raw, str):
            return (raw,)
        if not isinstance(raw, YList) or any(isinstance(t, (YMap, YList)) for t in raw):
            self.d.error(node.at("tags"), f"`tags` in {where} must be a list of words, found {kind(raw)}", "structure")
            return ()
        return tuple(str(t) for t in raw)

    def size(self, node: YMap, key: str, where: str) -> int | None:
        """A byte size (`5MiB`, `512KiB`, `1048576`), or None after reporting a bad one."""
        if key not in node:
            return None
        try:
            value = parse_size(str(node[key]).replace(" ", ""))
        except ValueError:
            value = -1
        if value <= 0:
            self.d.error(node.at(key), f"`{key}` '{node[key]}' in {where} is not a size; write a number with a unit, e.g. 5MiB, 512KiB or 1GiB", "bad-size")
            return None
        return value

    def parse_call(self, call: Any, pos: Pos, where: str) -> tuple[str, str] | None:
        """`<consumes-namespace>.<operation>` (or the three-part dialect) as a pair; None after an error."""
        parts = str(call).split(".")
        if len(parts) == 2 and all(parts):
            return (parts[0], parts[1])
        if len(parts) == 3 and all(parts):
            self.d.note(pos, f"call '{call}' names a resource; read as '{parts[0]}.{parts[2]}'", "dialect-call-three-part")
            return (parts[0], parts[2])
        self.d.error(pos, f"{where}: call '{call}' must be `<consumes-namespace>.<operation>`", "bad-call")
        return None

    def method(self, node: YMap, where: str, consumed: bool = False) -> str:
        raw = node.get("method")
        if raw is None:
            cause = self.typos.cause(node.pos, ["method"])
            if consumed or cause:  # the schema requires it; the reference engine defaults to GET
                self.d.warning(node.pos, f"{where} has no `method`; GET is used{cause}", "missing-method")
            else:
                self.d.note(node.pos, f"{where} has no `method`; GET is used", "dialect-default-method")
            return "GET"
        method = str(raw).upper()
        if method not in HTTP_METHODS:
            self.d.error(node.at("method"), f"{where}: method '{raw}' is not an HTTP method; use one of {', '.join(HTTP_METHODS[:5])}", "bad-method")
        return method

    def params(self, node: YMap, key: str, where: str, consumed: bool) -> list[Param]:
        def twice(p: Param, first: Param) -> None:
            self.d.warning(p.pos, f"input '{p.name}' is declared twice in {where} (first at line {first.pos.line}); the first declaration is used and this one is ignored (the value is sent once)", "duplicate-parameter")

        return list(distinct((self.param(item, pos, where, consumed) for item, pos in self._list(node, key, where)), twice).values())

    def param(self, item: Any, pos: Pos, where: str, consumed: bool) -> Param | None:
        if isinstance(item, str):  # a bare name
            return Param(name=item, location=None, pos=pos)
        node = self._map(item, f"a parameter of {where}", pos)
        if node is None:
            return None
        name = self._str(node, "name", f"a parameter of {where}", required=True)
        if not name:
            return None
        loc = node.get("in")
        location = str(loc).lower() if loc is not None else None
        if location is not None and location not in PARAM_LOCATIONS:
            if location == "formdata":
                location = "body"
            else:
                self.d.error(node.at("in"), f"parameter '{name}': `in: {loc}` is not one of {', '.join(PARAM_LOCATIONS)}", "bad-param-location")
                location = None
        ptype = str(node.get("type") or "string").lower()
        if ptype not in JSON_TYPES:
            alias = {"int": "integer", "float": "number", "double": "number", "bool": "boolean", "str": "string", "list": "array", "dict": "object", "map": "object"}.get(ptype)
            if alias:
                self.d.note(node.at("type"), f"parameter '{name}': type '{ptype}' read as '{alias}'", "dialect-param-type")
                ptype = alias
            else:
                self.d.warning(node.at("type"), f"parameter '{name}': unknown type '{ptype}', read as string", "bad-param-type")
                ptype = "string"
        required_default = location == "path" or (not consumed and key_required_default(where))
        required = node.get("required", required_default)
        value = node.get("value", node.get("template", node.get("mapping")))
        schema = {k: node[k] for k in SCHEMA_KEYWORDS if k in node}
        return Param(
            name=name, location=location, pos=node.pos, type=ptype,
            description=self._str(node, "description", "parameter"), required=bool(required),
            value=value, schema=schema,
        )

    def output(self, item: Any, pos: Pos) -> OutputParam | None:
        node = self._map(item, "an output parameter", pos)
        if node is None:
            return None
        out = OutputParam(type=str(node.get("type") or "object").lower(), pos=node.pos,
                          name=str(node["name"]) if node.get("name") is not None else None)
        mapping = node.get("mapping")
        value = node.get("value")
        if mapping is None and isinstance(value, str) and value.strip().startswith("$"):
            mapping, value = value, None  # consumed style `value: $.x` on an exposed output
        out.mapping = str(mapping).strip() if mapping is not None else None
        out.value = value
        props = node.get("properties")
        if isinstance(props, YMap):
            for key, sub in props.items():
                parsed = self.output(sub, props.at(key))
                if parsed is not None:
                    out.properties[str(key)] = parsed
        elif isinstance(props, YList):  # a list of named outputs
            for i, sub in enumerate(props):
                parsed = self.output(sub, props.at(i))
                if parsed is not None and parsed.name:
                    out.properties[parsed.name] = parsed
        items = node.get("items")
        fields = None  # orchestrated arrays may list the element's fields by name instead of one node
        if isinstance(items, YList) and len(items) > 1 and all(isinstance(i, YMap) and i.get("name") for i in items):
            fields = [(str(i["name"]), i, at) for i, at in zip(items, items.item_pos)]  # alpha2: `[{name: fullName, ...}, ...]`
        elif isinstance(items, YList) and items:
            items = items[0]
        if fields is None and keyed_fields(items):  # Ikanos: `items: {fullName: {type: string}}`
            fields = [(str(k), v, items.at(k)) for k, v in items.items()]
        if fields is not None:
            element = OutputParam(type="object", pos=items.pos)
            for key, sub, at in fields:
                parsed = self.output(sub, at)
                if parsed is not None:
                    element.properties[key] = parsed
            out.items = element
        elif isinstance(items, YMap):
            out.items = self.output(items, node.at("items"))
        return out


Named = TypeVar("Named", bound=Any)


def distinct(entries: Iterable[Named | None], twice: Callable[[Named, Named], None]) -> dict[str, Named]:
    """Entries by `name`, in order; a repeated name is reported (`twice(entry, first)`) and dropped."""
    out: dict[str, Named] = {}
    for entry in entries:
        if entry is None:
            continue
        if entry.name in out:
            twice(entry, out[entry.name])
            continue
        out[entry.name] = entry
    return out


def key_required_default(where: str) -> bool:
    """MCP tool and aggregate function inputs are required unless `required: false` (spec); REST
    inputs are optional."""
    return where.startswith(("tool ", "function "))


def merge_params(first: list[Param], second: list[Param]) -> list[Param]:
    """Later levels (operation) override earlier ones (adapter, resource) by name."""
    out: dict[str, Param] = {p.name: p for p in first}
    for p in second:
        out[p.name] = p
    return list(out.values())


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def kind(node: Any) -> str:
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    if node is None:
        return "nothing"
    return f"{type(node).__name__} '{node}'"
