"""Compile a loaded capability into a `Plan`: everything adapters need, decided once, with no I/O.

A plan holds no socket, session or task: `naftiko validate` builds one to learn what `run` would
refuse, a reload builds the next one while the current keeps serving, and workers share one built
before they start. The per-process part (transports, lifecycle) is `runtime.Runtime`.

Every problem is collected, not just the first, so `naftiko run` can list them all with their
positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from naftiko_runtime import credentials
from naftiko_runtime.binds import BoundValues
from naftiko_runtime.capability.diagnostics import Diagnostics, Pos, did_you_mean, loose_name, name_list
from naftiko_runtime.capability.model import (
    Action,
    Capability,
    ConsumedOperation,
    ControlExposure,
    McpExposure,
    RestExposure,
    SkillExposure,
    RestOperation,
    Step,
    Tool,
)
from naftiko_runtime.capability.orchestration import script_refused
from naftiko_runtime.capability.reader import distinct
from naftiko_runtime.errors import CapabilityError, CompileError
from naftiko_runtime.exposes.auth import Guard, compile_guard
from naftiko_runtime.inputs import Input, action_inputs
from naftiko_runtime.orchestration import compile_steps, shapes
from naftiko_runtime.pipeline import CallStage, Handler, Invocation, OutputValues, RefStage, StaticStage, WithPlan
from naftiko_runtime.prompts import Prompt
from naftiko_runtime.resources import DynamicResource, Resource, StaticResource
from naftiko_runtime.skills import Catalog, resolve
from naftiko_runtime.settings import Settings
from naftiko_runtime.shaping import Shaper
from naftiko_runtime.templates import MISSING, Ref
from naftiko_runtime.upstream.request import HOP_BY_HOP, CompileContext, ForwardPlan, Limit, RequestPlan, Upstream

_ROUTE_VAR = re.compile(r"\{([^{}/]+)\}")
INPUT_PREFIXES = ("rest", "tools", "mcp", "inputs")  # `{{tools.x}}` and the like name input x
DEFAULT_MAX_BINARY = 10 << 20  # the format's default `maxBinarySize` (beta1)


@dataclass(frozen=True)
class Route:
    """One REST operation as served: method, final path, and its invocation."""

    method: str
    path: str
    operation: RestOperation
    invocation: Invocation


@dataclass(frozen=True)
class ForwardRoute:
    """A `forward` resource: what its operations do not serve is proxied to a consumes namespace."""

    path: str  # the resource's route (its operations, if any, are served there)
    prefix: str  # the route before the capture: the part of the path that is not forwarded
    capture: str | None  # the trailing `{name}` that captures the rest of the path (any depth)
    plan: ForwardPlan


@dataclass(frozen=True)
class RestApi:
    exposure: RestExposure
    routes: tuple[Route, ...]
    guard: Guard | None = None
    forwards: tuple[ForwardRoute, ...] = ()


@dataclass(frozen=True)
class McpTool:
    tool: Tool
    invocation: Invocation


@dataclass(frozen=True)
class McpApi:
    exposure: McpExposure
    tools: tuple[McpTool, ...]
    guard: Guard | None = None
    resources: tuple[Resource, ...] = ()
    prompts: tuple[Prompt, ...] = ()


@dataclass(frozen=True)
class SkillApi:
    exposure: SkillExposure
    catalog: Catalog
    guard: Guard | None = None


@dataclass(frozen=True)
class ControlApi:
    exposure: ControlExposure
    guard: Guard | None = None
    otlp_endpoint: str | None = None  # `exporters.otlp.endpoint` with its bind values filled in


@dataclass(frozen=True)
class Plan:
    """A capability compiled against its bind values and settings, ready for any process to serve."""

    cap: Capability
    settings: Settings
    mock: bool
    upstreams: Mapping[str, Upstream]  # consumes namespace -> base URL, credentials, its settings
    rest: tuple[RestApi, ...]
    mcp: tuple[McpApi, ...]
    credentials: tuple[str, ...] = ()  # credential values an upstream must never echo back to a caller
    diagnostics: Diagnostics = field(default_factory=Diagnostics)  # what compiling noticed (warnings)
    skills: tuple[SkillApi, ...] = ()
    control: ControlApi | None = None
    sources: tuple[Path, ...] = ()  # every file it was built from: capability, imports, bind files (reload watches them)


def input_prefixes(cap: Capability) -> frozenset[str]:
    """Names that, before a dot, mean "the input": `{{tools.x}}`, `{{<exposure-ns>.x}}`, `{{<aggregate-ns>.x}}`."""
    return frozenset({*INPUT_PREFIXES, *cap.exposure_namespaces(), *(a.namespace for a in cap.aggregates)})


@dataclass(frozen=True)
class _Stage:
    """A compiled handler with what adapters publish about it."""

    handler: Handler
    output_schema: dict | None  # what a shaped success satisfies, when declared
    upstream: str | None  # the consumes namespace it answers from, for messages
    binary_type: str | None = None  # the media type of a binary answer (`outputRawFormat: binary`)


def compile_plan(cap: Capability, binds: BoundValues, settings: Settings | None = None, *,
                 mock: bool = False, base_uris: Mapping[str, str] | None = None) -> Plan:
    """Compile `cap`; raises CapabilityError listing every error found."""
    return _Compiler(cap, binds, settings or Settings(), mock, dict(base_uris or {})).plan()


class _Compiler:
    def __init__(self, cap: Capability, binds: BoundValues, settings: Settings, mock: bool, base_uris: dict[str, str]):
        self.cap = cap
        self.settings = settings
        self.mock = mock
        self.base_uris = base_uris
        self.diagnostics = Diagnostics()
        self.ctx = CompileContext(binds, input_prefixes(cap), self.diagnostics, mock=mock, base_dir=Path(cap.file).parent)
        self.functions: dict[tuple[str, str], _Stage | None] = {}  # aggregate functions, compiled once

    def plan(self) -> Plan:
        upstreams = self._upstreams()
        rest = tuple(self._rest(e, upstreams) for e in self.cap.rest)
        mcp = tuple(self._mcp(e, upstreams) for e in self.cap.mcp)
        skills = tuple(self._skills(e) for e in self.cap.skills)
        control = self._control(self.cap.control) if self.cap.control is not None else None
        if self.diagnostics.errors:
            raise CapabilityError(self.diagnostics.errors)
        exposures = (*self.cap.rest, *self.cap.mcp, *self.cap.skills, *([self.cap.control] if self.cap.control else []))
        auths = [c.auth for c in self.cap.consumes.values()] + [e.auth for e in exposures]
        secrets = (*(v for auth in auths for v in credentials.values(auth, self.ctx.binds.lookup)),
                   *(v for upstream in upstreams.values() for v in upstream.auth.derived))
        return Plan(self.cap, self.settings, self.mock, upstreams, rest, mcp, secrets, self.diagnostics, skills, control)

    # ------------------------------------------------------------------ upstreams

    def _upstreams(self) -> dict[str, Upstream]:
        out: dict[str, Upstream] = {}
        for ns, consumes in self.cap.consumes.items():
            settings, problems = self.settings.with_extension(consumes.settings)
            for problem in problems:
                self.diagnostics.error(consumes.pos, f"consumes '{ns}': x-naftiko: {problem}", "bad-extension")
            scheme = credentials.BY_KIND.get(consumes.auth.kind) if consumes.auth is not None else None
            if consumes.auth is not None and (scheme is None or scheme.upstream is None) and not self.mock:
                self.diagnostics.error(consumes.auth.pos, f"authentication type '{consumes.auth.original_type}' on consumes '{ns}' is not supported by this runtime ({credentials.names('upstream')} are); requests would go out unauthenticated", "unsupported-auth")
                continue
            upstream = Upstream.compile(consumes, self.ctx, settings, self.base_uris.get(ns))
            if upstream is not None:
                out[ns] = upstream
        return out

    # ------------------------------------------------------------------ invocations

    def _operation(self, label: str, call: tuple[str, str], pos: Pos | None = None) -> ConsumedOperation:
        namespace, op_name = call
        consumes = self.cap.consumes.get(namespace)
        if consumes is None:
            raise CompileError(f"{label}: call '{namespace}.{op_name}' names no consumes namespace '{namespace}'"
                               f"{did_you_mean(namespace, self.cap.consumes)} (known: {name_list(self.cap.consumes)})"
                               f"{self.cap.typos.cause(self.cap.pos, ['consumes', 'namespace'], deep=True)}", "call-unresolved", pos)
        op = consumes.operations.get(op_name)
        if op is None:
            raise CompileError(f"{label}: call '{namespace}.{op_name}': consumes '{namespace}' has no operation '{op_name}'"
                               f"{did_you_mean(op_name, consumes.operations)} (it has: {name_list(consumes.operations)})"
                               f"{self.cap.typos.cause(consumes.pos, ['resources', 'operations', 'name'], deep=True)}", "call-unresolved", pos)
        return op

    def _is_bind(self, path: tuple[str, ...]) -> bool:
        return self.ctx.binds.lookup(Ref(path)) is not MISSING

    def action_handler(self, label: str, action: Action, upstreams: Mapping[str, Upstream],
                       max_binary: int | None = None) -> _Stage | None:
        """Any action (a call, steps, a `ref`, static outputs) compiled into its pipeline handler;
        None when an upstream it needs failed to compile (already reported). Raises CompileError."""
        if action.ref is not None:
            return self._ref(action.ref, upstreams)
        values = OutputValues(action.outputs, self.ctx)
        if action.call is None and action.steps:
            for step in action.steps:
                if step.kind == "script":
                    raise CompileError(script_refused(label, step.name), "script-step", step.pos)

            def resolve(step: Step) -> tuple[ConsumedOperation, Upstream] | None:
                op = self._operation(f"{label} step '{step.name}'", step.call, step.call_pos) if step.call else None
                upstream = upstreams.get(op.namespace) if op is not None else None
                return (op, upstream) if op is not None and upstream is not None else None

            def respond(request: RequestPlan, op: ConsumedOperation) -> CallStage:
                return CallStage(request, Shaper(action.outputs if shapes(action.outputs) else [], op.output_format), values, op.media_type)

            handler = compile_steps(action, resolve, self.ctx, respond, self._is_bind)
            return _Stage(handler, None, handler.respond.namespace if handler and handler.respond else None) if handler else None
        if action.call is None:
            if not action.outputs:
                cause = self.cap.typos.cause(action.pos, ["call", "outputParameters", "steps", "ref"])
                raise CompileError(f"{label}: has no `call` and no static outputs, so it has nothing to do{cause}")
            return _Stage(StaticStage(action.outputs, values), None, None)
        op = self._operation(label, action.call)
        upstream = upstreams.get(op.namespace)
        if upstream is None:  # the namespace failed to compile; its own error is already reported
            return None
        if op.output_format != "binary":
            shaper = Shaper(action.outputs, op.output_format)
            return _Stage(CallStage(RequestPlan(upstream, op, self.ctx), shaper, values, op.media_type), shaper.output_schema, op.namespace)
        if action.outputs:
            self.diagnostics.warning(action.outputs[0].pos, f"{label}: `outputParameters` do not apply to the binary answer of '{op.namespace}.{op.name}' (its bytes pass through); remove them", "binary-outputs-ignored")
        if op.max_binary is not None:
            limit = Limit(op.max_binary, f"maxBinarySize of '{op.namespace}.{op.name}'")
        else:
            limit = Limit(max_binary or DEFAULT_MAX_BINARY, "maxBinarySize" + (" of the exposure" if max_binary else " (default)"))
        stage = CallStage(RequestPlan(upstream, op, self.ctx, limit), Shaper([], "binary"), values, op.media_type)
        return _Stage(stage, None, op.namespace, op.media_type or "application/octet-stream")

    def _ref(self, ref: tuple[str, str], upstreams: Mapping[str, Upstream]) -> _Stage | None:
        """A function's own `with` and handler, compiled once for every adapter that `ref`s it."""
        if ref not in self.functions:
            function = self.cap.function(ref)
            stage = None
            if function is not None:
                label = f"function '{ref[0]}.{ref[1]}'"
                try:
                    inner = self.action_handler(label, function.action, upstreams)
                    if inner is not None:
                        stage = _Stage(RefStage(WithPlan(function.action.with_, self.ctx), inner.handler), inner.output_schema,
                                       inner.upstream, inner.binary_type)
                except CompileError as exc:
                    self.diagnostics.error(exc.pos or function.action.call_pos or function.pos, exc.message, exc.rule)
            self.functions[ref] = stage
        return self.functions[ref]

    def _invocation(self, label: str, action: Action, pos: Pos, upstreams: dict[str, Upstream],
                    route: str | None = None, max_binary: int | None = None,
                    media_type: str | None = None) -> tuple[Invocation, str | None] | None:
        """The compiled pipeline and, for REST, the path as served; None after reporting a problem."""
        try:
            stage = self.action_handler(label, action, upstreams, max_binary)
            if stage is None:
                return None
            inputs = action_inputs(self.cap, action, self._is_bind, self.ctx.prefixes)
            if route is not None:
                route, inputs = route_with_inputs(route, inputs)
            invocation = Invocation(label, tuple(inputs), WithPlan(action.with_, self.ctx), stage.handler,
                                    stage.output_schema, stage.upstream, (media_type or stage.binary_type) if stage.binary_type else None)
            return invocation, route
        except CompileError as exc:
            self.diagnostics.error(exc.pos or action.call_pos or pos, exc.message, exc.rule)
            return None

    def _guard(self, namespace: str, auth) -> Guard | None:
        try:
            return compile_guard(auth, self.ctx, namespace)
        except CompileError as exc:
            self.diagnostics.error(auth.pos, exc.message, exc.rule)
            return None

    # ------------------------------------------------------------------ exposures

    def _rest(self, exposure: RestExposure, upstreams: dict[str, Upstream]) -> RestApi:
        routes: list[Route] = []
        seen: dict[tuple[str, str], Route] = {}
        for op in exposure.operations:
            compiled = self._invocation(f"operation '{op.name or f'{op.method} {op.path}'}'", op.action, op.pos, upstreams, op.path, exposure.max_binary, op.media_type)
            if compiled is None:
                continue
            invocation, path = compiled
            route = Route(op.method, path or op.path, op, invocation)
            key = (op.method, _ROUTE_VAR.sub("{}", route.path))
            if key in seen:
                other = seen[key].operation
                self.diagnostics.error(op.pos, f"{op.method} {route.path} is served twice in '{exposure.namespace}': '{op.name or op.action.call}' here and '{other.name or other.action.call}' at line {other.pos.line}; give one a different path or method", "duplicate-route")
                continue
            seen[key] = route
            routes.append(route)
        forwards = tuple(f for f in (self._forward(fwd, upstreams) for fwd in exposure.forwards) if f is not None)
        return RestApi(exposure, tuple(routes), self._guard(exposure.namespace, exposure.auth), forwards)

    def _forward(self, fwd: Forward, upstreams: dict[str, Upstream]) -> ForwardRoute | None:
        consumes = self.cap.consumes.get(fwd.namespace)
        if consumes is None:
            self.diagnostics.error(fwd.pos, f"`forward` of '{fwd.path}': targetNamespace '{fwd.namespace}' names no consumes namespace"
                                   f"{did_you_mean(fwd.namespace, self.cap.consumes)} (known: {name_list(self.cap.consumes)})", "forward-unresolved")
            return None
        upstream = upstreams.get(fwd.namespace)
        if upstream is None:  # the namespace failed to compile; its own error is already reported
            return None
        if upstream.auth.body:
            self.diagnostics.error(fwd.pos, f"`forward` of '{fwd.path}': the API key of consumes '{fwd.namespace}' goes in the request body, which a forwarded body (streamed as the caller sent it) cannot carry; use a header or query placement", "forward-auth-body")
            return None
        if upstream.dynamic is not None and not upstream.dynamic.streams:
            self.diagnostics.error(fwd.pos, f"`forward` of '{fwd.path}': consumes '{fwd.namespace}' authenticates with {upstream.dynamic.title}, which needs the whole request body (or a second attempt) while a forwarded body is streamed as the caller sends it; serve these calls as operations, or use bearer, apikey, basic or OAuth 2 client credentials", "forward-auth-dynamic")
            return None
        ignored = [h for h in fwd.trusted_headers if h.lower() in HOP_BY_HOP]
        if ignored:
            self.diagnostics.warning(fwd.pos, f"`forward` of '{fwd.path}': trusted header(s) {', '.join(ignored)} describe the connection, not the request, and are never forwarded", "forward-header-ignored")
        fixed: dict[str, str] = {}
        for p in consumes.params:
            value = self.ctx.template(p.value) if isinstance(p.value, str) else None
            if p.location == "header" and value is not None and value.is_constant:
                fixed[p.name] = value.constant()
        *head, last = fwd.path.rstrip("/").split("/") or [""]
        capture = last[1:-1] if _ROUTE_VAR.fullmatch(last) else None
        prefix = "/".join(head) or "/" if capture else fwd.path
        return ForwardRoute(fwd.path, prefix, capture, ForwardPlan(upstream, fwd.trusted_headers, fixed, f"forward {fwd.path}"))

    def _mcp(self, exposure: McpExposure, upstreams: dict[str, Upstream]) -> McpApi:
        tools: list[McpTool] = []
        names: dict[str, Pos] = {}
        for tool in exposure.tools:
            if tool.name in names:
                self.diagnostics.error(tool.pos, f"tool '{tool.name}' is declared twice in '{exposure.namespace}' (first at line {names[tool.name].line})", "duplicate-tool")
                continue
            names[tool.name] = tool.pos
            compiled = self._invocation(f"tool '{tool.name}'", tool.action, tool.pos, upstreams, max_binary=exposure.max_binary)
            if compiled is not None:
                tools.append(McpTool(tool, compiled[0]))
        return McpApi(exposure, tuple(tools), self._guard(exposure.namespace, exposure.auth),
                      self._resources(exposure, upstreams), tuple(Prompt(p) for p in _unique(exposure.prompts, "prompt", self.diagnostics)))

    def _control(self, exposure: ControlExposure) -> ControlApi:
        """The control port's guard, and its OTLP endpoint with bind values filled in."""
        endpoint = exposure.observability.otlp_endpoint
        if endpoint:
            template = self.ctx.template(endpoint)
            if not template.is_constant:
                names = ", ".join("{{" + r.text + "}}" for r in template.refs)
                self.diagnostics.error(exposure.pos, f"exporters.otlp.endpoint uses {names}, which no bind declares", "bad-observability")
            endpoint = template.constant() or None
        return ControlApi(exposure, self._guard(exposure.namespace, exposure.auth), endpoint)

    def _skills(self, exposure: SkillExposure) -> SkillApi:
        """The catalog, with every derived tool resolved against the sibling REST and MCP exposures."""
        skills = _unique(exposure.skills, "skill", self.diagnostics)
        targets, problems = resolve(skills, self.cap)
        for problem in problems:
            (self.diagnostics.error if problem.error else self.diagnostics.warning)(problem.tool.pos, problem.message, problem.rule)
        return SkillApi(exposure, Catalog(skills, targets, self.settings.max_response_bytes), self._guard(exposure.namespace, exposure.auth))

    def _resources(self, exposure: McpExposure, upstreams: dict[str, Upstream]) -> tuple[Resource, ...]:
        """Static folders, and dynamic resources compiled like tools (their uri variables are inputs)."""
        out: list[Resource] = []
        uris: dict[str, Pos] = {}
        for res in _unique(exposure.resources, "resource", self.diagnostics):
            if res.uri in uris:
                self.diagnostics.error(res.pos, f"resource uri '{res.uri}' is declared twice in '{exposure.namespace}' (first at line {uris[res.uri].line})", "duplicate-resource")
                continue
            uris[res.uri] = res.pos
            if res.action is None:
                out.append(StaticResource(res, self.settings.max_response_bytes))
                continue
            compiled = self._invocation(f"resource '{res.name}'", res.action, res.pos, upstreams)
            if compiled is None:
                continue
            try:
                out.append(DynamicResource(res, compiled[0]))
            except CompileError as exc:
                self.diagnostics.error(exc.pos or res.pos, exc.message, exc.rule)
        return tuple(out)


