"""JSON Schema checks with YAML positions and messages that say what to write instead.

Two schemas ship in schemas/: the lenient one (everything the runtime accepts; a violation is a
file the runtime cannot read as meant) and the strict one (the official 1.0.0-alpha2 schema, for
`--strict`). jsonschema's own messages quote whole instances and name no fix, so each error is
turned into one line at the offending node (the unexpected key, the bad value, the mapping that
lacks a key) naming the canonical form.
"""

from __future__ import annotations

import difflib
import json
import re
import site
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import jsonschema_rs

from naftiko_runtime.capability.diagnostics import Diagnostic, Pos

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
from naftiko_runtime.capability.versions import LATEST, SCHEMA_OF, SCHEMA_VERSIONS, is_ikanos, root_key
from naftiko_runtime.capability.yamlsource import YList, YMap

Kind = str  # "lenient", or "strict <schema version>" ("strict": the alpha2 one)
SCHEMA_FILES: dict[str, str] = {
    "lenient": "naftiko-capability.json",
    "strict": "naftiko-capability-1.0.0-alpha2.strict.json",
    **{f"strict {v}": f"{root_key(v)}-capability-{v}.strict.json" for v in SCHEMA_VERSIONS},
}
DATA_DIR = Path("share") / "naftiko-runtime" / "schemas"  # where pyproject's data-files installs them


def strict_kind(root: Any) -> Kind:
    """The strict schema of the file's own version (alpha2 or beta4 when the version is unknown)."""
    version = root.get("ikanos", root.get("naftiko")) if isinstance(root, dict) else None
    default = LATEST if isinstance(root, dict) and "ikanos" in root else "1.0.0-alpha2"
    return f"strict {SCHEMA_OF.get(str(version).strip(), default)}"


class SchemaNotFound(RuntimeError):
    pass


def schema_dirs() -> list[Path]:
    """Where the schemas may be: the source tree (checkout, editable install), then installed data."""
    here = Path(__file__).resolve()
    bases = [sysconfig.get_path("data"), sys.prefix, sys.base_prefix, site.getuserbase()]
    return [here.parents[2] / "schemas", *(Path(b) / DATA_DIR for b in dict.fromkeys(bases) if b)]


def schema_path(kind: Kind) -> Path:
    name = SCHEMA_FILES[kind]
    for directory in schema_dirs():
        if (directory / name).is_file():
            return directory / name
    raise SchemaNotFound(f"schema {name} not found in {', '.join(str(d) for d in schema_dirs())}; reinstall naftiko-runtime")


