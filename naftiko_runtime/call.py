"""`naftiko call FILE OPERATION [NAME=VALUE ...]`: run one tool or REST operation once, no server.

The startup is `naftiko run`'s (build.single_plan: load, bind, compile) and the call is the very
pipeline a request runs (`Invocation.invoke` with a `Runtime`), so a call that works here works
over REST and MCP. Values are read the way the REST exposure reads them: a path, query, header or
cookie input takes the text as its declared type (a string input keeps `007` as text); any other
input takes VALUE as JSON when it parses, else as a string. Errors are the REST exposure's
problem+json, on stderr.

Exit codes: 0 success; 1 an input error, an upstream failure or an upstream 4xx/5xx, or a file that
cannot be served; 2 usage (unknown operation or input name).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from naftiko_runtime.errors import InputError, InputProblem, StepFailure, UpstreamFailure
from naftiko_runtime.inputs import Input, coerce, text_problem
from naftiko_runtime.pipeline import Invocation, Outcome
from naftiko_runtime.plan import Plan
from naftiko_runtime.shaping import NOTHING

LOCATED = ("path", "query", "header", "cookie")


class UnknownName(ValueError):
    """An operation or input name the capability does not have (usage error)."""


def callables(plan: Plan) -> dict[str, Invocation]:
    """Every name `call` accepts: MCP tools, then REST operations, each also as `exposure.name`."""
    found: dict[str, Invocation] = {}
    entries = [(api.exposure.namespace, t.tool.name, t.invocation) for api in plan.mcp for t in api.tools]
    entries += [(api.exposure.namespace, r.operation.name, r.invocation) for api in plan.rest for r in api.routes if r.operation.name]
    for namespace, name, invocation in entries:
        found.setdefault(name, invocation)
        found.setdefault(f"{namespace}.{name}", invocation)
    return found


def find(plan: Plan, name: str) -> Invocation:
    found = callables(plan)
    if name in found:
        return found[name]
    plain = sorted({n for n in found if "." not in n})
    listed = ", ".join(plain[:30]) + (f" and {len(plain) - 30} more" if len(plain) > 30 else "")
    raise UnknownName(f"'{name}' is not a tool or REST operation of this capability; known: {listed or 'none'}")


def parse_values(invocation: Invocation, pairs: list[str], operation: str = "") -> dict[str, Any]:
    """NAME=VALUE pairs as the invocation's inputs; InputError for a value of the wrong type."""
    label = f"'{operation}'" if operation else ""
    inputs = {i.name: i for i in invocation.inputs}
    values: dict[str, Any] = {}
    problems: list[InputProblem] = []
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise UnknownName(f"expected NAME=VALUE, got '{pair}'")
        inp = inputs.get(name)
        if inp is None:
            known = ", ".join(inputs) or "none"
            raise UnknownName(f"{label or invocation.name} has no input '{name}'; its inputs: {known}")
        try:
            values[name] = read_value(inp, raw)
        except ValueError:
            problems.append(text_problem(name, inp.location, inp.type, raw))
    if problems:
        raise InputError(problems)
    return values


def read_value(inp: Input, raw: str) -> Any:
    """One VALUE, read as the REST exposure reads the same input (ValueError: not of its type)."""
    if inp.location in LOCATED:
        if inp.type == "string":
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            if inp.type == "array":
                return raw.split(",")
            return coerce(raw, inp.type)
    try:
        return json.loads(raw)
    except ValueError:
        return raw


async def invoke(plan: Plan, invocation: Invocation, values: dict[str, Any]) -> Outcome:
    from naftiko_runtime.runtime import Runtime

    runtime = Runtime(plan)
    try:
        return await invocation.invoke(values, runtime)
    finally:
        await runtime.close()


def result_text(outcome: Outcome) -> str:
    """The result as printed: JSON, indented; a non-JSON body as its text."""
    if outcome.value is not NOTHING:
        return json.dumps(outcome.value, ensure_ascii=False, indent=2)
    raw = outcome.body.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False, indent=2) if raw.strip() else ""
    except (ValueError, RecursionError):
        return raw


def call_command(args: Any) -> int:
    from naftiko_runtime.binds import load_env_file
    from naftiko_runtime.build import single_plan
    from naftiko_runtime.exposes.problems import input_problem_body, step_problem_body, upstream_problem_body
    from naftiko_runtime.logs import configure_logging, set_secrets
    from naftiko_runtime.settings import Settings

    def err(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    handler = configure_logging(args.log_level)
    if args.env_file is not None:
        if not args.env_file.is_file():
            err(f"naftiko call: --env-file {args.env_file}: no such file")
            return 2
        load_env_file(args.env_file)
    plan = single_plan(args.file, err, "naftiko call", "nothing is called", Settings.from_args(args), mock=args.mock,
                       base_uris=dict(args.base_uri), on_secrets=lambda secrets: set_secrets(handler, secrets))
    if isinstance(plan, int):
        return plan
    instance = args.operation
    invocation = None
    try:
        invocation = find(plan, args.operation)
        values = parse_values(invocation, args.values, args.operation)
        outcome = asyncio.run(invoke(plan, invocation, values))
    except UnknownName as exc:
        err(f"naftiko call: {exc}")
        return 2
    except InputError as exc:
        if invocation is not None:
            exc = invocation.blame(exc)
        err(json.dumps(input_problem_body(exc, instance), ensure_ascii=False, indent=2))
        return 1
    except UpstreamFailure as exc:
        err(json.dumps(upstream_problem_body(exc, instance), ensure_ascii=False, indent=2))
        return 1
    except StepFailure as exc:
        err(json.dumps(step_problem_body(exc, instance), ensure_ascii=False, indent=2))
        return 1
    text = result_text(outcome)
    if not outcome.ok:
        err(f"naftiko call: upstream '{invocation.upstream}' answered HTTP {outcome.status}")
        if text:
            err(text)
        return 1
    if text:
        print(text, flush=True)
    return 0
