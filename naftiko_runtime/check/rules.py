"""Semantic rules: what the schema cannot see and the engine does not refuse, but authors get wrong.

Each finding is an error only when the file cannot work (`run` refuses it, or every call of an
operation fails); a value that silently goes nowhere is a warning; a rewrite is a note. What the
engine already refuses (duplicate routes and tools, unbound variables in credentials and base URIs,
unsupported authentication) is reported by compiled.py from the engine itself, not re-checked here.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlsplit

from naftiko_runtime import credentials
from naftiko_runtime.check.context import ROUTE_VAR, Context, Site, templates_in
from naftiko_runtime.capability.diagnostics import Diagnostics, Pos, did_you_mean, loose_name, name_list
from naftiko_runtime.capability.model import ConsumedOperation, OutputParam, WithRef
from naftiko_runtime.orchestration import StepPath
from naftiko_runtime.templates import Ref, Template, refs_in

Check = Callable[[Context, Diagnostics], None]




def _heads(ctx: Context, value: Any) -> set[str]:
    """Inputs a template reads (binds and `{{ns.VAR}}` bind references excluded)."""
    return {ctx.strip(ref)[0] for ref, _ in templates_in(value) if not ctx.is_bind(ref) and not ctx.bind_namespace_ref(ref) and ctx.strip(ref)}


def _with_reads(ctx: Context, with_: dict[str, Any]) -> set[str]:
    """Inputs a `with` map reads: the names it copies and those its templates use."""
    return {v.name for v in with_.values() if isinstance(v, WithRef)} | _heads(ctx, list(with_.values()))


def _auth_path_vars(ctx: Context, op: ConsumedOperation) -> set[str]:
    auth = ctx.cap.consumes[op.namespace].auth if op.namespace in ctx.cap.consumes else None
    return {e.key for e in auth.entries if e.placement == "path"} if auth is not None else set()


def _available(ctx: Context, site: Site) -> set[str]:
    """Argument names a call from `site` carries: its inputs and the `with` keys that get set."""
    names = set(site.input_names)
    for key, value in site.action.with_.items():
        if not isinstance(value, WithRef) or value.name in names:
            names.add(key)
    if site.op is not None:
        names |= {p.name for p in site.op.params if p.location == "environment"}
    return names


# --------------------------------------------------------------------------- `with`

def check_with(ctx: Context, out: Diagnostics) -> None:
    """`with` keys name something the consumed operation reads; `ns.x` references name an input."""
    namespaces = set(ctx.cap.exposure_namespaces()) | set(ctx.cap.consumes)
    for site in ctx.sites:
        action = site.action
        reads = ctx.op_reads(site.op) if site.op is not None else None
        for key, value in action.with_.items():
            pos = action.with_pos.get(key, action.pos)
            if reads is not None and key not in reads:
                out.warning(pos, f"{site.label}: `with` key '{key}' is neither a parameter of '{site.call_text}' nor read by its templates, so its value goes nowhere{did_you_mean(key, reads)}", "with-unknown-key")
            if isinstance(value, WithRef) and value.name not in site.input_names:
                out.warning(pos, f"{site.label}: `with` {key} copies input '{value.name}', which it does not have (inputs: {name_list(site.input_names)}), so '{key}' is never set{did_you_mean(value.name, site.input_names)}", "with-unresolved-ref")
            elif isinstance(value, str) and "{{" not in value:
                head, dot, rest = value.partition(".")
                if dot and head in namespaces and head != site.namespace and rest and " " not in rest:
                    out.warning(pos, f"{site.label}: `with` value '{value}' is sent as the literal text '{value}': in exposure '{site.namespace}' an input is referenced as '{site.namespace}.{rest}' or '{{{{{rest}}}}}'", "with-unresolved-ref")


# --------------------------------------------------------------------------- reachability

def check_reachable(ctx: Context, out: Diagnostics) -> None:
    """What a consumed operation needs (URL variables, required parameters), the caller supplies."""
    for site in ctx.sites:
        op = site.op
        if op is None:
            continue
        pos = site.action.call_pos or site.pos
        available = _available(ctx, site)
        skip = available | _auth_path_vars(ctx, op)
        needed = {ctx.strip(r)[0]: r.text for r in refs_in(op.path) if not ctx.is_bind(r) and ctx.strip(r) and ctx.strip(r)[0] not in skip}
        cause = ctx.cap.typos.cause(site.pos, ["inputParameters", "with"]) or ctx.cap.typos.cause(op.pos, ["inputParameters"], deep=True)
        for name, text in sorted(needed.items()):
            out.error(pos, f"{site.label} calls '{site.call_text}', whose URL '{op.path}' needs {{{{{text}}}}}, but it has no input '{name}' and no `with: {{{name}: ...}}`; every call would fail with 400{cause}", "input-unreachable")
        for p in op.params:
            if p.required and p.value is None and p.location not in ("path", "environment") and p.name not in available:
                out.warning(pos, f"{site.label} never sets '{p.name}', a required {p.location or 'query'} parameter of '{site.call_text}' ({p.pos}); add an input or a `with` entry", "input-unreachable")


def check_route_vars(ctx: Context, out: Diagnostics) -> None:
    """Every `{x}` of an exposed REST path reaches the call (or a static output); else it is dropped."""
    for site in ctx.sites:
        if site.kind != "rest" or site.route is None or (site.action.call is not None and site.op is None):
            continue
        used = _with_reads(ctx, site.action.with_)
        if site.op is not None:
            used |= set(ctx.op_reads(site.op))
        for step in site.action.steps if site.action.call is None else []:
            used |= _with_reads(ctx, step.with_) | _heads(ctx, step.lookup_value)
            op = ctx.cap.operation(step.call)
            if op is not None:
                used |= set(ctx.op_reads(op))
        if site.action.ref is not None:
            used |= {i.name for i in site.inputs}  # passed to the function, which has its own checks
        used |= _heads(ctx, [o.value for o in _outputs(site.action.outputs)])
        used |= {ROUTE_VAR.findall(f.path)[-1] for e in ctx.cap.rest if e.namespace == site.namespace
                 for f in e.forwards if f.path == site.path and ROUTE_VAR.findall(f.path)}  # the rest of a forwarded path
        for var in ROUTE_VAR.findall(site.route):
            if var not in used:
                out.warning(site.pos, f"{site.label}: path variable {{{var}}} of '{site.route}' is not used by the call ('{site.call_text or 'no call'}' reads none of it), so its value is dropped; pass it with `with: {{{var}: {site.namespace}.{var}}}` or remove it from the path", "path-var-unbound")


def check_appended_route_params(ctx: Context, out: Diagnostics) -> None:
    """Declared `in: path` inputs missing from the REST path become trailing segments (a note)."""
    for site in ctx.sites:
        if site.kind != "rest" or site.action.inputs is None or site.route is None:
            continue
        original = {loose_name(v) for v in ROUTE_VAR.findall(site.path or "")}
        for p in site.action.inputs:
            if p.location == "path" and loose_name(p.name) not in original:
                out.note(p.pos, f"input '{p.name}' is `in: path` but the path '{site.path}' has no {{{p.name}}}; served as '{site.route}'", "path-param-appended")


# --------------------------------------------------------------------------- templates

def _outputs(outputs: list[OutputParam]) -> list[OutputParam]:
    flat: list[OutputParam] = []
    for o in outputs:
        flat.append(o)
        flat.extend(_outputs(list(o.properties.values())))
        if o.items is not None:
            flat.extend(_outputs([o.items]))
    return flat


def _op_templates(ctx: Context, op: ConsumedOperation) -> list[tuple[Any, Pos, str]]:
    """(template source, position, what) of a consumed operation's request templates."""
    found: list[tuple[Any, Pos, str]] = [(op.path, op.pos, "path")]
    for p in op.params:
        if isinstance(p.value, str):
            found.append((p.value, ctx.field_pos(p.pos, "value"), f"parameter '{p.name}'"))
    if op.body is not None:
        found.append((op.body.data, op.body.pos, "body"))
    return found


