"""Which keys each position of a capability file may hold, and the one walker that reports the rest.

A misspelt key is the most common mistake in a hand-written capability, and the most dangerous:
`mehtod: POST` is ignored, so a create silently becomes a GET. The table below lists, per kind of
node, every key any format version defines there (official schemas 1.0.0-alpha1 .. 1.0.0-beta4),
the dialect keys the normalizer reads (docs/dialect.md), and this runtime's extensions. One walker
(`check_keys`) reads it for `run` and `validate` alike, so both say the same thing:

- a key that is a near miss of a key defined there (`mehtod`, `requried`, `opertions`,
  `inputParameter`) is an error with did-you-mean, at the key's own line:col;
- any other unknown key is a warning (it is ignored);
- keys starting with `x-` are extensions and are never reported.

The near misses found are kept (`Typos`) so that the symptoms they cause (an operation that now
has no method, a call that now names nothing) can say they are probably caused by the typo.
Values that hold free data (`with`, body `data`, bind `keys`, JSON Schemas, metadata) are not
walked: their keys are the author's names, not the format's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from naftiko_runtime import credentials
from naftiko_runtime.capability.diagnostics import Diagnostics, Pos, loose_name
from naftiko_runtime.capability.yamlsource import YList, YMap


@dataclass(frozen=True)
class Kind:
    """One kind of mapping: how messages name it, and its keys (key -> kind of the value, or None
    for a value that is not walked). A value of a kind may be a mapping or a collection of them
    (a list, or a map keyed by name), as every collection may be written both ways."""

    what: str
    keys: Mapping[str, str | None]


def _kind(what: str, *plain: str, **children: str) -> Kind:
    keys: dict[str, str | None] = dict.fromkeys(plain)
    keys.update({k.replace("__", "-"): v for k, v in children.items()})
    return Kind(what, keys)


_LABELS = ("label", "display", "description", "tags")  # label (Naftiko) was renamed display (Ikanos)
_IMPORT = ("location", "from", "import", "as")  # imported entries: location (Naftiko) became from
_EXECUTES = ("call", "with", "ref")  # plus steps/mappings/outputParameters, walked
_PARAM_SCHEMA = (  # JSON Schema keywords a parameter may carry (reader.SCHEMA_KEYWORDS, values not walked)
    "enum", "items", "properties", "format", "default", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "minItems", "maxItems", "const", "examples", "example", "nullable",
)
KINDS: dict[str, Kind] = {
    "root": _kind("the document root", "naftiko", "ikanos", info="info", consumes="consumes",
                  exposes="exposure", aggregates="aggregate", binds="bind", capability="capability"),
    "info": _kind("`info`", *_LABELS, "created", "modified", "version", stakeholders="person"),
    "person": _kind("a stakeholder", "role", "fullName", "email", "name"),
    "capability": _kind("`capability`", "workflow", "imports", binds="bind", exposes="exposure",
                        consumes="consumes", aggregates="aggregate", tools="tool"),
    "bind": _kind("a bind", "namespace", "description", "location", "keys", *_IMPORT),
    "consumes": _kind("a consumes entry", "namespace", "type", "description", "baseUri", "ref", *_IMPORT,
                      inputParameters="parameter", authentication="auth", auth="auth",
                      resources="consumed-resource", tunnel="tunnel"),
    "tunnel": _kind("a tunnel", "type", "service", "identity", "fallback"),
    "auth": _kind("an authentication block", *credentials.all_keys()),
    "consumed-resource": _kind("a consumed resource", "name", "path", *_LABELS,
                               inputParameters="parameter", operations="consumed-operation"),
    "consumed-operation": _kind("a consumed operation", "name", "method", "path", *_LABELS, "body",
                                "outputRawFormat", "outputSchema", "outputMediaType", "maxBinarySize",
                                inputParameters="parameter", outputParameters="output", mappings="mapping"),
    "parameter": _kind("a parameter", "name", "in", "type", "description", "required", "value",
                       "template", "mapping", "label", "display", *_PARAM_SCHEMA),
    "output": _kind("an output parameter", "name", "type", "description", "value", "mapping", "const",
                    properties="output", items="output"),
    "exposure": _kind("an exposure", "type", "namespace", "address", "port", "description",
                      "transport", "maxBinarySize", "ttlMs", "cacheScope", "groups", "paths", *_IMPORT,
                      authentication="auth", resources="rest-resource", tools="tool", prompts="prompt", cors="cors",
                      skills="skill", management="management", observability="observability"),
    "rest-resource": _kind("a REST resource", "name", "path", *_LABELS, inputParameters="parameter",
                           operations="rest-operation", forward="forward"),
    "forward": _kind("`forward`", "targetNamespace", "trustedHeaders"),
    "cors": _kind("a `cors` block", "allowedOrigins", "origins", "allowedMethods", "methods", "allowedHeaders",  # extension:
                  "headers", "exposedHeaders", "allowCredentials", "credentials", "maxAge"),  # docs/cors.md
    "rest-operation": _kind("a REST operation", "name", "method", *_LABELS, *_EXECUTES, "calls", "inputSchema",
                            inputParameters="parameter", outputParameters="output", steps="step",
                            mappings="mapping", responses="response", responseBinary="response-binary"),
    "response": _kind("a response", "description", content="media-type"),
    "media-type": _kind("a response media type", "binary", "schema"),
    "response-binary": _kind("`responseBinary`", "status", "mediaType", "description"),
    "tool": _kind("an MCP tool", "name", *_LABELS, *_EXECUTES, "calls", "inputSchema", inputParameters="parameter",
                  outputParameters="output", steps="step", mappings="mapping", hints="hints"),
    "hints": _kind("tool `hints`", "readOnly", "destructive", "idempotent", "openWorld"),
    "mcp-resource": _kind("an MCP resource", "name", *_LABELS, *_EXECUTES, "uri", "mimeType", "location", "binary",
                          outputParameters="output", steps="step", mappings="mapping"),
    "prompt": _kind("an MCP prompt", "name", *_LABELS, "location", arguments="prompt-argument", template="message"),
    "prompt-argument": _kind("a prompt argument", "name", *_LABELS, "required"),
    "message": _kind("a prompt message", "role", "content"),
    "skill": _kind("a skill", "name", "description", "license", "compatibility", "metadata", "allowed-tools",
                   "argument-hint", "user-invocable", "disable-model-invocation", "location", tools="skill-tool"),
    "skill-tool": _kind("a skill tool", "name", "description", "instruction", **{"from": "skill-source"}),
    "skill-source": _kind("a skill tool's `from`", "sourceNamespace", "action"),
    "step": _kind("a step", "type", "name", "description", "call", "with", "index", "match", "lookupValue",
                  "language", "location", "file", "dependencies", outputParameters="output"),
    "mapping": _kind("a mapping", "targetName", "target", "value"),
    "aggregate": _kind("an aggregate", "namespace", *_LABELS, *_IMPORT, functions="flow", flows="flow"),
    "flow": _kind("an aggregate flow", "name", *_LABELS, *_EXECUTES, "outputMediaType",
                  semantics="semantics", inputParameters="parameter", outputParameters="output", steps="step",
                  mappings="mapping"),
    "semantics": _kind("`semantics`", "safe", "idempotent", "cacheable"),
    "management": _kind("control `management`", "health", "info", "reload", "validate",
                        logs="logs", scripting="scripting"),
    "logs": _kind("control `logs`", "level-control", "stream", "max-subscribers"),
    "scripting": _kind("control `scripting`", "enabled", "defaultLocation", "defaultLanguage", "timeout",
                       "statementLimit", "allowedLanguages"),
    "observability": _kind("`observability`", "enabled", metrics="metrics", traces="traces", exporters="exporters"),
    "metrics": _kind("observability `metrics`", local="local-endpoint"),
    "traces": _kind("observability `traces`", "sampling", "propagation", local="local-endpoint"),
    "local-endpoint": _kind("a local endpoint", "enabled", "buffer-size"),
    "exporters": _kind("observability `exporters`", otlp="otlp"),
    "otlp": _kind("the OTLP exporter", "endpoint"),
}

# An exposure's keys depend on its `type` (a REST resource is not an MCP resource); an exposure of
# unknown type is checked against the union above.
EXPOSURE_KINDS: dict[str, Kind] = {
    "rest": _kind("a REST exposure", "type", "namespace", "address", "port", "description", "maxBinarySize", *_IMPORT,
                  authentication="auth", resources="rest-resource", cors="cors"),
    "mcp": _kind("an MCP exposure", "type", "namespace", "address", "port", "description", "transport",
                 "maxBinarySize", "ttlMs", "cacheScope", authentication="auth", tools="tool",
                 resources="mcp-resource", prompts="prompt"),
    "skill": _kind("a skill exposure", "type", "namespace", "address", "port", "description", "groups",
                   authentication="auth", skills="skill"),
    "control": _kind("a control exposure", "type", "namespace", "address", "port", "description",
                     authentication="auth", management="management", observability="observability"),
    "http": _kind("an http exposure", "type", "namespace", "address", "port", "description", "paths"),
}

# Fields whose value is a collection of named entries (a list, or a map keyed by name): walking
# them yields entries, never keys of the format.
COLLECTIONS = frozenset({
    "consumes", "exposes", "aggregates", "binds", "stakeholders", "tools", "resources", "operations",
    "inputParameters", "outputParameters", "steps", "mappings", "prompts", "arguments", "template",
    "skills", "functions", "flows", "properties", "responses", "content",
})


def keyed_fields(items: Any) -> bool:
    """`items: {fullName: {type: string}, ...}`: an Ikanos orchestrated array's element fields keyed
    by name, not one output parameter (whose `type` is text)."""
    return isinstance(items, YMap) and bool(items) and all(isinstance(v, YMap) for v in items.values())


@dataclass(frozen=True)
class Typo:
    """A key that is a near miss of one defined at its position."""

    pos: Pos  # the key as written
    key: str
    meant: str
    parent: Pos  # the mapping it sits in
    ancestors: tuple[Pos, ...]  # every enclosing mapping, the document root first


@dataclass
class Typos:
    """The near misses of one document, for symptoms to name their probable cause."""

    items: list[Typo] = field(default_factory=list)

    def cause(self, at: Pos, keys: Iterable[str] | None = None, *, deep: bool = False) -> str:
        """'; probably caused by ...' when a typo of one of `keys` (any key when None) sits in the
        mapping at `at` (or, with `deep`, anywhere inside it); else ''."""
        wanted = None if keys is None else set(keys)
        for typo in self.items:
            inside = typo.parent == at or (deep and at in typo.ancestors)
            if inside and (wanted is None or typo.meant in wanted):
                where = f"line {typo.pos.line}" if typo.pos.file == at.file else str(typo.pos)
                return f" (probably caused by the misspelt key `{typo.key}` at {where}: `{typo.meant}`?)"
        return ""


def near_miss(key: str, known: Iterable[str]) -> str | None:
    """The known key `key` probably meant: same letters ignoring case and `-`/`_`, singular or
    plural, or one edit away (two for long keys; transpositions count as one). None when no known
    key is that close, or when two are equally close."""
    names = [k for k in known]
    loose = loose_name(key)
    for k in names:
        if loose_name(k) == loose:
            return k
    for k in names:
        lk = loose_name(k)
        if len(lk) >= 3 and loose in (lk + "s", lk + "es") or len(loose) >= 3 and lk in (loose + "s", loose + "es"):
            return k
    best: list[str] = []
    best_distance = 3
    for k in names:
        lk = loose_name(k)
        limit = 0 if len(lk) < 4 else 1 if len(lk) < 8 else 2
        if abs(len(lk) - len(loose)) > limit:
            continue
        d = _distance(loose, lk, limit)
        if d <= limit:
            if d < best_distance:
                best, best_distance = [k], d
            elif d == best_distance:
                best.append(k)
    return best[0] if len(best) == 1 else None


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions), capped."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return prev[-1]


def check_keys(root: Any, diagnostics: Diagnostics) -> Typos:
    """Report every key the format does not define at its position; return the near misses."""
    walker = _Walker(diagnostics)
    if isinstance(root, YMap):
        walker.mapping(root, KINDS["root"], ())
    return walker.typos


class _Walker:
    def __init__(self, diagnostics: Diagnostics):
        self.d = diagnostics
        self.typos = Typos()

    def mapping(self, node: YMap, kind: Kind, ancestors: tuple[Pos, ...]) -> None:
        inside = (*ancestors, node.pos)
        for key, value in node.items():
            name = str(key)
            if name in kind.keys:
                child = kind.keys[name]
                if child is not None:
                    self.value(value, child, name in COLLECTIONS or (name == "items" and keyed_fields(value)), inside)
            elif not name.startswith("x-"):
                self.unknown(node, key, name, kind, inside)

    def value(self, value: Any, child: str, collection: bool, ancestors: tuple[Pos, ...]) -> None:
        if isinstance(value, YList):
            for item in value:
                if isinstance(item, YMap):
                    self.entry(item, child, ancestors)
        elif isinstance(value, YMap):
            if collection:  # a map keyed by name: each value is an entry
                for item in value.values():
                    if isinstance(item, (YMap, YList)):
                        self.value(item, child, False, ancestors)
            else:
                self.entry(value, child, ancestors)

    def entry(self, node: YMap, child: str, ancestors: tuple[Pos, ...]) -> None:
        kind = KINDS[child]
        if child == "exposure":
            kind = EXPOSURE_KINDS.get(str(node.get("type") or "").lower(), kind)
        self.mapping(node, kind, ancestors)

    def unknown(self, node: YMap, key: Any, name: str, kind: Kind, ancestors: tuple[Pos, ...]) -> None:
        pos = node.key_at(key)
        meant = near_miss(name, [k for k in kind.keys if k not in node])
        if meant is not None:
            self.typos.items.append(Typo(pos, name, meant, node.pos, ancestors))
            self.d.error(pos, f"unknown key `{name}` in {kind.what}; did you mean `{meant}`? As written it is ignored", "key-typo")
        else:
            self.d.warning(pos, f"unknown key `{name}` in {kind.what} is ignored (extensions start with `x-`)", "unknown-key")
