"""The invocation core: one compiled action per exposed operation or tool, shared by every adapter.

REST routes, MCP tools (and later a CLI `call`) turn their request into an `inputs` dict and call
`Invocation.invoke`; what comes back is an `Outcome` each adapter renders its own way. Nothing here
knows about HTTP servers or JSON-RPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naftiko_runtime.inputs import Checker, Input, derive_inputs, json_schema
from naftiko_runtime.shaping import NOTHING, Shaper
from naftiko_runtime.capability.model import Action, Capability, ConsumedOperation, OutputParam, WithRef
from naftiko_runtime.templates import MISSING, Ref, Template, to_text
from naftiko_runtime.upstream.client import Response, Transport
from naftiko_runtime.upstream.request import CompileContext, RequestPlan, Upstream, lookup_in

JSON_CT = "application/json"


@dataclass
class Outcome:
    """What an action produced: the upstream status, and either raw bytes or a shaped value."""

    status: int
    body: bytes
    content_type: str | None
    value: Any = NOTHING  # the shaped value when outputs reshaped the body
    retry_after: str | None = None  # the upstream's Retry-After on a 429/503, passed on to the caller

    @property
    def ok(self) -> bool:
        return self.status < 400


class UpstreamUnavailable(ValueError):
    """The consumes namespace failed to compile; its own error was already reported."""


class Invocation:
    """An exposed operation or tool compiled against its consumed operation."""

    def __init__(self, name: str, action: Action, cap: Capability, ctx: CompileContext,
                 transports: dict[str, Transport], upstreams: dict[str, Upstream]):
        self.name = name
        self.action = action
        self.op: ConsumedOperation | None = None
        self.plan: RequestPlan | None = None
        self.transport: Transport | None = None
        if action.call is not None:
            namespace, op_name = action.call
            consumes = cap.consumes.get(namespace)
            if consumes is None:
                raise ValueError(f"{name}: call '{namespace}.{op_name}' names no consumes namespace; known: {', '.join(cap.consumes) or 'none'}")
            self.op = consumes.operations.get(op_name)
            if self.op is None:
                known = ", ".join(sorted(consumes.operations)) or "none"
                raise ValueError(f"{name}: call '{namespace}.{op_name}' names no operation of '{namespace}'; known: {known}")
            if namespace not in upstreams:
                raise UpstreamUnavailable(namespace)
            self.plan = RequestPlan(upstreams[namespace], self.op, ctx)
            self.transport = transports[namespace]
        elif not action.outputs:
            raise ValueError(f"{name}: has no `call` and no static outputs, so it has nothing to do")
        is_bind = lambda path: ctx.binds.lookup(Ref(path)) is not MISSING  # noqa: E731
        self.inputs: list[Input] = derive_inputs(action, self.op, is_bind, ctx.prefixes)
        self.checker = Checker(self.inputs)
        self.with_plan = [(key, _compile_with(value, ctx)) for key, value in action.with_.items()]
        self.shaper = Shaper(action.outputs, self.op.output_format if self.op else "json")
        self._values = {text: ctx.template(text) for text in _value_texts(action.outputs)}  # compiled at load

    def refresh_checks(self) -> None:
        """Rebuild the checks after an adapter adjusted the inputs (REST route variables)."""
        self.checker = Checker(self.inputs)

    @property
    def input_schema(self) -> dict[str, Any]:
        return json_schema(self.inputs)

    def arguments(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Call arguments: inputs pass by name, then `with` entries copy, render or set values."""
        args = dict(inputs)
        if not self.with_plan:
            return args
        lookup = lookup_in(inputs)
        for key, (kind, payload) in self.with_plan:
            if kind == "ref":
                if payload in inputs:
                    args[key] = inputs[payload]
                elif key != payload:
                    args.pop(key, None)
            elif kind == "template":
                value = payload.render_value(lookup)
                if value is not MISSING:
                    args[key] = value
            else:
                args[key] = payload
        return args

    async def invoke(self, inputs: dict[str, Any]) -> Outcome:
        """Check inputs, call the upstream, shape the answer. Raises InputError / UpstreamFailure."""
        self.checker.check(inputs)
        if self.plan is None:
            return self._static(inputs)
        prepared = self.plan.build(self.arguments(inputs))
        response: Response = await self.transport.send(prepared)  # type: ignore[union-attr]
        if response.status >= 400:
            retry_after = response.headers.get("Retry-After") if response.status in (429, 503) else None
            return Outcome(response.status, response.body, response.content_type, retry_after=retry_after)
        if self.shaper.identity:
            return Outcome(response.status, response.body, response.content_type)
        value = self.shaper.shape(response.body, response.content_type, self._renderer(inputs))
        if value is NOTHING:
            return Outcome(response.status, response.body, response.content_type)
        return Outcome(response.status, b"", JSON_CT, value)

    def _renderer(self, inputs: dict[str, Any]):
        lookup = lookup_in(inputs)
        return lambda text: self._values[text].render(lookup)

    def _static(self, inputs: dict[str, Any]) -> Outcome:
        """Mock-mode outputs (no call): named static values, templates rendered with inputs."""
        lookup = lookup_in(inputs)
        result: dict[str, Any] = {}
        for out in self.action.outputs:
            if out.value is None:
                continue
            value = self._values[out.value].render(lookup) if isinstance(out.value, str) else to_text(out.value)
            result[out.name or "value"] = value
        return Outcome(200, b"", JSON_CT, result)


def _value_texts(outputs: list[OutputParam]) -> set[str]:
    """Every string `value` in an output tree: the templates shaping and mock outputs render."""
    found: set[str] = set()
    for out in outputs:
        if isinstance(out.value, str):
            found.add(out.value)
        found |= _value_texts(list(out.properties.values()) + ([out.items] if out.items else []))
    return found


def _compile_with(value: Any, ctx: CompileContext) -> tuple[str, Any]:
    if isinstance(value, WithRef):
        return "ref", value.name
    if isinstance(value, str) and "{{" in value:
        template: Template = ctx.template(value)
        if template.is_constant:
            return "literal", template.constant()
        return "template", template
    return "literal", value
