"""Orchestration steps at run time: a pipeline handler that runs `steps` and builds `mappings`.

```
arguments -> steps (call: with -> request -> send -> output stored under the step name;
                    lookup: match an earlier output, project fields)
          -> mappings (`$.<step>.<field>` -> dotted targets)  |  no mapping result: the last call's answer
```

Compiled once per action (`compile_steps`): each step knows, from its templates, its `with` and
the consumed operation's parameters, which earlier steps it reads. Steps that do not read each
other run concurrently (the reference engine runs them one after another); a step that writes
(any method but GET, HEAD, OPTIONS) keeps its place in the order, because a later read may depend
on what it changed upstream without naming it. Each step sees the caller's arguments and the
outputs of the earlier steps it reads, exactly as it would in order, so the result is the same.

A failing step (an upstream 4xx/5xx, an unreachable upstream) stops the sequence with a
`StepFailure` naming it; the reference engine carries on and builds objects of nulls.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Callable, Union

from naftiko_runtime.capability.model import Action, ConsumedOperation, Mapping, OutputParam, Step, WithRef
from naftiko_runtime.errors import InputError, InputProblem, StepFailure, UpstreamFailure
from naftiko_runtime.inputs import template_inputs
from naftiko_runtime.pipeline import JSON_CT, CallStage, Exchange, Outcome, OutputValues, WithPlan
from naftiko_runtime.shaping import NOTHING, Rule, Shaper, decode
from naftiko_runtime.templates import MISSING, to_text
from naftiko_runtime.upstream.request import CompileContext, RequestPlan, Upstream, lookup_in

if TYPE_CHECKING:
    from naftiko_runtime.runtime import Runtime
    from naftiko_runtime.upstream.client import Response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HEAD = re.compile(r"[^.\[]*")  # the step name: up to the first `.` or `[`
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Resolve = Callable[[Step], "tuple[ConsumedOperation, Upstream] | None"]


class StepPath:
    """`$.<step>.<field>...` compiled: the step it reads and a walk into its output.

    A plain dotted walk (SEMANTICS 4.6) that also accepts array indexes (`.0` or `[0]`).
    """

    __slots__ = ("step", "walk")

    def __init__(self, text: str):
        body = text.strip()[2:] if text.strip().startswith("$.") else ""
        head = _HEAD.match(body)
        self.step, rest = head.group(0), body[head.end():]
        self.walk: tuple[str | int, ...] = tuple(
            int(index) if index else (int(name) if name.isdigit() else name) for name, index in _SEGMENT.findall(rest)
        )

    @staticmethod
    def parses(text: str) -> bool:
        return text.strip().startswith("$.") and len(text.strip()) > 2

    def find(self, outputs: dict[str, Any]) -> Any:
        """The value, MISSING when the step stored nothing or a field is absent (null stays None)."""
        value = outputs.get(self.step, MISSING)
        for key in self.walk:
            if isinstance(value, dict) and not isinstance(key, int):
                value = value.get(key, MISSING)
            elif isinstance(value, dict):
                value = value.get(str(key), MISSING)
            elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                value = value[key]
            else:
                return MISSING
            if value is MISSING:
                return MISSING
        return value


class Projection:
    """A consumed operation's named `outputParameters` applied to a step's output (SEMANTICS 2.6):
    an object keeps only the declared names; each element of an array gets them added."""

    __slots__ = ("named", "unnamed")

    def __init__(self, op: ConsumedOperation):
        self.named = tuple((o.name, Rule(o)) for o in op.outputs if o.name)
        self.unnamed = next((Rule(o) for o in op.outputs if not o.name), None)

    def apply(self, data: Any) -> Any:
        if isinstance(data, list):
            if not self.named:
                return data
            out = []
            for element in data:
                augmented = dict(element) if isinstance(element, dict) else {}
                for name, rule in self.named:
                    value = rule.apply(element, None)
                    if value is not None:
                        augmented[name] = value
                out.append(augmented)
            return out
        if self.named:
            return {name: rule.apply(data, None) for name, rule in self.named}
        value = self.unnamed.apply(data, None) if self.unnamed is not None else None
        return data if value is None else value


class _Run:
    """One orchestrated call: the caller's arguments, step outputs so far, the last call's answer."""

    __slots__ = ("args", "outputs", "last")

    def __init__(self, args: dict[str, Any]):
        self.args = args
        self.outputs: dict[str, Any] = {}
        self.last: Response | None = None

    def view(self, deps: tuple[str, ...]) -> dict[str, Any]:
        """The arguments as a step sees them: the caller's, then the outputs of the steps it reads."""
        if not deps:
            return self.args
        args = dict(self.args)
        for name in deps:
            if name in self.outputs:
                args[name] = self.outputs[name]
        return args