def _unknown(ctx: Context, data: Any, names: set[str]) -> list[tuple[Ref, str]]:
    """(reference, input it reads) for each `{{...}}` in `data` that is neither a bind nor in `names`.

    `{{ns.VAR}}` references to a bind namespace are left out: _bind_refs reports those.
    """
    out = []
    for ref, _ in templates_in(data):
        head = ctx.strip(ref)[0] if ctx.strip(ref) else ""
        if not ctx.is_bind(ref) and not ctx.bind_namespace_ref(ref) and head not in names:
            out.append((ref, head))
    return out


def check_templates(ctx: Context, out: Diagnostics) -> None:
    """`{{x}}` in request templates, `with` values and outputs names a bind or an input."""
    reported: set[tuple[Pos, str]] = set()

    def warn(pos: Pos, ref: Ref, what: str, why: str) -> None:
        if (pos, ref.text) not in reported:
            reported.add((pos, ref.text))
            out.warning(pos, f"{what} uses {{{{{ref.text}}}}}, {why}", "template-var-undefined")

    def bind_refs(data: Any, pos: Pos, what: str) -> None:
        for ref, _ in templates_in(data):
            if ctx.bind_namespace_ref(ref):
                space = ctx.binds.by_namespace.get(ref.path[0])
                declared = f"bind namespace '{ref.path[0]}' declares {name_list(space)}" if space is not None else f"no bind namespace '{ref.path[0]}' exists"
                warn(pos, ref, what, f"which no bind declares ({declared}); it renders empty")

    for consumes in ctx.cap.consumes.values():
        for op in consumes.operations.values():
            for data, pos, what in _op_templates(ctx, op):
                bind_refs(data, pos, f"{op.namespace}.{op.name} {what}")
    for site in ctx.sites:
        names = site.input_names
        inputs = f"inputs: {name_list(names)}"
        for key, value in site.action.with_.items():
            pos = site.action.with_pos.get(key, site.pos)
            bind_refs(value, pos, f"{site.label} `with` {key}")
            for ref, head in _unknown(ctx, value, names):
                warn(pos, ref, f"{site.label} `with` {key}", f"but '{head}' is neither an input ({inputs}) nor a bind, so '{key}' is never set")
        for o in _outputs(site.action.outputs):
            pos = ctx.field_pos(o.pos, "value")
            bind_refs(o.value, pos, f"{site.label} output")
            for ref, head in _unknown(ctx, o.value, names):
                warn(pos, ref, f"{site.label} output", f"but '{head}' is neither an input ({inputs}) nor a bind; it renders empty")
        if site.op is None or not site.declared:
            continue  # derived inputs include everything the operation's templates read
        available = _available(ctx, site)
        for data, pos, what in _op_templates(ctx, site.op)[1:]:  # URL variables are input-unreachable's
            for ref, _ in _unknown(ctx, data, available):
                warn(pos, ref, f"{site.op.namespace}.{site.op.name} {what}", f"which {site.label} ({site.pos}) does not provide ({inputs}); it renders empty")


