"""The compiler's verdict on a file: what `naftiko run` would refuse, as diagnostics.

The compiler already knows when a file cannot be served (duplicate routes and tools, unbound
variables in credentials and base URIs, unsupported authentication, operations with nothing to
do), so validate asks it rather than re-implementing those checks. It compiles against the
declared bind names with empty values: no secret is read, and a missing environment variable
never makes a file invalid.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import Iterator

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostic, Pos
from naftiko_runtime.capability.model import Capability
from naftiko_runtime.plan import compile_plan

# What `run` refuses until the deployment supplies a value (`--base-uri`): a warning here.
DEPLOYMENT_RULES = frozenset({"baseuri-server-variables"})


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Startup warnings the engine logs (e.g. an empty expected credential) are about the empty
    placeholder values, not the file; validate reports through diagnostics only."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def engine_diagnostics(cap: Capability, binds: BoundValues, dropped: set[Pos]) -> list[Diagnostic]:
    """Everything the engine reports but unresolved calls at `dropped` positions (calls into a
    namespace whose import failed: the import error is the one to fix)."""
    with _quiet_logs():
        try:
            found = list(compile_plan(cap, binds).diagnostics)
        except CapabilityError as exc:
            found = list(exc.diagnostics)
    out: list[Diagnostic] = []
    seen: set[tuple[str, Pos, str]] = set()
    for d in found:
        if d.rule in DEPLOYMENT_RULES:  # a value given when deploying, like a bind value: not a defect
            d = replace(d, severity="warning")
        if d.rule == "call-unresolved" and d.pos in dropped:
            continue
        key = (d.rule, d.pos, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
