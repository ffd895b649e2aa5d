"""Check one file: read, parse, schema, normalize, rules, engine. Never raises.

The stages share one parse (positions come from it) and run in the order `run` would meet the
problems. Whatever goes wrong inside the checker itself becomes an `internal-error` diagnostic
for that file, so one odd file never hides the findings of the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from naftiko_runtime.check.compiled import engine_diagnostics
from naftiko_runtime.check.context import Context
from naftiko_runtime.check.rules import run_rules
from naftiko_runtime.check.schema import schema_diagnostics, schema_findings, strict_kind
from naftiko_runtime.capability.diagnostics import Diagnostic, Diagnostics, Pos
from naftiko_runtime.capability.load import FileLoader, display_path
from naftiko_runtime.capability.normalize import Normalizer
from naftiko_runtime.capability.yamlsource import YMap, parse_text, read_text

# Real capability files are under 100 KB; PyYAML needs ~1 s per MB of dense YAML, so a file this
# large is refused quickly rather than checked for minutes.
MAX_CHECK_BYTES = 4 * 1024 * 1024
ACCEPTED = " (the runtime accepts it)"


@dataclass
class FileResult:
    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)


def check_file(path: Path, strict: bool = False) -> FileResult:
    file = display_path(path)
    d = Diagnostics()
    try:
        _check(path, file, strict, d)
    except Exception as exc:  # noqa: BLE001 - a checker bug must not stop the other files
        d.error(Pos(file), f"internal error while checking this file ({type(exc).__name__}: {exc}); the other findings may be incomplete, please report it", "internal-error")
    return FileResult(file, _ordered(d.items, file))


def _check(path: Path, file: str, strict: bool, d: Diagnostics) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size > MAX_CHECK_BYTES:
        d.error(Pos(file), f"the file is {size:,} bytes; `naftiko validate` checks capability files up to {MAX_CHECK_BYTES:,} bytes (real ones are under 100 KB); split it", "file-too-large")
        return
    text = read_text(path, d)
    root = parse_text(text, file, d) if text is not None else None
    if root is None:
        return
    lenient = schema_diagnostics(root, file, "lenient") if isinstance(root, YMap) else []
    official = schema_findings(root, file, strict_kind(root)) if strict and isinstance(root, YMap) else []
    loader = FileLoader(d)  # resolves imports relative to this file, detects import cycles
    loader.stack.append(path.resolve())
    cap = Normalizer(file, path.resolve().parent, d, loader.load_import).document(root)
    taken = {x.pos for x in d.errors}
    d.extend(x for x in lenient if x.pos not in taken)  # one error per node: the normalizer's says more
    if cap is not None and cap.shared:
        d.note(cap.pos, "a file of shared parts: its calls and bind names are checked in the files that import it", "shared-parts-file")
    elif cap is not None:
        ctx = Context.build(cap, root)
        rules = run_rules(ctx)
        d.extend(rules)
        failed = {s.action.call_pos or s.pos for s in ctx.sites if s.action.call is not None and s.action.call[0] in ctx.failed_imports}
        found = {(x.rule, x.pos) for x in d.errors}  # one finding per rule and node: the normalizer's says more
        d.extend(x for x in engine_diagnostics(cap, ctx.binds, failed) if (x.rule, x.pos) not in found)
    # "the runtime accepts it" only where the default checks found nothing at the node or around it
    # (an ignored key such as `calls` or `ref` sits in a mapping the runtime reports on)
    flagged = {x.pos for x in d if x.severity != "note"}
    unknown_keys = {x.pos for x in d if x.rule in ("key-typo", "unknown-key")}  # already said, with did-you-mean
    for f in official:
        x = f.diagnostic
        if x.pos in unknown_keys:
            continue
        accepted = not lenient and x.pos not in flagged and f.scope not in flagged
        d.add("error", x.pos, x.message + (ACCEPTED if accepted else ""), x.rule)


def _ordered(items: list[Diagnostic], file: str) -> list[Diagnostic]:
    """By position, the checked file first; then the files it imports."""
    return sorted(items, key=lambda x: (x.pos.file != file, x.pos.file, x.pos.line, x.pos.col))