class CallStep:
    """A `call` step: `with`, the request, the send, the output stored under the step's name."""

    __slots__ = ("name", "deps", "with_plan", "request", "namespace", "format", "projection", "last", "writes")

    def __init__(self, step: Step, op: ConsumedOperation, upstream: Upstream, ctx: CompileContext, deps: tuple[str, ...], last: bool):
        self.name = step.name
        self.deps = deps
        self.with_plan = WithPlan(step.with_, ctx)
        self.request = RequestPlan(upstream, op, ctx)
        self.namespace = op.namespace
        self.format = op.output_format
        self.projection = Projection(op) if op.outputs else None
        self.last = last  # the last call step: its answer is the fallback result
        self.writes = op.method not in SAFE_METHODS

    async def run(self, run: _Run, runtime: "Runtime") -> None:
        args = self.with_plan.apply(run.view(self.deps))
        try:
            prepared = self.request.build(args)
        except InputError as exc:
            exc = self.with_plan.blame(exc)
            raise InputError([InputProblem(p.name, p.location, f"{p.detail} (step '{self.name}')") for p in exc.problems], exc.title) from None
        try:
            response = await runtime.send(self.namespace, prepared)
        except UpstreamFailure as exc:
            raise StepFailure.unreachable(self.name, exc) from None
        if response.status >= 400:
            retry_after = response.headers.get("Retry-After") if response.status in (429, 503) else None
            raise StepFailure.answered(self.name, self.namespace, response.status, response.body, response.content_type, retry_after)
        data = decode(response.body, self.format, response.content_type)
        if data is not NOTHING:  # the reference engine stores JSON outputs only
            run.outputs[self.name] = self.projection.apply(data) if self.projection is not None else data
        if self.last:
            run.last = response


class LookupStep:
    """A `lookup` step: the entry of an earlier step's output whose `match` field equals the value
    (as text), projected to the listed fields; an array value looks every element up."""

    __slots__ = ("name", "deps", "index", "match", "path", "fallback", "fields")

    def __init__(self, step: Step, ctx: CompileContext, deps: tuple[str, ...]):
        self.name = step.name
        self.deps = deps
        self.index = step.index
        self.match = step.match
        self.path = StepPath(step.lookup_value) if StepPath.parses(step.lookup_value) else None
        self.fallback = ctx.template(step.lookup_value)  # rendered when the path finds nothing
        self.fields = tuple(step.fields) if step.fields is not None else None

    async def run(self, run: _Run, runtime: "Runtime") -> None:
        index = run.outputs.get(self.index)
        if index is None:
            raise StepFailure(self.name, f"lookup index '{self.index}' has no output (its answer was empty or not JSON)")
        value = self.path.find(run.outputs) if self.path is not None else MISSING
        if isinstance(value, list):
            found: Any = [m for m in (self._find(index, to_text(v)) for v in value) if m is not None] or None
        elif value is not MISSING and value is not None:
            found = self._find(index, to_text(value))
        else:
            found = self._find(index, self.fallback.render(lookup_in(run.view(self.deps))))
        if found is not None:
            run.outputs[self.name] = found

    def _find(self, index: Any, key: str) -> Any:
        for entry in index if isinstance(index, list) else (index,):
            if isinstance(entry, dict) and self.match in entry and to_text(entry[self.match]) == key:
                return entry if self.fields is None else {f: entry.get(f) for f in self.fields}
        return None


StepStage = Union[CallStep, LookupStep]