@lru_cache(maxsize=None)
def _checker(kind: Kind) -> "_Checker":
    return _Checker(kind, json.loads(schema_path(kind).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Finding:
    """A schema violation and the mapping it sits in (`scope`), to relate it to other findings."""

    diagnostic: Diagnostic
    scope: Pos


def schema_findings(root: Any, file: str, kind: Kind) -> list[Finding]:
    """Every violation of the `kind` schema in a parsed document, positioned in the YAML."""
    return _checker(kind).findings(root, file)


def schema_diagnostics(root: Any, file: str, kind: Kind) -> list[Diagnostic]:
    return [f.diagnostic for f in schema_findings(root, file, kind)]


def to_json(node: Any) -> Any:
    """The JSON data model of a YAML tree: string keys, JSON scalars (others become text)."""
    if isinstance(node, dict):
        return {k if isinstance(k, str) else str(k): to_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_json(v) for v in node]
    if node is None or isinstance(node, (str, int, float, bool)):
        return node
    return str(node)


# ----------------------------------------------------------------------------- positions

@dataclass
class _Target:
    """The YAML node an error is about, with its parent for value positions."""

    node: Any
    parent: Any
    key: Any
    fallback: Pos

    def value_pos(self) -> Pos:
        if isinstance(self.parent, (YMap, YList)):
            return self.parent.at(self.key)
        return getattr(self.node, "pos", self.fallback)

    def node_pos(self) -> Pos:
        return getattr(self.node, "pos", None) or self.value_pos()

    def scope(self) -> Pos:
        """The mapping the problem is in: the node itself when it is one, else its parent."""
        if isinstance(self.node, YMap):
            return self.node.pos
        return getattr(self.parent, "pos", self.fallback)

    def key_pos(self, key: str) -> Pos:
        if isinstance(self.node, YMap):
            return self.node.key_at(_original_key(self.node, key))
        return self.node_pos()


def _original_key(node: dict, key: Any) -> Any:
    if key in node:
        return key
    return next((k for k in node if str(k) == str(key)), key)


def _locate(root: Any, path: Iterable[Any], file: str) -> _Target:
    fallback = getattr(root, "pos", Pos(file, 1, 1))
    node, parent, key = root, None, None
    for seg in path:
        if isinstance(node, dict):
            k = _original_key(node, seg)
            if k not in node:
                break
            parent, key, node = node, k, node[k]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            parent, key, node = node, seg, node[seg]
        else:
            break
    return _Target(node, parent, key, fallback)


# ----------------------------------------------------------------------------- messages

# definition name -> how to call its instances in a message; plural unless marked singular
_WHAT: dict[str, str] = {
    "<root>": "the document root", "Capability": "`capability`", "Info": "`info`", "Binding": "binds",
    "ConsumesHttp": "consumes entries", "ImportedConsumesHttp": "imported consumes entries",
    "ConsumedInputParameter": "consumed inputParameters", "ConsumedHttpResource": "consumed resources",
    "ConsumedResource": "consumed resources", "ConsumedHttpOperation": "consumed operations",
    "ConsumedOperation": "consumed operations", "ConsumedOutputParameter": "consumed outputParameters",
    "ExposesRest": "REST exposes", "ExposesMcp": "MCP exposes", "ExposesSkill": "skill exposes",
    "ExposesControl": "control exposes", "ExposedResource": "REST resources", "ExposedOperation": "REST operations",
    "ExposedInputParameter": "exposed inputParameters", "McpTool": "MCP tools", "McpToolInputParameter": "MCP tool inputParameters",
    "AuthBearer": "bearer authentication", "AuthApiKey": "apikey authentication", "AuthBasic": "basic authentication",
    "AuthDigest": "digest authentication", "AuthOAuth2": "oauth2 authentication",
}
_SINGULAR = {"<root>", "Capability", "Info", "AuthBearer", "AuthApiKey", "AuthBasic", "AuthDigest", "AuthOAuth2"}

# (definition prefix, key) -> what to do instead of the unexpected key
_INSTEAD: dict[tuple[str, str], str] = {
    ("ConsumesHttp", "auth"): "rename `auth` to `authentication`",
    ("ConsumedHttpOperation", "path"): "move the operation-level `path` into a resource of its own (`resources[].path`)",
    ("MappedOutputParameter", "name"): "mapped outputs have no `name` (only mock and orchestrated outputs do); remove it",
    ("ExposesRest", "description"): "remove `description` (only MCP and skill exposes have one)",
    ("ExposesControl", "description"): "remove `description` (only MCP and skill exposes have one)",
    ("ExposesSkill", "groups"): "list the skills under `skills` instead of `groups`",
    ("AuthBearer", "value"): "write the credential as `token: \"{{VAR}}\"`",
    ("AuthBearer", "key"): "for a custom header use `type: apikey` with `key`, `value` and `placement: header`",
    ("AuthBearer", "placement"): "for a custom header use `type: apikey` with `key`, `value` and `placement: header`",
    ("McpTool", "calls"): "write `call: <namespace>.<operation>` (and `with`) instead of `calls`",
    ("McpTool", "inputSchema"): "declare the arguments as `inputParameters` (name, type, description) instead of `inputSchema`",
    ("Capability", "tools"): "move tools into an `exposes` entry of `type: mcp`",
    ("<root>", "consumes"): "a capability file keeps its consumes under `capability.consumes`",
}
_REQUIRED_HINT: dict[tuple[str, str], str] = {
    ("MappedOutputParameterObject", "properties"): "an object output needs `properties` (field -> {type, mapping}); to return the upstream body unchanged, remove the output parameter rather than writing `mapping: $.`",
    ("MappedOutputParameterArray", "items"): "an array output needs `items`, the shape of each element (e.g. `items: {type: object, properties: ...}`)",
    ("ConsumesHttp", "type"): "consumes entries require `type`; add `type: http`",
    ("AuthBearer", "token"): "bearer authentication requires `token`; add `token: \"{{VAR}}\"`",
    ("ExposesSkill", "skills"): "skill exposes require `skills`; add `skills:`, the list of skills",
}
_ENUM_ALIASES: dict[str, str | None] = {"integer": "number", "form": "formUrlEncoded", "http": "rest", "header": "apikey", "query": "apikey", "oauth1": None}
_FORBIDDEN = {
    "port": "`port` is not used with `transport: stdio`; remove it",
}


def _what(defname: str) -> tuple[str, bool]:
    if defname in _WHAT:
        return _WHAT[defname], defname not in _SINGULAR
    if defname.startswith("MappedOutputParameter"):
        return "output parameters", True
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", defname).lower()
    return words, False


def _lookup(table: dict[tuple[str, str], str], defname: str, key: str) -> str | None:
    for (prefix, k), text in table.items():
        if k == key and (defname == prefix or defname.startswith(prefix)):
            return text
    return None


def _kebab(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", str(name))
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "name"


def _json_type(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "a mapping"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _closest(value: Any, options: list[Any]) -> Any | None:
    if value in _ENUM_ALIASES:
        alias = _ENUM_ALIASES[value]
        return alias if alias in options else None
    text = str(value).lower()
    for option in options:
        if str(option).lower() == text:
            return option
    near = difflib.get_close_matches(text, [str(o).lower() for o in options], n=1, cutoff=0.8)
    return next((o for o in options if str(o).lower() == near[0]), None) if near else None


# keys one generation renamed: (key written, hint) for a file of the other generation
_IKANOS_RENAMES = {
    "label": "rename `label` to `display` (its name since 1.0.0-alpha3)",
    "location": "rename `location` to `from` (its name since 1.0.0-alpha3)",
    "targetName": "rename `targetName` to `target` (its name since 1.0.0-alpha3)",
    "functions": "rename `functions` to `flows`, a map keyed by flow name (since 1.0.0-alpha3)",
    "name": "remove `name`: since 1.0.0-alpha3 an entry's key is its name",
    "naftiko": "rename `naftiko` to `ikanos` (the root key since 1.0.0-alpha3)",
}
_NAFTIKO_RENAMES = {
    "display": "rename `display` to `label` (its name before 1.0.0-alpha3)",
    "from": "rename `from` to `location` (its name before 1.0.0-alpha3)",
    "target": "rename `target` to `targetName` (its name before 1.0.0-alpha3)",
    "flows": "rename `flows` to `functions`, a list of named functions (before 1.0.0-alpha3)",
    "ikanos": "rename `ikanos` to `naftiko` (the root key before 1.0.0-alpha3)",
    "tags": "`tags` exist from 1.0.0-alpha3 on; remove them or declare a newer version",
    "tunnel": "`tunnel` exists from 1.0.0-alpha3 on; remove it or declare a newer version",
}
_NEWER = {"outputMediaType": "1.0.0-beta1", "maxBinarySize": "1.0.0-beta1", "responses": "1.0.0-beta1", "responseBinary": "1.0.0-beta1",
          "binary": "1.0.0-beta1", "ttlMs": "1.0.0-beta4", "cacheScope": "1.0.0-beta4", "version": "1.0.0-beta4"}


class _Checker:
    def __init__(self, kind: Kind, schema: dict[str, Any]):
        self.kind = kind
        self.rule = "schema" if kind == "lenient" else "strict-schema"
        self.version = kind.split(" ", 1)[1] if " " in kind else "1.0.0-alpha2"
        self.schema = schema
        self.fast = jsonschema_rs.validator_for(schema)  # the same verdict, compiled (docs/validation.md, Speed)
        self.owner: dict[int, str] = {}
        self._index({k: v for k, v in schema.items() if k != "$defs"}, "<root>")
        for name, sub in schema.get("$defs", {}).items():
            self._index(sub, name)

    def _index(self, node: Any, name: str) -> None:
        """Remember which definition each subschema belongs to (jsonschema reports subschemas)."""
        if isinstance(node, dict):
            self.owner[id(node)] = name
            for value in node.values():
                self._index(value, name)
        elif isinstance(node, list):
            for value in node:
                self._index(value, name)

    def findings(self, root: Any, file: str) -> list[Finding]:
        """Every violation, explained. Most files have none: the compiled validator says so in a
        fraction of the time, and only a file it refuses is walked again for the explanations."""
        out: list[Finding] = []
        seen: set[tuple[Pos, str]] = set()
        instance = to_json(root)
        if self.fast.is_valid(instance):
            return out
        from jsonschema import Draft202012Validator  # only for a file with violations: it says where and why

        for error in Draft202012Validator(self.schema).iter_errors(instance):
            scope = _locate(root, error.absolute_path, file).scope()
            for pos, message in self.explain(error, root, file):
                if (pos, message) not in seen:
                    seen.add((pos, message))
                    out.append(Finding(Diagnostic("error", pos, message, self.rule), scope))
        return out

    def explain(self, error: ValidationError, root: Any, file: str) -> list[tuple[Pos, str]]:
        """One (position, message) per problem; an additionalProperties error gives one per key."""
        if error.validator in ("anyOf", "oneOf") and error.context:
            special = self._alternatives(error, root, file)
            if special is not None:
                return [special]
            from jsonschema.exceptions import best_match

            return self.explain(best_match(error.context), root, file)
        target = _locate(root, error.absolute_path, file)
        defname = self.owner.get(id(error.schema), "<root>")
        what, plural = _what(defname)
        key = str(error.absolute_path[-1]) if error.absolute_path else ""
        value = error.instance
        v = error.validator
        if v == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            extras = [k for k in value if k not in allowed and not any(re.search(p, k) for p in error.schema.get("patternProperties", {}))]
            head = f"{what} {'allow' if plural else 'allows'} only {', '.join(allowed)}" if allowed else f"{what} {'take' if plural else 'takes'} no keys"
            return [(target.key_pos(k), f"{head}; {_lookup(_INSTEAD, defname, k) or self._version_hint(k) or f'remove `{k}`'}") for k in extras]
        if v == "required":
            missing = re.match(r"'(.*)' is a required property", error.message)
            name = missing.group(1) if missing else str(error.validator_value)
            hint = _lookup(_REQUIRED_HINT, defname, name)
            if hint is None:
                required = ", ".join(error.schema.get("required", [])) or name
                desc = error.schema.get("properties", {}).get(name, {}).get("description", "")
                hint = f"{what} {'require' if plural else 'requires'} {required}; add `{name}`" + (f" ({desc.rstrip('.')})" if desc else "")
            return [(target.node_pos(), hint)]
        if v == "pattern":
            return [(target.value_pos(), self._pattern(defname, key, value, error.validator_value))]
        if v in ("enum", "const"):
            options = list(error.validator_value) if v == "enum" else [error.validator_value]
            if key == "naftiko" and defname == "<root>":
                return [(target.value_pos(), f"use `naftiko: {options[0]}` (found '{value}')")]
            near = _closest(value, options)
            where = f"`{key}`" if key else what
            text = f"{where} '{_short(value)}' is not one of {', '.join(map(str, options))}"
            return [(target.value_pos(), text + (f"; use '{near}'" if near is not None else ""))]
        if v == "not" and defname == "Forbidden":
            pos = target.parent.key_at(target.key) if isinstance(target.parent, YMap) else target.value_pos()
            return [(pos, _FORBIDDEN.get(key, f"`{key}` is not allowed here: a tool or operation uses exactly one of `call`, `steps`, `ref` or static outputs; remove it"))]
        if v == "type":
            expected = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
            where = f"`{key}`" if key else what
            hint = ""
            if self.kind != "lenient" and expected == "object" and isinstance(value, list) and is_ikanos(self.version):
                hint = f"; in {self.version} named entries are a map keyed by name (`naftiko migrate` rewrites the file)"
            elif self.kind != "lenient" and expected == "array" and isinstance(value, dict) and not is_ikanos(self.version):
                hint = f"; in {self.version} named entries are a list of `{{name: ...}}` (keyed maps came with 1.0.0-alpha3)"
            return [(target.value_pos(), f"{where} must be {expected}, found {_json_type(value)}{hint}")]
        if v in ("minItems", "minProperties"):
            return [(target.value_pos(), f"`{key}` must not be empty")]
        if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return [(target.value_pos(), f"`{key}` {value} is out of range ({v} {error.validator_value})")]
        if v == "minLength":
            return [(target.value_pos(), f"`{key}` must not be empty")]
        return [(target.value_pos(), _short(error.message, 200))]

    def _version_hint(self, key: str) -> str | None:
        """What an unexpected key is called in this schema's version, or since when it exists."""
        if self.kind == "lenient":
            return None
        hint = (_IKANOS_RENAMES if is_ikanos(self.version) else _NAFTIKO_RENAMES).get(key)
        if hint is None and key in _NEWER and SCHEMA_VERSIONS.index(self.version) < SCHEMA_VERSIONS.index(_NEWER[key]):
            hint = f"`{key}` exists from {_NEWER[key]} on; remove it or declare that version"
        return hint

    def _alternatives(self, error: ValidationError, root: Any, file: str) -> tuple[Pos, str] | None:
        """anyOf/oneOf of `required` alternatives: say which keys are expected, in words."""
        options = [c.validator_value for c in error.context if c.validator == "required"]
        if len(options) != len(error.context):
            return None
        target = _locate(root, error.absolute_path, file)
        names = [f"`{o[0]}`" for o in options if o]
        if error.validator == "oneOf" and isinstance(error.instance, dict) and all(o and o[0] in error.instance for o in options):
            return target.node_pos(), f"use only one of {' or '.join(names)}: a capability file keeps its consumes under `capability.consumes`, a shared consumes file has no `capability`"
        defname = self.owner.get(id(error.schema), "<root>")
        what, plural = _what(defname)
        return target.node_pos(), f"{what} {'need' if plural else 'needs'} {' or '.join(names)}"

    def _pattern(self, defname: str, key: str, value: Any, pattern: str) -> str:
        if defname == "IdentifierKebab":
            return f"'{value}' is not a kebab-case name (letters, digits and '-'); e.g. '{_kebab(value)}'"
        if defname == "IdentifierExtended":
            return f"'{value}' may use only letters, digits, '-', '_' and '*'"
        if defname == "VariableName":
            return f"bind variable '{value}' must be UPPER_SNAKE_CASE, e.g. '{_kebab(value).replace('-', '_').upper()}'"
        if defname == "CallReference":
            ns, _, op = str(value).partition(".")
            return f"call '{value}' must be `<namespace>.<operation>` with letters, digits and '-' only; e.g. '{_kebab(ns)}.{_kebab(op)}' (rename the operation too)"
        if key == "baseUri":
            return f"baseUri '{value}' must be a literal http(s) URL without `{{{{...}}}}` templates or a trailing '/' in the official schema"
        return f"`{key}` '{_short(value)}' does not match {pattern}"
