"""From a capability file to a `Plan`: load, bind, compile -- the startup every command shares.

`naftiko run`, `naftiko call` and a reload all go through `build_plan`, so a file is refused for
the same reasons, with the same messages, whichever command meets it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable, Mapping

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostic, Diagnostics
from naftiko_runtime.capability.load import load_capability
from naftiko_runtime.errors import CapabilityError, UsageError
from naftiko_runtime.plan import Plan, compile_plan
from naftiko_runtime.settings import Settings


log = logging.getLogger("naftiko")


def build_plan(path: Path, settings: Settings | None = None, *, mock: bool = False,
               base_uris: Mapping[str, str] | None = None,
               on_secrets: Callable[[list[str]], None] | None = None) -> Plan:
    """Load, bind and compile `path`. Raises CapabilityError, BindError or UsageError (StartupError).

    Warnings are logged as they are found (notes at debug level); `on_secrets` receives the bind
    values as soon as they are read, so nothing logged after that can show one.
    """
    diagnostics = Diagnostics()
    cap = load_capability(path, diagnostics)
    log_findings(diagnostics)
    if cap is None or diagnostics.errors:
        raise CapabilityError(diagnostics.errors or list(diagnostics)[:1])
    binds = resolve_binds(cap, path.resolve().parent, allow_missing=mock)
    if on_secrets is not None:
        on_secrets(binds.secrets)
    unknown = [ns for ns in (base_uris or {}) if ns not in cap.consumes]
    if unknown:
        raise UsageError(f"--base-uri names unknown consumes namespace(s) {', '.join(unknown)}; known: {', '.join(cap.consumes) or 'none'}")
    plan = compile_plan(cap, binds, settings, mock=mock, base_uris=base_uris)
    log_findings(plan.diagnostics)
    return plan


def log_findings(findings: Iterable[Diagnostic]) -> None:
    for d in findings:
        if d.severity == "warning":
            log.warning("%s", d)
        elif d.severity == "note":
            log.debug("%s", d)
