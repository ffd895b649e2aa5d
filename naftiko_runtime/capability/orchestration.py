"""Reading composition: orchestration `steps` and `mappings`, aggregate functions and `ref`, `forward`.

Everything here only reads and links the model; what runs it is naftiko_runtime/orchestration.py
(steps), plan.py (`ref`) and exposes/forward.py. What cannot work is reported here, with the
node's position, so `naftiko run` refuses it and `naftiko validate` shows it: a `script` step, a
lookup whose `index` is not an earlier step, two steps with one name, a `ref` to no function.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from naftiko_runtime.capability.diagnostics import Pos, did_you_mean
from naftiko_runtime.capability.model import (
    Action,
    Aggregate,
    Capability,
    Forward,
    Function,
    Mapping,
    Param,
    RestOperation,
    Step,
    Tool,
)
from naftiko_runtime.capability.imports import ImportReader, is_import
from naftiko_runtime.capability.versions import FUNCTIONS, LABEL, TARGET_NAME
from naftiko_runtime.capability.reader import distinct, kind
from naftiko_runtime.capability.yamlsource import YList, YMap

STEP_KINDS = ("call", "lookup", "script")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")  # a REST `ref` with inherited inputs reads them from the query


class OrchestrationReader(ImportReader):
    """Steps, mappings, aggregates, `ref` and `forward`; mixed into the exposes reader."""

    def action(self, node: YMap, namespace: str, where: str, inherited: list[Param]) -> Action:
        raise NotImplementedError  # ExposesReader reads actions; aggregate functions are actions too

    # ---------------------------------------------------------------- steps and mappings

    def orchestration(self, action: Action, node: YMap, namespace: str, where: str) -> None:
        """`steps`, `mappings` and `ref` of an action, and what each mode makes the others ignore."""
        if "ref" in node:
            action.ref_pos = node.at("ref")
            action.ref = self.parse_ref(node.get("ref"), action.ref_pos, where)
            ignored = [k for k in ("call", "steps", "outputParameters") if k in node]
            if ignored:
                self.d.warning(node.key_at(ignored[0]), f"{where}: {', '.join(f'`{k}`' for k in ignored)} ignored: `ref` delegates to the aggregate function, which does its own work", "ref-ignores")
        if "steps" in node:
            action.steps = self.steps(node, namespace, where)
            if "call" in node and "ref" not in node:
                self.d.warning(node.key_at("steps"), f"{where}: `steps` ignored: `call` is set, and a call runs alone (remove one of them)", "steps-ignored")
        if "mappings" in node:
            action.mappings = self.mappings(node, where)
            if "steps" not in node:
                self.d.warning(node.key_at("mappings"), f"{where}: `mappings` build a result from step outputs, and there are no `steps`; they are ignored", "steps-ignored")

    def steps(self, node: YMap, namespace: str, where: str) -> list[Step]:
        entries = self._list(node, "steps", where)

        def twice(step: Step, first: Step) -> None:
            self.d.error(step.pos, f"{where}: two steps are named '{step.name}' (the first at line {first.pos.line}); outputs are stored by name, so give each its own", "duplicate-step")

        steps = list(distinct((self.step(item, pos, namespace, where) for item, pos in entries), twice).values())
        names = [s.name for s in steps]
        for i, step in enumerate(steps):
            if step.kind == "lookup" and step.index and step.index not in names[:i]:
                why = "comes later (a lookup searches an earlier step's output)" if step.index in names else f"is no step{did_you_mean(step.index, names[:i])}"
                self.d.error(step.index_pos or step.pos, f"{where}: lookup step '{step.name}': index '{step.index}' {why}; steps before it: {', '.join(names[:i]) or 'none'}", "lookup-index-unresolved")
        return steps

    def step(self, item: Any, pos: Pos, namespace: str, where: str) -> Step | None:
        named = self._named(item, pos, f"a step of {where}")
        if named is None:
            return None
        node, name = named
        label = f"{where}: step '{name}'"
        raw = node.get("type")
        step_kind = str(raw).lower() if raw is not None else ("call" if "call" in node else "lookup" if "index" in node else "script" if "file" in node else "")
        if raw is None and step_kind:
            self.d.note(node.pos, f"{label} has no `type`; read as `type: {step_kind}` from its fields", "dialect-step-type")
        if step_kind not in STEP_KINDS:
            self.d.error(node.at("type") if raw is not None else node.pos, f"{label}: type '{raw}' is not one of call, lookup, script", "bad-step-type")
            return None
        step = Step(name=name, kind=step_kind, pos=node.pos)  # type: ignore[arg-type]
        if step_kind == "script":
            self.d.error(node.pos, script_refused(where, name), "script-step")
        elif step_kind == "call":
            if "call" not in node:
                self.d.error(node.pos, f"{label} is missing `call` (`<consumes-namespace>.<operation>`)", "required-field")
            else:
                step.call_pos = node.at("call")
                step.call = self.parse_call(node.get("call"), step.call_pos, label)
            self.step_with(step, node, namespace, label)
        else:
            step.index = self._str(node, "index", label, required=True)
            step.index_pos = node.at("index")
            step.match = self._str(node, "match", label, required=True)
            step.lookup_value = self._str(node, "lookupValue", label, required=True)
            step.fields = self.lookup_fields(node, label)
        return step

    def step_with(self, step: Step, node: YMap, namespace: str, label: str) -> None:
        with_node = node.get("with")
        if with_node is None:
            return
        if not isinstance(with_node, YMap):
            self.d.error(node.at("with"), f"{label}: `with` must be a mapping of consumed parameter -> value", "structure")
            return
        for key, value in with_node.items():
            step.with_[str(key)] = self.with_value(value, namespace, with_node.at(key))
            step.with_pos[str(key)] = with_node.at(key)

    def with_value(self, value: Any, namespace: str, pos: Pos) -> Any:
        raise NotImplementedError  # ExposesReader

    def lookup_fields(self, node: YMap, label: str) -> list[str] | None:
        raw = node.get("outputParameters")
        if raw is None:
            return None
        if isinstance(raw, YMap):  # keyed map form: the keys are the field names
            return [str(k) for k in raw]
        if not isinstance(raw, YList):
            self.d.error(node.at("outputParameters"), f"{label}: lookup `outputParameters` must be a list of field names, found {kind(raw)}", "structure")
            return None
        fields = []
        for i, entry in enumerate(raw):
            name = entry.get("name") if isinstance(entry, YMap) else entry
            if not isinstance(name, (str, int)) or isinstance(name, bool):
                self.d.error(raw.at(i), f"{label}: lookup `outputParameters` entries are field names, found {kind(entry)}", "structure")
                continue
            fields.append(str(name))
        return fields

    def mappings(self, node: YMap, where: str) -> list[Mapping]:
        raw = node.get("mappings")
        if not isinstance(raw, YList):
            self.d.error(node.at("mappings"), f"{where}: `mappings` must be a list of {{target, value}}, found {kind(raw)}", "structure")
            return []
        out = []
        for i, item in enumerate(raw):
            entry = self._map(item, f"a mapping of {where}", raw.at(i))
            if entry is None:
                continue
            key = self.spelling(entry, TARGET_NAME, f"a mapping of {where}")
            target = self._str(entry, key, f"a mapping of {where}")
            value = self._str(entry, "value", f"a mapping of {where}")
            if not target:
                self.d.error(entry.pos, f"{where}: a mapping is missing `target` (`targetName` before 1.0.0-alpha3)", "required-field")
                continue
            if not value:
                self.d.error(entry.pos, f"{where}: mapping '{target}' is missing `value` (`$.<step>.<field>`)", "required-field")
                continue
            out.append(Mapping(target=target, value=value.strip(), pos=entry.pos))
        return out

    # ---------------------------------------------------------------- aggregates and ref

    def parse_ref(self, ref: Any, pos: Pos, where: str) -> tuple[str, str] | None:
        parts = str(ref).split(".")
        if len(parts) == 2 and all(parts):
            return (parts[0], parts[1])
        self.d.error(pos, f"{where}: ref '{ref}' must be `<aggregate-namespace>.<function>`", "bad-ref")
        return None

    def aggregates(self, cap: Capability, body: YMap) -> None:
        """`capability.aggregates`: a list (a keyed map by namespace is read too) of namespaces with
        `functions` (a list, alpha2) or `flows` (keyed by name, later versions)."""
        raw = body.get("aggregates")
        if isinstance(raw, YMap):
            entries = []
            for key, value in raw.items():
                if isinstance(value, YMap) and "namespace" not in value:
                    value["namespace"], value.val_pos["namespace"] = key, raw.key_at(key)
                entries.append((value, raw.at(key)))
        else:
            entries = self._list(body, "aggregates", "capability")
        by_namespace: dict[str, Aggregate] = {}
        for item, pos in entries:
            node = self._map(item, "an aggregate", pos)
            if node is None:
                continue
            if is_import(node, "aggregates"):
                self.import_aggregate(cap, node)
                continue
            namespace = self._str(node, "namespace", "an aggregate", required=True)
            if not namespace:
                continue
            aggregate = by_namespace.get(namespace)
            if aggregate is None:
                aggregate = by_namespace[namespace] = Aggregate(namespace, node.pos, self.renamed(node, LABEL, f"aggregate '{namespace}'"))
                cap.aggregates.append(aggregate)

            def twice(function: Function, first: Function) -> None:
                self.d.error(function.pos, f"aggregate function '{function.namespace}.{function.name}' is declared twice (first at {first.pos}); a `ref` must name one", "duplicate-function")

            key = self.spelling(node, FUNCTIONS, f"aggregate '{namespace}'")
            parsed = (self.function(item, fpos, namespace) for item, fpos in self._list(node, key, f"aggregate '{namespace}'"))
            aggregate.functions = distinct(itertools.chain(aggregate.functions.values(), parsed), twice)

    def import_aggregate(self, cap: Capability, node: YMap) -> None:
        """`- import: crew-resolver` / `from: ./shared/aggregates.yaml`: the aggregate and its functions."""
        aggregate = self.renamed_copy(node, "aggregates", "aggregate namespace", lambda source: {a.namespace: a for a in source.aggregates},
                                      lambda alias: any(a.namespace == alias for a in cap.aggregates), lambda a: a.functions.values())
        if aggregate is not None:
            cap.aggregates.append(aggregate)

    def function(self, item: Any, pos: Pos, namespace: str) -> Function | None:
        named = self._named(item, pos, f"a function of aggregate '{namespace}'")
        if named is None:
            return None
        node, name = named
        where = f"function '{namespace}.{name}'"
        action = self.action(node, namespace, where, [])
        if action.ref is not None:
            self.d.error(node.at("ref"), f"{where}: a function cannot `ref` another; give it `call`, `steps` or static outputs", "bad-ref")
            action.ref = None
        if action.call is None and not action.steps and not any(o.value is not None for o in action.outputs):
            self.d.error(node.pos, f"{where} has no `call`, no `steps` and no static output `value`s, so it has nothing to do", "required-field")
        semantics: dict[str, bool] = {}
        raw = node.get("semantics")
        if isinstance(raw, YMap):
            semantics = {k: bool(raw[k]) for k in ("safe", "idempotent", "cacheable") if k in raw}
        return Function(name=name, namespace=namespace, action=action, pos=node.pos,
                        description=self._str(node, "description", where), semantics=semantics)

    def link_refs(self, cap: Capability) -> None:
        """Every `ref` names a function; what the adapter left out (name, description, inputs, MCP
        hints from `semantics`) it inherits from it."""
        known = [f"{a.namespace}.{n}" for a in cap.aggregates for n in a.functions]
        for exposure in cap.rest:
            for op in exposure.operations:
                self._link(cap, op, op.action, known, f"operation '{op.name or f'{op.method} {op.path}'}'")
        for mcp in cap.mcp:
            for tool in mcp.tools:
                self._link(cap, tool, tool.action, known, f"tool '{tool.name}'")

    def _link(self, cap: Capability, unit: RestOperation | Tool, action: Action, known: list[str], label: str) -> None:
        if action.ref is None:
            return
        function = cap.function(action.ref)
        if function is None:
            ref = ".".join(action.ref)
            self.d.error(action.ref_pos or unit.pos, f"{label}: ref '{ref}' names no aggregate function{did_you_mean(ref, known)} (known: {', '.join(known) or 'none'})", "ref-unresolved")
            action.ref = None
            return
        unit.name = unit.name or function.name
        unit.description = unit.description or function.description
        if action.inputs is None and function.action.inputs is not None:
            inherited = list(function.action.inputs)
            if isinstance(unit, RestOperation) and unit.method in SAFE_METHODS:
                inherited = [_in_query(p) for p in inherited]
            action.inputs = inherited
        if isinstance(unit, Tool):
            unit.hints = {**hints_from(function.semantics), **unit.hints}

    # ---------------------------------------------------------------- forward

    def forward(self, node: YMap, path: str) -> Forward | None:
        raw = node.get("forward")
        spec = self._map(raw, f"`forward` of resource '{path}'", node.at("forward"))
        if spec is None:
            return None
        target = self._str(spec, "targetNamespace", f"`forward` of resource '{path}'", required=True)
        if not target:
            return None
        trusted = spec.get("trustedHeaders")
        headers: list[str] = []
        if isinstance(trusted, YList):
            headers = [str(h) for h in trusted if isinstance(h, (str, int)) and str(h).strip()]
        elif trusted is not None:
            self.d.error(spec.at("trustedHeaders"), f"`forward` of resource '{path}': `trustedHeaders` must be a list of header names, found {kind(trusted)}", "structure")
        return Forward(path=path, namespace=target, pos=spec.at("targetNamespace"), trusted_headers=headers)


def script_refused(where: str, step: str) -> str:
    return (f"{where}: step '{step}' is a `script` step, and this runtime does not run scripts (sandboxing "
            "arbitrary code is out of its scope, docs/orchestration.md); use call and lookup steps, or an "
            "upstream service that computes it")


def hints_from(semantics: dict[str, bool]) -> dict[str, bool]:
    """MCP hints a function's `semantics` imply (SEMANTICS 5.5): safe -> read-only and not
    destructive, not safe -> not read-only, idempotent -> idempotent. Tool hints override them."""
    hints: dict[str, bool] = {}
    if semantics.get("safe") is True:
        hints.update(readOnly=True, destructive=False)
    elif semantics.get("safe") is False:
        hints["readOnly"] = False
    if "idempotent" in semantics:
        hints["idempotent"] = semantics["idempotent"]
    return hints


def _in_query(p: Param) -> Param:
    return replace(p, location="query") if p.location is None else p
