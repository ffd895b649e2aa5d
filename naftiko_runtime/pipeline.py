"""The invocation core: each exposed operation or tool compiles once into an immutable pipeline.

```
inputs -> check (Checker) -> `with` (WithPlan) -> arguments -> handler -> Outcome
                                                   |
                   CallStage:   build the request, send it through the runtime, shape the answer
                   StaticStage: mock outputs rendered from the arguments (no upstream)
```

A handler is an async callable `(Exchange) -> Outcome`. Features that act around a stage (steps,
metrics, caching...) wrap a handler in another when the plan is compiled, so adapters (REST, MCP,
the CLI) never change: they turn a request into an `inputs` dict, call `Invocation.invoke`, and
render the `Outcome`. Nothing here opens a socket: the per-process `Runtime` passed to `invoke`
owns the transports, so the same compiled plan serves every worker and every reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from naftiko_runtime.capability.model import OutputParam, WithRef
from naftiko_runtime.errors import InputError, InputProblem
from naftiko_runtime.inputs import Checker, Input, json_schema
from naftiko_runtime.shaping import NOTHING, Shaper
from naftiko_runtime.templates import MISSING, Template, to_text
from naftiko_runtime.upstream.request import CompileContext, RequestPlan, lookup_in

if TYPE_CHECKING:
    from naftiko_runtime.runtime import Runtime
    from naftiko_runtime.upstream.client import Response

JSON_CT = "application/json"
BINARY_CT = "application/octet-stream"


@dataclass
class Outcome:
    """What an action produced: the upstream status, and either raw bytes or a shaped value."""

    status: int
    body: bytes
    content_type: str | None
    value: Any = NOTHING  # the shaped value when outputs reshaped the body
    retry_after: str | None = None  # the upstream's Retry-After on a 429/503, passed on to the caller
    binary: bool = False  # raw bytes (`outputRawFormat: binary`): never decoded as text

    @property
    def ok(self) -> bool:
        return self.status < 400

    def with_type(self, content_type: str) -> "Outcome":
        """The same answer advertised with another media type (`outputMediaType`), raw bodies only."""
        if self.value is not NOTHING:
            return self
        return Outcome(self.status, self.body, content_type, self.value, self.retry_after, self.binary)


class Exchange:
    """The state of one call as it moves through the stages."""

    __slots__ = ("args", "runtime")

    def __init__(self, args: dict[str, Any], runtime: "Runtime"):
        self.args = args  # inputs with `with` applied: what templates and the request read
        self.runtime = runtime  # this process's transports (and, later, its observers)


Handler = Callable[[Exchange], Awaitable[Outcome]]


class WithPlan:
    """Compiled `with` entries: inputs pass by name, then each entry copies, renders or sets a value."""

    __slots__ = ("entries",)

    def __init__(self, with_: dict[str, Any], ctx: CompileContext):
        self.entries = tuple((key, *_compile_with(value, ctx)) for key, value in with_.items())

    def apply(self, inputs: dict[str, Any]) -> dict[str, Any]:
        args = dict(inputs)
        if not self.entries:
            return args
        lookup = lookup_in(inputs)
        for key, kind, payload in self.entries:
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

    def source(self, name: str) -> str | None:
        """The value an argument is made from: the input a `with` entry copies or renders (one
        variable), the same name when no entry sets it, None when the file gives the value."""
        for key, kind, payload in self.entries:
            if key == name:
                if kind == "ref":
                    return payload
                if kind == "template":
                    roots = {ref.path[0] for ref in payload.refs}
                    return roots.pop() if len(roots) == 1 else None
                return None
        return name

    def blame(self, exc: InputError, kept: Callable[[str], bool] = lambda name: False,
              location: Callable[[str], str | None] | None = None) -> InputError:
        """`exc` naming what the caller sent rather than the consumed parameter it became
        (`imo` rather than `imo_number`); a name `kept` is already the caller's."""
        problems, renamed = [], False
        for problem in exc.problems:
            source = None if kept(problem.name) else self.source(problem.name)
            if source is None or source == problem.name:
                problems.append(problem)
                continue
            renamed = True
            where = location(source) if location is not None else problem.location
            problems.append(InputProblem(source, where, f"{problem.detail} (sent upstream as '{problem.name}')"))
        return InputError(problems, exc.title) if renamed else exc


def _compile_with(value: Any, ctx: CompileContext) -> tuple[str, Any]:
    if isinstance(value, WithRef):
        return "ref", value.name
    if isinstance(value, str) and "{{" in value:
        template: Template = ctx.template(value)
        if template.is_constant:
            return "literal", template.constant()
        return "template", template
    return "literal", value


