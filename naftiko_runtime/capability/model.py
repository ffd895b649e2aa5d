"""The canonical capability model: what every accepted dialect normalizes to.

Later stages (bind, compile, serve, validate) read only this model, never the raw YAML, so a
dialect form is handled once, in the normalizer, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from naftiko_runtime.capability.diagnostics import Diagnostics, Pos
from naftiko_runtime.capability.keys import Typos

Location = Literal["path", "query", "header", "cookie", "body", "environment"]
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object")


@dataclass
class Param:
    """An input parameter, consumed or exposed: where it goes, what it is, and its source."""

    name: str
    location: Location | None
    pos: Pos
    type: str = "string"
    description: str = ""
    required: bool = False
    value: Any = None  # consumed: a template or literal; exposed: a static value or `$.` JSONPath
    schema: dict[str, Any] = field(default_factory=dict)  # extra JSON Schema keywords (enum, items...)


@dataclass
class ApiKey:
    """One credential value placed in a header, query parameter, cookie, body field or path."""

    key: str
    value: str  # a template
    placement: str = "header"  # header | query | cookie | body | path


@dataclass
class WithRef:
    """A `with` value that copies input `name` with its type (`rest.x`, `tools.x`, `<ns>.x`)."""

    name: str


@dataclass
class Auth:
    """Credentials for an upstream (consumed) or a check on clients (exposed).

    `kind` is a scheme of credentials.SCHEMES (or "unsupported"); `fields` holds the block's keys
    that scheme reads (templates until compiled); API keys are `entries`, one per placed value.
    """

    kind: str
    pos: Pos
    entries: list[ApiKey] = field(default_factory=list)  # apikey: one or more placed values
    original_type: str = ""  # as written, for messages about unsupported schemes
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str | None:
        return self.fields.get("token")

    @property
    def username(self) -> str | None:
        return self.fields.get("username")

    @property
    def password(self) -> str | None:
        return self.fields.get("password")


@dataclass
class Body:
    """A request body template: `kind` decides encoding and content type."""

    kind: Literal["json", "raw-json", "text", "xml", "sparql", "form", "multipart", "binary"]
    data: Any
    pos: Pos
    media_type: str | None = None  # `mediaType`: the Content-Type sent instead of the kind's own


@dataclass
class ConsumedOperation:
    namespace: str
    name: str
    method: str
    path: str  # canonical `{{name}}` placeholders; trailing path params already appended
    pos: Pos
    resource: str = ""
    description: str = ""
    params: list[Param] = field(default_factory=list)  # adapter + resource + operation level, merged
    body: Body | None = None
    output_format: str = "json"
    media_type: str | None = None  # `outputMediaType`: the content type callers are told (beta1)
    max_binary: int | None = None  # `maxBinarySize` in bytes, for `outputRawFormat: binary` (beta1)
    tags: tuple[str, ...] = ()
    outputs: list["OutputParam"] = field(default_factory=list)  # named projections of the answer (steps only, SEMANTICS 2.6)


@dataclass
class Consumes:
    namespace: str
    base_uri: str
    pos: Pos
    description: str = ""
    auth: Auth | None = None
    operations: dict[str, ConsumedOperation] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # x-naftiko extension: timeouts, retries, limits
    params: list[Param] = field(default_factory=list)  # adapter-level inputParameters (`forward` applies the fixed headers)
    server_variables: tuple[str, ...] = ()  # `{host}` in baseUri that no bind fills: a value is given at deployment


@dataclass
class OutputParam:
    """A shaping rule for a response (SEMANTICS 4.5)."""

    type: str
    pos: Pos
    name: str | None = None
    mapping: str | None = None
    value: Any = None
    properties: dict[str, "OutputParam"] = field(default_factory=dict)
    items: "OutputParam | None" = None


@dataclass
class Step:
    """One orchestration step (SEMANTICS 4.6); its output is stored under its name."""

    name: str
    kind: Literal["call", "lookup", "script"]
    pos: Pos
    call: tuple[str, str] | None = None  # call: (consumes namespace, operation name)
    call_pos: Pos | None = None
    with_: dict[str, Any] = field(default_factory=dict)
    with_pos: dict[str, Pos] = field(default_factory=dict)
    index: str = ""  # lookup: the earlier step whose output is searched
    index_pos: Pos | None = None
    match: str = ""  # lookup: the field of each index entry compared with the value
    lookup_value: str = ""  # lookup: `$.<step>.<field>...`, or a template
    fields: list[str] | None = None  # lookup: the fields projected from a match (None: the whole entry)


@dataclass
class Mapping:
    """`mappings[]`: `target` (dotted: nested objects) <- `value` (`$.<step>.<field>...`)."""

    target: str
    value: str
    pos: Pos


@dataclass
class Action:
    """What an exposed operation, tool or aggregate function does when called."""

    pos: Pos
    call: tuple[str, str] | None = None  # (consumes namespace, operation name)
    call_pos: Pos | None = None
    with_: dict[str, Any] = field(default_factory=dict)
    with_pos: dict[str, Pos] = field(default_factory=dict)
    has_with: bool = False
    outputs: list[OutputParam] = field(default_factory=list)
    inputs: list[Param] | None = None  # declared inputs; None when the author declared none
    steps: list[Step] = field(default_factory=list)  # orchestration instead of `call`
    mappings: list[Mapping] = field(default_factory=list)  # the result of `steps`
    ref: tuple[str, str] | None = None  # (aggregate namespace, function name): delegates to it
    ref_pos: Pos | None = None


@dataclass
class RestOperation:
    method: str
    path: str  # the route as served (trailing path params appended at compile time)
    action: Action
    pos: Pos
    name: str = ""
    description: str = ""
    resource: str = ""
    tags: tuple[str, ...] = ()
    media_type: str | None = None  # `responseBinary.mediaType` or a binary `responses` entry (beta1): OpenAPI only


@dataclass
class Forward:
    """A REST resource that proxies what its operations do not serve to a consumes namespace."""

    path: str  # the route as written; a trailing `{name}` segment captures the rest of the path
    namespace: str  # the consumes namespace (`targetNamespace`)
    pos: Pos  # of `targetNamespace`
    trusted_headers: list[str] = field(default_factory=list)


@dataclass
class Cors:
    """A REST exposure's `cors` block (an extension of this runtime: docs/cors.md)."""

    origins: list[str]  # `scheme://host[:port]`, `scheme://*.host` patterns, or `*`
    pos: Pos
    methods: list[str] = field(default_factory=list)  # empty: every method the exposure serves
    headers: list[str] = field(default_factory=lambda: ["*"])  # request headers; `*`: whichever the browser asks for
    exposed_headers: list[str] = field(default_factory=list)
    credentials: bool = False
    max_age: int | None = None  # seconds a browser may cache a preflight answer


