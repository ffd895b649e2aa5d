"""What the semantic rules look at: the model, the raw YAML, and every place a call starts.

Inputs are derived exactly as the engine derives them (`derive_inputs`, then the REST route
variables), so a rule that asks "can this operation supply `id`?" gets the answer `run` would act
on. Bind values are never read: a bind's names are all that matters for checking a file, and
missing environment variables are a deployment matter, not a defect of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.inputs import Input, action_inputs, template_inputs
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.capability.model import Action, Capability, ConsumedOperation
from naftiko_runtime.capability.yamlsource import YList, YMap
from naftiko_runtime.plan import input_prefixes, route_with_inputs
from naftiko_runtime.templates import MISSING, Ref, refs_in

ROUTE_VAR = re.compile(r"\{([^{}/]+)\}")


def declared_binds(cap: Capability) -> BoundValues:
    """Every declared bind variable with an empty value: enough to compile, no secret is read."""
    values = BoundValues()
    for bind in cap.binds:
        space = values.by_namespace.setdefault(bind.namespace, {})
        for var in bind.keys:
            values.flat[var] = ""
            space[var] = ""
    return values


@dataclass
class Site:
    """An exposed REST operation or MCP tool: a place where a call starts."""

    label: str  # "operation 'x'" / "tool 'y'" / "function 'a.f'" (+ " step 's'"), as the engine names them
    kind: str  # rest | mcp | function | step
    namespace: str  # of the exposure
    action: Action
    pos: Pos
    op: ConsumedOperation | None  # the resolved `call` target
    inputs: list[Input]
    path: str | None = None  # REST: the path as written (placeholders normalized)
    route: str | None = None  # REST: the path as served (route variables renamed, path inputs appended)

    @property
    def input_names(self) -> set[str]:
        return {i.name for i in self.inputs}

    @property
    def declared(self) -> bool:
        """Whether the author declared the inputs (else the engine derived them from the call)."""
        return self.action.inputs is not None

    @property
    def call_text(self) -> str:
        return ".".join(self.action.call) if self.action.call else ""


@dataclass
class Context:
    cap: Capability
    root: Any  # the raw YAML of the checked file
    binds: BoundValues
    prefixes: frozenset[str]
    sites: list[Site] = field(default_factory=list)
    failed_imports: set[str] = field(default_factory=set)  # namespaces whose import failed (already an error)
    _maps: dict[tuple[str, int, int], YMap] = field(default_factory=dict)

    @classmethod
    def build(cls, cap: Capability, root: Any) -> "Context":
        ctx = cls(cap, root, declared_binds(cap), input_prefixes(cap))
        ctx._index(root)
        ctx.failed_imports = {ns for ns in _import_aliases(root) if ns not in cap.consumes}
        for exposure in cap.rest:
            for op in exposure.operations:
                ctx._add_site(f"operation '{op.name or f'{op.method} {op.path}'}'", "rest", exposure.namespace, op.action, op.pos, op.path)
        for mcp in cap.mcp:
            for tool in mcp.tools:
                ctx._add_site(f"tool '{tool.name}'", "mcp", mcp.namespace, tool.action, tool.pos, None)
        for aggregate in cap.aggregates:
            for function in aggregate.functions.values():
                ctx._add_site(f"function '{aggregate.namespace}.{function.name}'", "function", aggregate.namespace, function.action, function.pos, None)
        return ctx

    def _add_site(self, label: str, kind: str, namespace: str, action: Action, pos: Pos, path: str | None) -> None:
        op = self.target(action)
        inputs = action_inputs(self.cap, action, self.is_bind_path, self.prefixes)
        route = None
        if path is not None:
            route, inputs = route_with_inputs(path, inputs)
        site = Site(label, kind, namespace, action, pos, op, inputs, path, route)
        self.sites.append(site)
        if action.call is None and action.ref is None:
            self._add_steps(site)

    def _add_steps(self, parent: Site) -> None:
        """Each call step is checked like a call of its own, seeing the parent's inputs, the `with`
        keys it sets, and the outputs of the steps before it."""
        names = {i.name for i in parent.inputs} | set(parent.action.with_)
        for step in parent.action.steps:
            if step.kind == "call":
                action = Action(step.pos, call=step.call, call_pos=step.call_pos, with_=step.with_, with_pos=step.with_pos,
                                inputs=parent.action.inputs)
                self.sites.append(Site(f"{parent.label} step '{step.name}'", "step", parent.namespace, action, step.pos,
                                       self.target(action), [Input(name) for name in sorted(names)]))
            names.add(step.name)

    def _index(self, node: Any) -> None:
        """Mappings of the checked file by position, to point at one field of a model object."""
        if isinstance(node, YMap):
            self._maps[(node.pos.file, node.pos.line, node.pos.col)] = node
            for value in node.values():
                self._index(value)
        elif isinstance(node, YList):
            for value in node:
                self._index(value)

    # ------------------------------------------------------------------ lookups

    def target(self, action: Action) -> ConsumedOperation | None:
        return self.cap.operation(action.call)

    def field_pos(self, pos: Pos, key: str) -> Pos:
        """Position of `key`'s value in the mapping that starts at `pos` (itself if unknown)."""
        node = self._maps.get((pos.file, pos.line, pos.col))
        return node.at(key) if node is not None and key in node else pos

    def is_bind_path(self, path: tuple[str, ...]) -> bool:
        return self.binds.lookup(Ref(path)) is not MISSING

    def is_bind(self, ref: Ref) -> bool:
        return self.binds.lookup(ref) is not MISSING

    def strip(self, ref: Ref) -> tuple[str, ...]:
        """The input a `{{x}}` / `{{tools.x}}` / `{{<exposure-ns>.x}}` reference reads."""
        return ref.path[1:] if len(ref.path) > 1 and ref.path[0] in self.prefixes else ref.path

    def op_reads(self, op: ConsumedOperation) -> dict[str, str]:
        """Argument names a consumed operation uses -> where (parameter names and template inputs)."""
        reads = {p.name: p.location or "query" for p in op.params}
        for name, where in template_inputs(op, self.is_bind_path, self.prefixes).items():
            reads.setdefault(name, where)
        return reads

    def bind_namespace_ref(self, ref: Ref) -> bool:
        """`{{ns.VAR}}` naming a bind namespace (or the conventional `env`) with a variable it lacks."""
        return len(ref.path) == 2 and ref.path[0] not in self.prefixes and (ref.path[0] in self.binds.by_namespace or ref.path[0] == "env") and not self.is_bind(ref)


def templates_in(data: Any) -> Iterator[tuple[Ref, Any]]:
    """Every `{{...}}` reference in a value tree (strings inside dicts and lists), with its string."""
    if isinstance(data, str):
        for ref in refs_in(data):
            yield ref, data
    elif isinstance(data, dict):
        for value in data.values():
            yield from templates_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from templates_in(value)


def _import_aliases(root: Any) -> set[str]:
    """Namespaces that `capability.consumes` imports (`as`, else `import`)."""
    body = root.get("capability") if isinstance(root, dict) else None
    entries = body.get("consumes") if isinstance(body, dict) else None
    out: set[str] = set()
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and any(k in entry for k in ("from", "location", "import")):
            alias = entry.get("as") or entry.get("import")
            if alias:
                out.add(str(alias))
    return out
