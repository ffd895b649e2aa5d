"""Compile a loaded capability for serving: transports, invocations, routes, tools.

Everything adapters need is decided here, before the first request, and every problem is
collected (not just the first) so `naftiko run` can list them all with their positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.exposes.auth import Guard, compile_guard, credential_values
from naftiko_runtime.exposes.health import Lifecycle
from naftiko_runtime.inputs import Input
from naftiko_runtime.invoke import Invocation, UpstreamUnavailable
from naftiko_runtime.mock import MockTransport
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostics, Pos
from naftiko_runtime.capability.model import Capability, McpExposure, RestExposure, RestOperation, Tool
from naftiko_runtime.upstream.client import ClientSettings, HttpTransport, Transport
from naftiko_runtime.upstream.request import CompileContext, Upstream, UpstreamError

_ROUTE_VAR = re.compile(r"\{([^{}/]+)\}")
DEFAULT_MAX_BODY = 1024 * 1024


@dataclass
class Options:
    """Process-level settings from the command line."""

    mock: bool = False
    base_uris: dict[str, str] = field(default_factory=dict)
    client: ClientSettings = field(default_factory=ClientSettings)
    max_body_bytes: int = DEFAULT_MAX_BODY


@dataclass
class Route:
    """One REST operation as served: method, final path, and its invocation."""

    method: str
    path: str
    operation: RestOperation
    invocation: Invocation


@dataclass
class RestApi:
    exposure: RestExposure
    routes: list[Route]
    guard: Guard | None = None


@dataclass
class McpTool:
    tool: Tool
    invocation: Invocation


@dataclass
class McpApi:
    exposure: McpExposure
    tools: list[McpTool]
    guard: Guard | None = None


class Engine:
    """A capability compiled against its bind values, ready to serve."""

    def __init__(self, cap: Capability, binds: BoundValues, options: Options | None = None):
        self.cap = cap
        self.binds = binds
        self.options = options or Options()
        self.diagnostics = Diagnostics()
        prefixes = frozenset({"rest", "tools", "mcp", "inputs", *cap.exposure_namespaces()})
        self.ctx = CompileContext(binds, prefixes, self.diagnostics, mock=self.options.mock)
        self.lifecycle = Lifecycle()  # moved by runtime.py, reported by the health probes
        self.transports: dict[str, Transport] = self._transports()
        self.upstreams: dict[str, Upstream] = self._upstreams()
        self.rest = [self._rest(e) for e in cap.rest]
        self.mcp = [self._mcp(e) for e in cap.mcp]
        if self.diagnostics.errors:
            raise CapabilityError(self.diagnostics.errors)

    def _transports(self) -> dict[str, Transport]:
        settings = {ns: self._client_settings(c) for ns, c in self.cap.consumes.items()}
        if self.options.mock:
            shared = MockTransport()
            return {ns: shared for ns in self.cap.consumes}
        credentials = [v for auth in self._auths() for v in credential_values(auth, self.ctx)]
        out: dict[str, Transport] = {}
        for ns, consumes in self.cap.consumes.items():
            if consumes.auth is not None and consumes.auth.kind in ("unsupported", "oauth2", "digest"):
                self.diagnostics.error(consumes.auth.pos, f"authentication type '{consumes.auth.original_type}' on consumes '{ns}' is not supported by this runtime (bearer, apikey and basic are); requests would go out unauthenticated", "unsupported-auth")
            out[ns] = HttpTransport(ns, settings[ns], redact=credentials)
        return out

    def _auths(self):
        """Every authentication block of the file, consumed and exposed."""
        yield from (c.auth for c in self.cap.consumes.values())
        yield from (e.auth for e in [*self.cap.rest, *self.cap.mcp])

    def _client_settings(self, consumes) -> ClientSettings:
        """The process-wide client settings with the namespace's `x-naftiko:` overrides."""
        settings = replace(self.options.client)
        for problem in apply_extension(settings, consumes.settings):
            self.diagnostics.error(consumes.pos, f"consumes '{consumes.namespace}': x-naftiko: {problem}", "bad-extension")
        return settings

    def _guard(self, namespace: str, auth) -> Guard | None:
        try:
            return compile_guard(auth, self.ctx, namespace)
        except ValueError as exc:
            self.diagnostics.error(auth.pos, str(exc), "exposure-auth")
            return None

    def _upstreams(self) -> dict[str, Upstream]:
        out: dict[str, Upstream] = {}
        for ns, consumes in self.cap.consumes.items():
            try:
                out[ns] = Upstream(consumes, self.ctx, self.options.base_uris.get(ns))
            except UpstreamError as exc:
                for field_, message in exc.problems:
                    where = consumes.auth.pos if field_ == "authentication" and consumes.auth is not None else consumes.pos
                    self.diagnostics.error(where, message, "unbound-variable")
        return out

    def _invocation(self, name: str, action, pos: Pos) -> Invocation | None:
        try:
            return Invocation(name, action, self.cap, self.ctx, self.transports, self.upstreams)
        except UpstreamUnavailable:
            return None
        except ValueError as exc:
            self.diagnostics.error(action.call_pos or pos, str(exc), "compile")
            return None

    def _rest(self, exposure: RestExposure) -> RestApi:
        routes: list[Route] = []
        seen: dict[tuple[str, str], Route] = {}
        for op in exposure.operations:
            label = op.name or f"{op.method} {op.path}"
            invocation = self._invocation(f"operation '{label}'", op.action, op.pos)
            if invocation is None:
                continue
            path = route_with_inputs(op.path, invocation.inputs)
            invocation.refresh_checks()
            route = Route(op.method, path, op, invocation)
            key = (op.method, _route_shape(path))
            if key in seen:
                other = seen[key].operation
                self.diagnostics.error(op.pos, f"{op.method} {path} is served twice in '{exposure.namespace}': '{op.name or op.action.call}' here and '{other.name or other.action.call}' at line {other.pos.line}; give one a different path or method", "duplicate-route")
                continue
            seen[key] = route
            routes.append(route)
        return RestApi(exposure, routes, self._guard(exposure.namespace, exposure.auth))

    def _mcp(self, exposure: McpExposure) -> McpApi:
        tools: list[McpTool] = []
        names: dict[str, Pos] = {}
        for tool in exposure.tools:
            if tool.name in names:
                self.diagnostics.error(tool.pos, f"tool '{tool.name}' is declared twice in '{exposure.namespace}' (first at line {names[tool.name].line})", "duplicate-tool")
                continue
            names[tool.name] = tool.pos
            invocation = self._invocation(f"tool '{tool.name}'", tool.action, tool.pos)
            if invocation is not None:
                tools.append(McpTool(tool, invocation))
        return McpApi(exposure, tools, self._guard(exposure.namespace, exposure.auth))

    async def close(self) -> None:
        for transport in {id(t): t for t in self.transports.values()}.values():
            await transport.close()