@dataclass
class RestExposure:
    namespace: str
    port: int
    pos: Pos
    address: str = "127.0.0.1"
    description: str = ""
    auth: Auth | None = None
    operations: list[RestOperation] = field(default_factory=list)
    max_binary: int | None = None  # `maxBinarySize` for every binary answer of this exposure (beta1)
    forwards: list[Forward] = field(default_factory=list)
    cors: Cors | None = None


@dataclass
class Tool:
    name: str
    action: Action
    pos: Pos
    label: str = ""  # `display` (`label` before alpha3): the MCP tool title
    description: str = ""
    hints: dict[str, bool] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass
class McpExposure:
    namespace: str
    pos: Pos
    port: int | None = None
    address: str = "127.0.0.1"
    transport: Literal["http", "stdio"] = "http"
    description: str = ""
    auth: Auth | None = None
    tools: list[Tool] = field(default_factory=list)
    resources: list["McpResource"] = field(default_factory=list)
    prompts: list["McpPrompt"] = field(default_factory=list)
    max_binary: int | None = None  # `maxBinarySize` for every binary answer of this exposure (beta1)
    ttl_ms: int | None = None  # `ttlMs` cache hint on list and read results (beta4)
    cache_scope: str | None = None  # `cacheScope`: public | private (beta4)


@dataclass
class McpResource:
    """An MCP resource (SEMANTICS 5.7): the files of a `location` folder, or what `action` answers."""

    name: str
    uri: str  # `{var}` placeholders make a dynamic resource a URI template
    pos: Pos
    label: str = ""
    description: str = ""
    mime_type: str | None = None
    action: Action | None = None  # dynamic: call (or steps), `with`, outputs
    location: Path | None = None  # static: a folder, resolved against the capability file
    binary: bool = False  # `binary: true` (beta1): reads return base64 blobs whatever the media type


@dataclass
class PromptArgument:
    name: str
    pos: Pos
    label: str = ""
    description: str = ""
    required: bool = True


@dataclass
class PromptMessage:
    role: str  # user | assistant
    content: str  # `{{argument}}` placeholders
    pos: Pos


@dataclass
class McpPrompt:
    """An MCP prompt: `template` messages, or a `location` file read as one user message."""

    name: str
    pos: Pos
    label: str = ""
    description: str = ""
    arguments: list[PromptArgument] = field(default_factory=list)
    messages: list[PromptMessage] = field(default_factory=list)


