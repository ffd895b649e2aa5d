"""What every generating command shares: check the generated capability, then write it out."""

from __future__ import annotations

import sys
from pathlib import Path

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.plan import compile_plan


def verify(text: str, file: str, base_dir: Path) -> list[str]:
    """Problems `naftiko run --mock` would have with the generated text (none expected: a bug otherwise).

    Generators check their own output the way the runtime will read it, so a case they get wrong
    is reported at once instead of being written as a file that does not run.
    """
    diagnostics = Diagnostics()
    cap = load_text(text, file, base_dir, diagnostics)
    problems = [str(d) for d in diagnostics.errors]
    if cap is None or problems:
        return problems or [f"{file}: the generated text does not load"]
    try:
        compile_plan(cap, resolve_binds(cap, base_dir, allow_missing=True), mock=True)
    except CapabilityError as exc:
        return [str(d) for d in exc.diagnostics]
    return []


def write(text: str, out: Path | None) -> None:
    """To `out`, or to stdout when None (`-o -` is stdout too)."""
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