class Invocation:
    """An exposed operation or tool compiled into its pipeline. Never changed after compiling."""

    __slots__ = ("name", "inputs", "checker", "input_schema", "output_schema", "upstream", "binary_type", "_with", "_handler")

    def __init__(self, name: str, inputs: tuple[Input, ...], with_plan: WithPlan, handler: Handler,
                 output_schema: dict[str, Any] | None = None, upstream: str | None = None, binary_type: str | None = None):
        self.name = name
        self.inputs = inputs
        self.checker = Checker(inputs)
        self.input_schema = json_schema(inputs)
        self.output_schema = output_schema  # what a successful shaped result satisfies, when declared
        self.upstream = upstream  # the consumes namespace a single-call pipeline sends to (for messages)
        self.binary_type = binary_type  # the media type of a binary answer (`outputRawFormat: binary`), for OpenAPI
        self._with = with_plan
        self._handler = handler

    def arguments(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return self._with.apply(inputs)

    def blame(self, exc: InputError) -> InputError:
        """An input error as the caller reads it: named after their own input (see WithPlan.blame)."""
        by_name = {i.name: i for i in self.inputs}
        return self._with.blame(exc, by_name.__contains__, lambda n: by_name[n].location if n in by_name else None)

    def invoke(self, inputs: dict[str, Any], runtime: "Runtime") -> Awaitable[Outcome]:
        """Check inputs (InputError, raised here), then the pipeline's awaitable (UpstreamFailure
        when awaited). The handler's own coroutine: no extra frame per request (bench/, callgrind)."""
        self.checker.check(inputs)
        return self._handler(Exchange(self._with.apply(inputs), runtime))


class RefStage:
    """`ref`: the adapter's arguments, with the aggregate function's own `with` applied, go to the
    function's handler (compiled once, shared by every adapter that references it)."""

    __slots__ = ("with_plan", "handler")

    def __init__(self, with_plan: WithPlan, handler: Handler):
        self.with_plan = with_plan
        self.handler = handler

    async def __call__(self, x: Exchange) -> Outcome:
        return await self.handler(Exchange(self.with_plan.apply(x.args), x.runtime))


class OutputValues:
    """Every string `value` template of an output tree, compiled at load, rendered per call."""

    __slots__ = ("templates",)

    def __init__(self, outputs: list[OutputParam], ctx: CompileContext):
        self.templates = {text: ctx.template(text) for text in _value_texts(outputs)}

    def renderer(self, args: dict[str, Any]) -> Callable[[str], Any]:
        lookup = lookup_in(args)
        return lambda text: self.templates[text].render(lookup)


def _value_texts(outputs: list[OutputParam]) -> set[str]:
    found: set[str] = set()
    for out in outputs:
        if isinstance(out.value, str):
            found.add(out.value)
        found |= _value_texts(list(out.properties.values()) + ([out.items] if out.items else []))
    return found


class CallStage:
    """One upstream call: build the request from the arguments, send it, shape a 2xx answer."""

    __slots__ = ("plan", "namespace", "shaper", "values", "media_type")

    def __init__(self, plan: RequestPlan, shaper: Shaper, values: OutputValues, media_type: str | None = None):
        self.plan = plan
        self.namespace = plan.namespace
        self.shaper = shaper
        self.values = values
        self.media_type = media_type  # `outputMediaType`: what callers are told, whatever the upstream said

    async def __call__(self, x: Exchange) -> Outcome:
        return self.outcome(await x.runtime.send(self.namespace, self.plan.build(x.args)), x.args)

    def outcome(self, response: "Response", args: dict[str, Any]) -> Outcome:
        """The answer as the caller gets it: an error passed through, a 2xx shaped by the outputs."""
        if response.status >= 400:
            retry_after = _retry_after(response) if response.status in (429, 503) else None
            return Outcome(response.status, response.body, response.content_type, retry_after=retry_after)
        if self.shaper.format == "binary":
            return Outcome(response.status, response.body, self.media_type or response.content_type or BINARY_CT, binary=True)
        if self.media_type is not None:
            return self._shaped(response, args).with_type(self.media_type)
        return self._shaped(response, args)

    def _shaped(self, response: "Response", args: dict[str, Any]) -> Outcome:
        if self.shaper.identity:
            return Outcome(response.status, response.body, response.content_type)
        value = self.shaper.shape(response.body, response.content_type, self.values.renderer(args))
        if value is NOTHING:
            return Outcome(response.status, response.body, response.content_type)
        return Outcome(response.status, b"", JSON_CT, value)


def _retry_after(response: "Response") -> str | None:
    """The upstream's Retry-After when it is one (seconds or an HTTP date), else nothing to pass on."""
    from naftiko_runtime.upstream.client import parse_retry_after  # aiohttp: not for `validate`

    value = response.headers.get("Retry-After")
    return value.strip() if value and parse_retry_after(value) is not None else None


class StaticStage:
    """Mock-mode outputs (no call, SEMANTICS 7.2), the same object for REST and MCP: each named
    output with a `value` is a field (unnamed: `value`), values are text (templates rendered with
    the arguments), `type: object` nests its properties (dropped when none has a value), and
    `type: array` is a one-element array built from `items`."""

    __slots__ = ("outputs", "values")

    def __init__(self, outputs: list[OutputParam], values: OutputValues):
        self.outputs = tuple(outputs)
        self.values = values

    async def __call__(self, x: Exchange) -> Outcome:
        lookup = lookup_in(x.args)
        result: dict[str, Any] = {}
        for out in self.outputs:
            value = self._build(out, lookup)
            if value is not None:
                result[out.name or "value"] = value
        return Outcome(200, b"", JSON_CT, result)

    def _build(self, out: OutputParam, lookup: Any) -> Any:
        if out.value is not None:
            return self.values.templates[out.value].render(lookup) if isinstance(out.value, str) else to_text(out.value)
        if out.type == "array":
            item = self._build(out.items, lookup) if out.items is not None else None
            return [] if item is None else [item]
        if out.type == "object":
            fields = {name: v for name, prop in out.properties.items() if (v := self._build(prop, lookup)) is not None}
            return fields or None
        return None

