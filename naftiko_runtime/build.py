"""From capability files to `Plan`s: load, bind, compile -- the startup every command shares.

`naftiko run` (one file, several, or a directory), a reload and a worker supervisor's check all go
through `build_plans`, so a file is refused for the same reasons, with the same messages, whichever
path meets it.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from naftiko_runtime.binds import bind_files, resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostic, Diagnostics, Pos
from naftiko_runtime.capability.model import ControlExposure
from naftiko_runtime.capability.load import FileLoader, display_path
from naftiko_runtime.check.files import select
from naftiko_runtime.errors import BindError, BuildError, CapabilityError, StartupError, UsageError
from naftiko_runtime.plan import Plan, compile_plan
from naftiko_runtime.settings import Settings

log = logging.getLogger("naftiko")


def build_plans(paths: Sequence[str | Path], settings: Settings | None = None, *, mock: bool = False,
                base_uris: Mapping[str, str] | None = None,
                on_secrets: Callable[[list[str]], None] | None = None, quiet: bool = False,
                control_port: int | None = None) -> list[Plan]:
    """Every capability of PATHS (files, or directories searched like `naftiko validate` does).

    A file found in a directory that exposes nothing (a shared consumes file others import) is
    skipped. Every file is built even when one fails, so one run lists every problem: BuildError
    pairs each failing file with its error. `quiet` logs warnings at debug level (a worker
    rebuilding what its supervisor already checked and reported). `control_port` (`--control-port`)
    goes to the first file: one control port serves the process.
    """
    selection = select([str(p) for p in paths])
    if selection.problems:
        raise UsageError("; ".join(selection.problems))
    named = {Path(p).resolve() for p in paths if Path(p).is_file()}
    plans: list[Plan] = []
    failures: list[tuple[str, StartupError]] = []
    secrets: list[str] = []

    def collect(found: list[str]) -> None:
        secrets.extend(found)
        if on_secrets is not None:
            on_secrets(list(secrets))

    for index, file in enumerate(selection.files):
        try:
            plan = build_plan(file, settings, mock=mock, base_uris=base_uris, on_secrets=collect, quiet=quiet,
                              skip_empty=file.resolve() not in named, control_port=control_port if index == 0 else None)
        except (CapabilityError, BindError) as exc:
            failures.append((display_path(file), exc))
            continue
        if plan is not None:
            plans.append(plan)
    if failures:
        raise BuildError(failures)
    if not plans:
        raise UsageError(f"no capability with exposures in {', '.join(str(p) for p in paths)}")
    _check_base_uris(plans, base_uris or {})
    return plans


def build_plan(path: Path, settings: Settings | None = None, *, mock: bool = False,
               base_uris: Mapping[str, str] | None = None, on_secrets: Callable[[list[str]], None] | None = None,
               quiet: bool = False, skip_empty: bool = False, control_port: int | None = None) -> Plan | None:
    """Load, bind and compile one file. Raises CapabilityError or BindError (StartupError).

    Warnings are logged as they are found (notes at debug level); `on_secrets` receives the bind
    values as soon as they are read, so nothing logged after that can show one. `base_uris` may
    name namespaces of other files (build_plans checks that each names one somewhere). None only
    with `skip_empty`, for a file that exposes nothing. `control_port` is the port of the file's
    control exposure, or adds one with the spec's defaults to a file that declares none.
    """
    diagnostics = Diagnostics()
    loader = FileLoader(diagnostics)
    cap = loader.load(path)
    log_findings(diagnostics, quiet)
    if cap is None or diagnostics.errors:
        raise CapabilityError(diagnostics.errors or list(diagnostics)[:1])
    if control_port is not None:
        cap.control = dataclasses.replace(cap.control, port=control_port) if cap.control else ControlExposure(Pos("--control-port"), control_port)
    if skip_empty and not cap.exposure_namespaces():
        log.debug("%s exposes nothing (a shared consumes file?); not served", cap.file)
        return None
    base_dir = path.resolve().parent
    sources = (*loader.files, *bind_files(cap, base_dir))
    binds = resolve_binds(cap, base_dir, allow_missing=mock)
    if on_secrets is not None:
        on_secrets(binds.secrets)
    plan = compile_plan(cap, binds, settings, mock=mock, base_uris={ns: u for ns, u in (base_uris or {}).items() if ns in cap.consumes})
    log_findings(plan.diagnostics, quiet)
    return dataclasses.replace(plan, sources=tuple(dict.fromkeys(sources)))


def _check_base_uris(plans: list[Plan], base_uris: Mapping[str, str]) -> None:
    known = [ns for plan in plans for ns in plan.cap.consumes]
    unknown = [ns for ns in base_uris if ns not in known]
    if unknown:
        raise UsageError(f"--base-uri names unknown consumes namespace(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}")


def log_findings(findings: Iterable[Diagnostic], quiet: bool = False) -> None:
    for d in findings:
        if d.severity == "warning":
            log.log(logging.DEBUG if quiet else logging.WARNING, "%s", d)
        elif d.severity == "note":
            log.debug("%s", d)


def single_plan(file: str, say: Callable[[str], None], prog: str, consequence: str, settings: Settings | None = None, *,
                mock: bool = False, base_uris: Mapping[str, str] | None = None,
                on_secrets: Callable[[list[str]], None] | None = None) -> Plan | int:
    """`naftiko call` and `export openapi`: the capability of FILE, or the exit code after saying
    why there is none, in `run`'s words (`describe`, then the validate hint)."""
    try:
        return build_plans([file], settings, mock=mock, base_uris=base_uris, on_secrets=on_secrets)[0]
    except UsageError as exc:
        say(f"{prog}: {exc}")
        code = 2
    except StartupError as exc:
        for line in describe(exc, consequence):
            say(line)
        code = 1
    say(f"{prog}: run `naftiko validate {shlex.quote(file)}` to see every finding.")
    return code


def describe(exc: StartupError, consequence: str) -> list[str]:
    """What to tell the user about files that cannot be served: every finding, then what follows
    (`consequence`: "nothing is served" at startup, "the last good version keeps serving" on reload)."""
    if isinstance(exc, BuildError):
        return [line for _, failure in exc.failures for line in describe(failure, consequence)]
    if isinstance(exc, CapabilityError):
        file = exc.diagnostics[0].pos.file if exc.diagnostics else "the capability"
        return [*(str(d) for d in exc.diagnostics), f"{file}: {len(exc.diagnostics)} error(s); {consequence}."]
    if isinstance(exc, BindError):
        return [f"{len(exc.missing)} bind value(s) missing; {consequence}:",
                *(f"  {m.name}: {m.where}  (declared at {m.pos})" for m in exc.missing),
                "Set them in the environment, or pass --env-file FILE (or --mock to run against a fake upstream)."]
    return [str(exc)]
