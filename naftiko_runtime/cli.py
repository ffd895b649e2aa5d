"""The `naftiko` command: `run` serves a capability, `validate` checks capability files."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from pathlib import Path

from naftiko_runtime import __version__
from naftiko_runtime.capability.versions import RANGE
from naftiko_runtime.settings import add_arguments as add_settings

log = logging.getLogger("naftiko")


def _pair(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE={what}, got '{text}'")
    return name, value


def _port_pair(text: str) -> tuple[str, int]:
    name, value = _pair(text, "PORT")
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"'{value}' is not a TCP port number")
    return name, int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="naftiko", description="Serve and check Naftiko capability files.")
    parser.add_argument("-V", "--version", action="version", version=f"naftiko-runtime {__version__} (format {RANGE}: naftiko alpha1-alpha2, ikanos alpha3-beta4)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="serve a capability's REST and MCP exposures", description="Serve every REST and MCP exposure of a capability file in one process.")
    run.add_argument("file", help="the capability YAML file")
    run.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; the file's `address` is not used unless passed here)")
    run.add_argument("--port", action="append", type=_port_pair, default=[], metavar="NAMESPACE=PORT", help="listen port of an exposure (repeatable; 0 picks a free port)")
    run.add_argument("--base-uri", action="append", type=lambda t: _pair(t, "URL"), default=[], metavar="NAMESPACE=URL", help="send a consumes namespace's requests to another server (repeatable)")
    run.add_argument("--env-file", type=Path, default=None, metavar="FILE", help="load environment variables from a dotenv file first (variables already set win)")
    add_settings(run)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log verbosity (logs go to stderr)")
    run.add_argument("--access-log", action="store_true", help="log one line per request")
    run.add_argument("--mock", action="store_true", help="replace every upstream by an in-process stateful fake (no network, no API keys)")
    run.add_argument("--stdio", action="store_true", help="serve the file's MCP exposure on stdin/stdout instead of HTTP")

    val = sub.add_parser("validate", help="check capability files (for CI and editors)", description="Check capability files: YAML, schema, and what would fail at run time.")
    val.add_argument("paths", nargs="+", help="files, directories (searched recursively) or globs")
    val.add_argument("--strict", action="store_true", help="also report every deviation from the official schema of the file's version as an error")
    val.add_argument("--format", choices=["text", "json", "github"], default="text", help="output format (github: workflow annotations)")
    val.add_argument("--quiet", "-q", action="store_true", help="print errors and warnings only, not notes")
    val.add_argument("--only-capabilities", action="store_true", help="skip files without a top-level `naftiko` key, as directories do (for pre-commit, which passes every changed YAML file)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "validate":
        from naftiko_runtime.validate import validate_command

        return validate_command(args)
    parser.print_help(sys.stderr)
    return 2


def _print(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _refuse(file: str, message: str, code: int = 1) -> int:
    """Every refusal of `run` ends the same way: what is wrong, then where to see every finding."""
    _print(f"naftiko: {file}: {message}")
    _print(f"naftiko: run `naftiko validate {shlex.quote(file)}` to see every finding.")
    return code


def run_command(args: argparse.Namespace) -> int:
    from naftiko_runtime.binds import load_env_file
    from naftiko_runtime.build import build_plan
    from naftiko_runtime.errors import BindError, CapabilityError, UsageError
    from naftiko_runtime.logs import configure_logging, set_secrets
    from naftiko_runtime.runtime import Runtime
    from naftiko_runtime.server import ServeOptions
    from naftiko_runtime.settings import Settings

    handler = configure_logging(args.log_level)
    if args.env_file is not None:
        if not args.env_file.is_file():
            _print(f"naftiko: --env-file {args.env_file}: no such file")
            return 2
        load_env_file(args.env_file)
    path = Path(args.file)
    settings = Settings.from_args(args)
    try:
        plan = build_plan(path, settings, mock=args.mock, base_uris=dict(args.base_uri),
                          on_secrets=lambda secrets: set_secrets(handler, secrets))
    except CapabilityError as exc:
        for d in exc.diagnostics:
            _print(str(d))
        return _refuse(args.file, f"{len(exc.diagnostics)} error(s); nothing is served.")
    except BindError as exc:
        _print(f"naftiko: {len(exc.missing)} bind value(s) missing; nothing is served:")
        for m in exc.missing:
            _print(f"  {m.name}: {m.where}  (declared at {m.pos})")
        return _refuse(args.file, "set them in the environment, or pass --env-file FILE (or --mock to run against a fake upstream).")
    except UsageError as exc:
        return _refuse(args.file, str(exc), 2)
    known_ns = set(plan.cap.exposure_namespaces())
    unknown_ports = [ns for ns, _ in args.port if ns not in known_ns]
    if unknown_ports:
        return _refuse(args.file, f"--port names unknown exposure(s) {', '.join(unknown_ports)}; known: {', '.join(sorted(known_ns)) or 'none'}", 2)
    serve_options = ServeOptions(host=args.host, ports=dict(args.port), log_level=args.log_level, access_log=args.access_log,
                                 grace_period=settings.grace_period)
    runtime = Runtime(plan)
    if args.stdio or _stdio_only(runtime):
        return _run_stdio(runtime, args.file)
    return _run_http(runtime, serve_options, args.mock, args.file)


def _stdio_only(runtime) -> bool:
    """A file whose one served exposure is `transport: stdio` MCP runs on stdio without --stdio."""
    plan = runtime.plan
    return not plan.rest and len(plan.mcp) == 1 and plan.mcp[0].exposure.transport == "stdio"


def _run_stdio(runtime, file: str) -> int:
    stdio = list(runtime.plan.mcp)
    if len(stdio) != 1:
        return _refuse(file, f"--stdio needs exactly one MCP exposure; this file has {len(stdio)}", 2)
    from naftiko_runtime.exposes.mcp import serve_stdio

    return _run_loop(serve_stdio(runtime, stdio[0]))


def _run_http(runtime, serve_options, mock: bool, file: str) -> int:
    from naftiko_runtime.exposes.rest import build_app as build_rest
    from naftiko_runtime.exposes.skill import build_app as build_skill
    from naftiko_runtime.server import plan_listeners, serve

    listeners, problems = plan_listeners(runtime, serve_options, build_rest, _build_mcp, build_skill)
    for problem in problems:
        _print(f"naftiko: {problem}")
    if problems:
        return _refuse(file, f"{len(problems)} problem(s); nothing is served.")
    if runtime.plan.cap.control is not None:
        _print("naftiko: the control exposure is not served by this runtime yet; the others run")
    for api in runtime.plan.mcp:
        if api.exposure.transport == "stdio":
            _print(f"naftiko: MCP exposure '{api.exposure.namespace}' uses stdio; run `naftiko run {runtime.plan.cap.file} --stdio` to serve it")
    if not listeners:
        return _refuse(file, "nothing to serve over HTTP")
    suffix = " [mock upstream: in-process fake, no network]" if mock else ""

    def announce(listener) -> None:
        if listener.kind == "rest":
            _print(f"naftiko: REST '{listener.namespace}' on {listener.url} ({len(listener.paths)} routes; OpenAPI at {listener.url}/openapi.json){suffix}")
        elif listener.kind == "skill":
            _print(f"naftiko: skills '{listener.namespace}' on {listener.url}/skills")
        else:
            _print(f"naftiko: MCP '{listener.namespace}' on {listener.url}/mcp (streamable HTTP){suffix}")

    try:
        return _run_loop(serve(runtime, listeners, serve_options, announce))
    except OSError as exc:
        return _refuse(file, str(exc))


def _build_mcp(runtime, api, host):
    """Imported when first needed: the runtime imports the MCP SDK while REST already serves."""
    from naftiko_runtime.exposes.mcp import build_app

    return build_app(runtime, api, host)


def _run_loop(coro) -> int:
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    except KeyboardInterrupt:
        return 0