def _unique(items: list, what: str, diagnostics: Diagnostics) -> list:
    """`items` (resources or prompts) with later duplicates of a name reported and dropped."""
    def twice(item, first) -> None:
        diagnostics.error(item.pos, f"{what} '{item.name}' is declared twice (first at line {first.pos.line})", f"duplicate-{what}")
    return list(distinct(items, twice).values())


def route_with_inputs(path: str, inputs: list[Input]) -> tuple[str, list[Input]]:
    """The route as served and the inputs it implies; `inputs` is not changed.

    Path inputs the route does not bind become trailing segments (`/v1/session` ->
    `/v1/session/{id}`). A route variable that differs from an input only in case, `-` or `_`
    (`{orgname}` for input `orgName`) is renamed to the input, which is what its author meant.
    Every route variable is a required path input, declared or not.
    """
    names = {i.name for i in inputs}
    loose = {loose_name(i.name): i.name for i in inputs}
    for var in _ROUTE_VAR.findall(path):
        if var not in names and loose_name(var) in loose:
            path = path.replace("{" + var + "}", "{" + loose[loose_name(var)] + "}")
    present = set(_ROUTE_VAR.findall(path))
    for inp in inputs:
        if inp.location == "path" and inp.name not in present:
            path = path.rstrip("/") + "/{" + inp.name + "}"
            present.add(inp.name)
    out = [replace(i, location="path", required=True) if i.name in present else i for i in inputs]
    out += [Input(name=name, location="path", required=True) for name in dict.fromkeys(_ROUTE_VAR.findall(path)) if name not in names]
    return path, out