class Mappings:
    """`mappings[]`: each resolvable value set at its dotted target, in order; the rest omitted."""

    __slots__ = ("entries",)

    def __init__(self, mappings: list[Mapping]):
        self.entries = tuple((tuple(m.target.split(".")), StepPath(m.value)) for m in mappings)

    def build(self, outputs: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for target, path in self.entries:
            value = path.find(outputs)
            if value is MISSING:
                continue
            node = result
            for key in target[:-1]:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = node[key] = {}
                node = child
            node[target[-1]] = value
        return result


class Orchestration:
    """The handler for an action with `steps` (pipeline.Handler)."""

    __slots__ = ("steps", "mappings", "respond", "concurrent")

    def __init__(self, steps: tuple[StepStage, ...], mappings: Mappings, respond: CallStage | None):
        self.steps = steps
        self.mappings = mappings
        self.respond = respond  # shapes the last call's answer when the mappings build nothing
        self.concurrent = _can_overlap(steps)

    async def __call__(self, x: Exchange) -> Outcome:
        run = _Run(x.args)
        if self.concurrent:
            await self._concurrently(run, x.runtime)
        else:
            for step in self.steps:
                await x.runtime.step(step, run)
        result = self.mappings.build(run.outputs)
        if result:
            return Outcome(200, b"", JSON_CT, result)
        if run.last is not None and self.respond is not None:
            return self.respond.outcome(run.last, x.args)
        return Outcome(200, b"", JSON_CT, {})

    async def _concurrently(self, run: _Run, runtime: "Runtime") -> None:
        """One task per step, each waiting for the steps it reads; failures surface in step order
        (the first failing step is the one reported), and a failure cancels what is still running."""
        tasks: dict[str, asyncio.Future[None]] = {}
        for step in self.steps:
            tasks[step.name] = asyncio.ensure_future(_after([tasks[d] for d in step.deps], step, run, runtime))
        try:
            for task in tasks.values():
                await task
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise


async def _after(waits: list["asyncio.Future[None]"], step: StepStage, run: _Run, runtime: "Runtime") -> None:
    for wait in waits:
        await wait  # a failed step fails the steps that read it
    await runtime.step(step, run)


def _can_overlap(steps: tuple[StepStage, ...]) -> bool:
    """Whether two call steps can be in flight at once (else they run in order, with no tasks):
    true when some call step does not, even indirectly, wait for an earlier one."""
    before: dict[str, set[str]] = {}
    for step in steps:
        before[step.name] = set().union(*(before[d] | {d} for d in step.deps))
    calls = [s.name for s in steps if isinstance(s, CallStep)]
    return any(calls[i] not in before[calls[j]] for j in range(len(calls)) for i in range(j))


# --------------------------------------------------------------------------- compiling


def compile_steps(action: Action, resolve: Resolve, ctx: CompileContext, respond: Callable[[RequestPlan, ConsumedOperation], CallStage],
                  is_bind: Callable[[tuple[str, ...]], bool]) -> Orchestration | None:
    """The handler for `action.steps`; None when a step's upstream failed to compile (reported)."""
    stages: list[StepStage] = []
    earlier: list[str] = []
    writer: str | None = None  # the latest writing call step: later calls wait for it
    calls_since: list[str] = []
    last_call = max((i for i, s in enumerate(action.steps) if s.kind == "call"), default=-1)
    last: tuple[RequestPlan, ConsumedOperation] | None = None
    for i, step in enumerate(action.steps):
        if step.kind == "call":
            target = resolve(step)
            if target is None:
                return None
            op, upstream = target
            reads = _call_reads(step, op, ctx, is_bind)
            deps = [name for name in earlier if name in reads]
            writes = op.method not in SAFE_METHODS
            deps += [name for name in (calls_since if writes else [writer] if writer else []) if name not in deps]
            stage: StepStage = CallStep(step, op, upstream, ctx, tuple(deps), last=i == last_call)
            if writes:
                writer, calls_since = step.name, []
            calls_since.append(step.name)
            if i == last_call:
                last = (stage.request, op)
        else:
            reads = {step.index} | ({StepPath(step.lookup_value).step} if StepPath.parses(step.lookup_value) else set())
            reads |= {ref.path[0] for ref in ctx.template(step.lookup_value).refs}
            stage = LookupStep(step, ctx, tuple(name for name in earlier if name in reads))
        stages.append(stage)
        earlier.append(step.name)
    return Orchestration(tuple(stages), Mappings(action.mappings), respond(*last) if last else None)


def shapes(outputs: list[OutputParam]) -> bool:
    """Whether outputs shape an answer (some `mapping`), or only document the mappings' result
    (orchestrated outputs: names and types), which must not turn the last call's answer into nulls."""
    return any(o.mapping is not None or shapes([*o.properties.values(), *([o.items] if o.items else [])]) for o in outputs)


def _call_reads(step: Step, op: ConsumedOperation, ctx: CompileContext, is_bind: Callable[[tuple[str, ...]], bool]) -> set[str]:
    """Every argument name a call step can read: its `with` references and templates, and what
    the consumed operation's parameters and templates take from the arguments."""
    reads = {p.name for p in op.params}
    reads |= set(template_inputs(op, is_bind, ctx.prefixes))
    for value in step.with_.values():
        if isinstance(value, WithRef):
            reads.add(value.name)
        elif isinstance(value, str) and "{{" in value:
            reads |= {ref.path[0] for ref in ctx.template(value).refs}
    return reads