def _loose(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def route_with_inputs(path: str, inputs: list[Input]) -> str:
    """Path inputs the route does not bind become trailing segments (`/v1/session` -> `/v1/session/{id}`).

    A route variable that differs from an input only in case, `-` or `_` (`{orgname}` for input
    `orgName`) is renamed to the input, which is what its author meant.
    """
    names = {i.name for i in inputs}
    loose = {_loose(i.name): i.name for i in inputs}
    for var in _ROUTE_VAR.findall(path):
        if var not in names and _loose(var) in loose:
            path = path.replace("{" + var + "}", "{" + loose[_loose(var)] + "}")
    present = set(_ROUTE_VAR.findall(path))
    for inp in inputs:
        if inp.location == "path":
            if inp.name not in present:
                path = path.rstrip("/") + "/{" + inp.name + "}"
                present.add(inp.name)
    for name in present:  # a route variable nobody declared is still an input
        if not any(i.name == name for i in inputs):
            inputs.append(Input(name=name, location="path", required=True))
        else:
            for i in inputs:
                if i.name == name:
                    i.location, i.required = "path", True
    return path


def _route_shape(path: str) -> str:
    return _ROUTE_VAR.sub("{}", path)


_EXTENSION = {  # x-naftiko key -> (ClientSettings attribute, type, lowest value)
    "timeout": ("timeout", float, 0.001),
    "connectTimeout": ("connect_timeout", float, 0.001),
    "readTimeout": ("read_timeout", float, 0.001),
    "retries": ("retries", int, 0),
    "maxResponseBytes": ("max_response_bytes", int, 1),
    "maxConnections": ("max_connections", int, 1),
}


def apply_extension(settings: ClientSettings, ext: dict) -> list[str]:
    """`x-naftiko:` on a consumes entry (docs/RELIABILITY.md): per-upstream client settings.

    Returns what is wrong with it; a misspelled key is an error rather than a silently ignored limit.
    """
    problems = []
    for key, raw in ext.items():
        if key not in _EXTENSION:
            problems.append(f"unknown key '{key}'; known: {', '.join(_EXTENSION)}")
            continue
        attr, type_, low = _EXTENSION[key]
        try:
            value = type_(raw)
            if isinstance(raw, bool) or value < low or (type_ is int and value != float(raw)):
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"{key} must be {'a whole number' if type_ is int else 'a number of seconds'} >= {low:g}, got {raw!r}")
            continue
        setattr(settings, attr, value)
    return problems


def capability_dir(cap: Capability) -> Path:
    return Path(cap.file).resolve().parent