@dataclass
class SkillTool:
    """A tool a skill lists: derived from a sibling exposure's operation or tool, or an instruction file."""

    name: str
    pos: Pos
    description: str = ""
    source: tuple[str, str] | None = None  # `from`: (sibling exposure namespace, operation or tool name)
    instruction: str | None = None  # a file relative to the skill's location


@dataclass
class Skill:
    """One skill of a catalog (Agent Skills frontmatter fields, SEMANTICS 6.1)."""

    name: str
    pos: Pos
    description: str = ""
    location: Path | None = None  # the folder holding SKILL.md and its files
    frontmatter: dict[str, Any] = field(default_factory=dict)  # license, compatibility, metadata, allowed-tools... by spec name
    tools: list[SkillTool] = field(default_factory=list)


@dataclass
class SkillExposure:
    namespace: str
    pos: Pos
    port: int | None = None
    address: str = "127.0.0.1"
    description: str = ""
    auth: Auth | None = None
    skills: list[Skill] = field(default_factory=list)


@dataclass
class Observability:
    """A control exposure's `observability` block, with the spec's defaults."""

    enabled: bool = True
    metrics: bool = True  # metrics.local.enabled: /metrics on the control port
    traces: bool = True  # traces.local.enabled: /traces on the control port (and tracing itself)
    buffer_size: int = 100  # traces.local.buffer-size
    sampling: float = 1.0
    propagation: Literal["w3c", "b3"] = "w3c"
    otlp_endpoint: str | None = None  # exporters.otlp.endpoint (a template: binds allowed)


@dataclass
class ControlExposure:
    """The management port (SEMANTICS 6.2): health, status, metrics, traces."""

    pos: Pos
    port: int | None = None
    namespace: str = "control"
    address: str = "127.0.0.1"
    auth: Auth | None = None
    health: bool = True  # management.health
    info: bool = False  # management.info: /status
    observability: Observability = field(default_factory=Observability)


@dataclass
class Function:
    """An aggregate function (`functions` in alpha2, `flows` later): an action adapters `ref`."""

    name: str
    namespace: str  # of its aggregate; `<namespace>.x` in its `with` names its input x
    action: Action
    pos: Pos
    description: str = ""
    semantics: dict[str, bool] = field(default_factory=dict)  # safe, idempotent, cacheable


@dataclass
class Aggregate:
    namespace: str
    pos: Pos
    label: str = ""
    functions: dict[str, Function] = field(default_factory=dict)


@dataclass
class Bind:
    namespace: str
    keys: dict[str, str]  # variable name -> provider key
    pos: Pos
    location: str | None = None
    key_pos: dict[str, Pos] = field(default_factory=dict)
    base_dir: Path | None = None  # a file `location` is relative to the file that declares the bind


@dataclass
class Capability:
    file: str
    version: str
    pos: Pos
    label: str = ""  # `info.display` (`info.label` before alpha3)
    description: str = ""
    info_version: str = ""  # `info.version` (beta4): the capability's own version, not the format's
    shared: bool = False  # a file of shared parts (root consumes/exposes/binds), imported by others
    tags: tuple[str, ...] = ()
    binds: list[Bind] = field(default_factory=list)
    consumes: dict[str, Consumes] = field(default_factory=dict)
    rest: list[RestExposure] = field(default_factory=list)
    mcp: list[McpExposure] = field(default_factory=list)
    skills: list[SkillExposure] = field(default_factory=list)
    control: ControlExposure | None = None
    aggregates: list[Aggregate] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    typos: Typos = field(default_factory=Typos)  # misspelt keys, for the symptoms they cause to cite

    @property
    def bind_names(self) -> set[str]:
        return {var for bind in self.binds for var in bind.keys}

    def exposure_namespaces(self) -> list[str]:
        return [e.namespace for e in (*self.rest, *self.mcp, *self.skills)] + ([self.control.namespace] if self.control else [])

    def operation(self, call: tuple[str, str] | None) -> ConsumedOperation | None:
        """The consumed operation `call` names (namespace, operation), or None."""
        consumes = self.consumes.get(call[0]) if call is not None else None
        return consumes.operations.get(call[1]) if consumes is not None else None

    def function(self, ref: tuple[str, str]) -> Function | None:
        """The aggregate function `ref` names (namespace, name), or None."""
        for aggregate in self.aggregates:
            if aggregate.namespace == ref[0] and ref[1] in aggregate.functions:
                return aggregate.functions[ref[1]]
        return None