# --------------------------------------------------------------------------- orchestration

def check_step_paths(ctx: Context, out: Diagnostics) -> None:
    """`$.<step>.<field>` in mappings and lookup values names a step (mappings: any step; lookups:
    an earlier one). Otherwise the mapping is always omitted and the lookup never matches."""
    for site in ctx.sites:
        steps = [s.name for s in site.action.steps]
        if not steps or site.action.call is not None or site.action.ref is not None:
            continue
        for i, step in enumerate(site.action.steps):
            if step.kind == "lookup" and StepPath.parses(step.lookup_value):
                head = StepPath(step.lookup_value).step
                if head not in steps[:i]:
                    later = " comes later: a lookup reads only earlier steps" if head in steps else f" is no step{did_you_mean(head, steps[:i])}"
                    out.warning(ctx.field_pos(step.pos, "lookupValue"), f"{site.label}: lookup step '{step.name}': lookupValue '{step.lookup_value}': '{head}'{later}, so the lookup never matches", "step-ref-unresolved")
        for m in site.action.mappings:
            if not StepPath.parses(m.value):
                out.warning(ctx.field_pos(m.pos, "value"), f"{site.label}: mapping '{m.target}': value '{m.value}' is not a `$.<step>.<field>` path into the step outputs, so '{m.target}' is never set", "step-ref-unresolved")
            elif StepPath(m.value).step not in steps:
                head = StepPath(m.value).step
                out.warning(ctx.field_pos(m.pos, "value"), f"{site.label}: mapping '{m.target}': value '{m.value}' names no step '{head}'{did_you_mean(head, steps)} (steps: {name_list(steps)}), so '{m.target}' is never set", "step-ref-unresolved")


# --------------------------------------------------------------------------- structure

