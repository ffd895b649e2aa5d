"""The engine's verdict on a file: what `naftiko run` would refuse, as diagnostics.

The engine already knows when a file cannot be served (duplicate routes and tools, unbound
variables in credentials and base URIs, unsupported authentication, operations with nothing to
do), so validate asks it rather than re-implementing those checks. It compiles against the
declared bind names with empty values: no secret is read, and a missing environment variable
never makes a file invalid.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Iterator

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.engine import Engine, Options
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostic, Pos
from naftiko_runtime.capability.model import Capability

# engine findings that a rule id of the validator names better: (engine rule, message pattern, rule)
_RENAMED = [
    ("exposure-auth", re.compile(r"is not supported by this runtime"), "unsupported-auth"),
]


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Startup warnings the engine logs (e.g. an empty expected credential) are about the empty
    placeholder values, not the file; validate reports through diagnostics only."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def engine_diagnostics(cap: Capability, binds: BoundValues, replaced: set[Pos]) -> list[Diagnostic]:
    """Everything the engine reports; `compile` findings at `replaced` positions are dropped
    (the rules report them with more help, e.g. did-you-mean for an unresolved call)."""
    with _quiet_logs():
        try:
            found = list(Engine(cap, binds, Options(mock=False)).diagnostics)
        except CapabilityError as exc:
            found = list(exc.diagnostics)
    out: list[Diagnostic] = []
    seen: set[tuple[str, Pos, str]] = set()
    for d in found:
        if d.rule == "compile" and d.pos in replaced:
            continue
        rule = next((new for old, pattern, new in _RENAMED if d.rule == old and pattern.search(d.message)), d.rule)
        key = (rule, d.pos, d.message)
        if key not in seen:
            seen.add(key)
            out.append(Diagnostic(d.severity, d.pos, d.message, rule))
    return out