def check_namespaces(ctx: Context, out: Diagnostics) -> None:
    """Exposure namespaces are unique, and distinct from consumes and bind namespaces."""
    cap = ctx.cap
    exposures = sorted(((e.namespace, e.pos) for e in [*cap.rest, *cap.mcp, *cap.skills]), key=lambda x: (x[1].line, x[1].col))
    first: dict[str, Pos] = {}
    for ns, pos in exposures:
        where = ctx.field_pos(pos, "namespace")
        if ns in first:
            out.warning(where, f"exposure namespace '{ns}' is already used by the exposure at line {first[ns].line}; `--port {ns}=PORT` and `{ns}.x` references cannot tell them apart", "duplicate-namespace")
        else:
            first[ns] = pos
        if ns in cap.consumes:
            out.warning(where, f"exposure namespace '{ns}' is also a consumes namespace ({cap.consumes[ns].pos}); give each its own name", "duplicate-namespace")
    for bind in cap.binds:
        if bind.namespace in first or bind.namespace in cap.consumes:
            out.warning(ctx.field_pos(bind.pos, "namespace"), f"bind namespace '{bind.namespace}' is also an adapter namespace, so `{{{{{bind.namespace}.X}}}}` is ambiguous; rename the bind", "duplicate-namespace")


def check_ports(ctx: Context, out: Diagnostics) -> None:
    """Two exposures served over HTTP never share a port (`run` refuses to start)."""
    cap = ctx.cap
    served = [(e.namespace, e.port, e.pos) for e in [*cap.rest, *cap.skills, *([cap.control] if cap.control else [])] if e.port]
    served += [(m.namespace, m.port, m.pos) for m in cap.mcp if m.transport == "http" and m.port]
    first: dict[int, tuple[str, Pos]] = {}
    for ns, port, pos in sorted(served, key=lambda s: (s[2].line, s[2].col)):
        if port in first:
            other, opos = first[port]
            out.error(ctx.field_pos(pos, "port"), f"exposures '{other}' (line {opos.line}) and '{ns}' both listen on port {port}; `run` refuses to start. Give each exposure its own port", "port-conflict")
        else:
            first[port] = (ns, pos)


def check_binds(ctx: Context, out: Diagnostics) -> None:
    """Bind variables are used somewhere, and their `location` is one this runtime can read."""
    used: set[tuple[str, ...]] = {ref.path for ref, _ in templates_in(ctx.root)}
    for consumes in ctx.cap.consumes.values():  # imported adapters live in other files
        if consumes.auth is not None:
            a = consumes.auth
            used |= {ref.path for ref, _ in templates_in([*credentials.texts(a), consumes.base_uri])}
        for op in consumes.operations.values():
            used |= {ref.path for data, _, _ in _op_templates(ctx, op) for ref, _ in templates_in(data)}
    for bind in ctx.cap.binds:
        if bind.location and _bind_scheme(bind.location) != "file":
            out.error(ctx.field_pos(bind.pos, "location"), f"bind '{bind.namespace}': location scheme '{_bind_scheme(bind.location)}://' is not supported by this runtime; use environment variables (no `location`) or a file:// path", "bind-location")
        for var in bind.keys:
            if (var,) not in used and (bind.namespace, var) not in used:
                out.warning(bind.key_pos.get(var, bind.pos), f"bind variable '{var}' is not used by any template ({{{{{var}}}}} or {{{{{bind.namespace}.{var}}}}}), yet `run` requires it to be set; use it or remove it", "bind-unused")


def _bind_scheme(location: str) -> str:
    """The scheme binds.py reads a location with (a bare path is a file)."""
    if "://" in location:
        return location.split("://", 1)[0]
    return location.split(":", 1)[0] if location.startswith(("vault:", "k8s")) else "file"


def check_base_uris(ctx: Context, out: Diagnostics) -> None:
    """baseUri is an absolute http(s) URL once its (bound) variables are filled in."""
    for ns, consumes in ctx.cap.consumes.items():
        base = consumes.base_uri
        if not base:
            continue  # the normalizer reports the missing baseUri
        template = Template.compile(base)
        if any(not ctx.is_bind(r) for r in template.refs) or base.lstrip().startswith("{{"):
            continue  # unbound variables are the engine's error; a variable host cannot be judged
        url = urlsplit(template.render(lambda r: "x"))
        if url.scheme.lower() not in ("http", "https") or not url.netloc:
            out.error(ctx.field_pos(consumes.pos, "baseUri"), f"consumes '{ns}': baseUri '{base}' is not an absolute http(s) URL (like https://api.example.com/v1), so no request can be sent", "baseuri-invalid")


CHECKS: list[Check] = [
    check_with, check_reachable, check_route_vars, check_appended_route_params,
    check_templates, check_step_paths, check_namespaces, check_ports, check_binds, check_base_uris,
]


def run_rules(ctx: Context) -> Diagnostics:
    out = Diagnostics()
    for check in CHECKS:
        check(ctx, out)
    return out
