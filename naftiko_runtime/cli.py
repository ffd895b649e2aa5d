"""The `naftiko` command: `run` serves a capability, `validate` checks capability files."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from pathlib import Path

from naftiko_runtime import __version__
from naftiko_runtime.capability.versions import RANGE
from naftiko_runtime.migrate import add_parser as add_migrate, migrate_command
from naftiko_runtime.settings import add_arguments as add_settings

log = logging.getLogger("naftiko")


def _pair(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE={what}, got '{text}'")
    return name, value


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"'{value}' is not a TCP port number")
    return int(value)


def _port_pair(text: str) -> tuple[str, int]:
    name, value = _pair(text, "PORT")
    return name, _port(value)


def _workers(text: str) -> int:
    if text == "auto":
        from naftiko_runtime.workers import available_cores

        return available_cores()
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of workers >= 1 or 'auto', got '{text}'")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="naftiko", description="Serve and check Naftiko capability files.")
    parser.add_argument("-V", "--version", action="version", version=f"naftiko-runtime {__version__} (format {RANGE}: naftiko alpha1-alpha2, ikanos alpha3-beta4)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="serve capabilities' REST and MCP exposures", description="Serve every REST and MCP exposure of one or more capability files.")
    run.add_argument("files", nargs="+", metavar="PATH", help="capability files, or directories (every capability in them, recursively)")
    run.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; the file's `address` is not used unless passed here)")
    run.add_argument("--port", action="append", type=_port_pair, default=[], metavar="NAMESPACE=PORT", help="listen port of an exposure (repeatable; 0 picks a free port)")
    run.add_argument("--base-uri", action="append", type=lambda t: _pair(t, "URL"), default=[], metavar="NAMESPACE=URL", help="send a consumes namespace's requests to another server (repeatable)")
    run.add_argument("--env-file", type=Path, default=None, metavar="FILE", help="load environment variables from a dotenv file first (variables already set win)")
    add_settings(run)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log verbosity (logs go to stderr)")
    run.add_argument("--log-format", default="text", choices=["text", "json"],
                     help="text (default) or json: one JSON object per line on stderr (time, level, logger, message, trace_id, span_id)")
    run.add_argument("--access-log", action="store_true", help="log one line per request")
    run.add_argument("--mock", action="store_true", help="replace every upstream by an in-process stateful fake (no network, no API keys)")
    run.add_argument("--stdio", action="store_true", help="serve the file's MCP exposure on stdin/stdout instead of HTTP")
    run.add_argument("--control-port", type=_port, default=None, metavar="PORT",
                     help="serve the control port (health, status, metrics, traces) here; adds a control exposure to a file that has none")
    run.add_argument("--no-docs", action="store_true", help="do not serve the interactive API docs page at /docs on REST exposures")
    run.add_argument("--workers", type=_workers, default=1, metavar="N|auto", help="worker processes serving the same ports (auto: one per available core; default 1)")
    run.add_argument("--reload", action="store_true", help="watch the files (capabilities, imports, bind files, TLS files) and swap in each clean new version without closing a listener; SIGHUP does the same")
    run.add_argument("--ssl-certfile", type=Path, default=None, metavar="FILE", help="serve every listener over TLS with this PEM certificate (chain)")
    run.add_argument("--ssl-keyfile", type=Path, default=None, metavar="FILE", help="the certificate's unencrypted PEM private key (default: in the certificate file)")
    run.add_argument("--ssl-ca-certs", type=Path, default=None, metavar="FILE", help="require client certificates signed by one of these PEM CA certificates (mutual TLS)")

    val = sub.add_parser("validate", help="check capability files (for CI and editors)", description="Check capability files: YAML, schema, and what would fail at run time.")
    val.add_argument("paths", nargs="+", help="files, directories (searched recursively) or globs")
    val.add_argument("--strict", action="store_true", help="also report every deviation from the official schema of the file's version as an error")
    val.add_argument("--format", choices=["text", "json", "github"], default="text", help="output format (github: workflow annotations)")
    val.add_argument("--quiet", "-q", action="store_true", help="print errors and warnings only, not notes")
    val.add_argument("--only-capabilities", action="store_true", help="skip files without a top-level `naftiko` key, as directories do (for pre-commit, which passes every changed YAML file)")
    add_migrate(sub)
    _authoring_parsers(sub)
    return parser


def _authoring_parsers(sub: argparse._SubParsersAction) -> None:
    """`import openapi`, `export openapi`, `init`, `call` (docs/authoring.md)."""
    imp = sub.add_parser("import", help="write a capability from an API description", description="Write a capability from an API description.")
    oa = imp.add_subparsers(dest="format", metavar="FORMAT", required=True).add_parser(
        "openapi", help="from an OpenAPI 3.0 or 3.1 file", description="Write a capability from a local OpenAPI 3.0/3.1 file (YAML or JSON): the consumed API, a REST exposure mirroring its routes, an MCP tool per operation.")
    oa.add_argument("spec", metavar="SPEC", help="the OpenAPI file ($refs to other local files are followed)")
    oa.add_argument("-o", "--output", metavar="FILE", help="write the capability here (default: stdout)")
    oa.add_argument("--tag", action="append", default=[], metavar="TAG", help="import only operations with this tag (repeatable)")
    oa.add_argument("--include-path", action="append", default=[], metavar="GLOB", help="import only paths matching this glob, e.g. '/session*' (repeatable)")
    oa.add_argument("--namespace", metavar="NS", help="consumes namespace (default: from the API title); also names the secrets (NS_API_KEY)")
    oa.add_argument("--version", metavar="V", help="format version to write (default: the newest this runtime writes)")

    exp = sub.add_parser("export", help="describe a capability in another format", description="Describe a capability in another format.")
    eo = exp.add_subparsers(dest="format_name", metavar="FORMAT", required=True).add_parser(
        "openapi", help="the OpenAPI 3.1 of a REST exposure", description="Print the OpenAPI 3.1 document of a REST exposure: the same document its /openapi.json serves.")
    eo.add_argument("file", help="the capability YAML file")
    eo.add_argument("--exposure", metavar="NS", help="which REST exposure (needed when the file has several)")
    eo.add_argument("--format", choices=["json", "yaml"], default="json", help="output format (default json)")
    eo.add_argument("-o", "--output", metavar="OUT", help="write here (default: stdout)")

    init = sub.add_parser("init", help="write a commented starter capability", description="Write a commented starter capability that validates and runs with --mock. Asks a few questions on a terminal; flags otherwise.")
    init.add_argument("file", nargs="?", default="capability.yaml", help="where to write it (default capability.yaml; '-' for stdout)")
    init.add_argument("--name", help="API name, lower-case with dashes (default: the directory's name)")
    init.add_argument("--base-uri", metavar="URL", help="the API's base URL (default https://api.example.com/v1)")
    init.add_argument("--auth", choices=["bearer", "apikey", "none"], help="how the API authenticates (default bearer)")
    init.add_argument("--env", metavar="VAR", help="environment variable holding the credential (default NAME_API_KEY)")
    init.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    call = sub.add_parser("call", help="run one tool or REST operation once and print its result", description="Run one tool or REST operation of a capability once, without a server, and print its result as JSON.")
    call.add_argument("file", help="the capability YAML file")
    call.add_argument("operation", metavar="OPERATION", help="a tool or REST operation name (or EXPOSURE.NAME)")
    call.add_argument("values", nargs="*", metavar="NAME=VALUE", help="inputs; VALUE is JSON when it parses, else text (path/query/header inputs: read as their declared type)")
    call.add_argument("--mock", action="store_true", help="call the in-process fake upstream (no network, no API keys)")
    call.add_argument("--base-uri", action="append", type=lambda t: _pair(t, "URL"), default=[], metavar="NAMESPACE=URL", help="send a consumes namespace's requests to another server (repeatable)")
    call.add_argument("--env-file", type=Path, default=None, metavar="FILE", help="load environment variables from a dotenv file first (variables already set win)")
    call.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"], help="log verbosity (stderr)")
    add_settings(call)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "validate":
        from naftiko_runtime.validate import validate_command

        return validate_command(args)
    if args.command == "migrate":
        return migrate_command(args)
    if args.command == "import":
        from naftiko_runtime.authoring.openapi_import import import_command

        return import_command(args)
    if args.command == "export":
        from naftiko_runtime.authoring.openapi_export import export_command

        return export_command(args)
    if args.command == "init":
        from naftiko_runtime.authoring.init import init_command

        return init_command(args)
    if args.command == "call":
        from naftiko_runtime.call import call_command

        code = call_command(args)
        # Leave without interpreter finalization: the upstream client's (pyreqwest) worker threads
        # may still drop Python objects after `close`, which aborts a finalizing interpreter
        # (SIGABRT in 4 of 20 runs of a call that ended on an upstream 404). Output is flushed first.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    parser.print_help(sys.stderr)
    return 2


def _print(message: str) -> None:
    from naftiko_runtime.logs import console

    console(message)


def _refuse(paths: list[str], message: str, code: int = 1) -> int:
    """Every refusal of `run` ends the same way: what is wrong, then where to see every finding."""
    if message:
        _print(f"naftiko: {message}")
    _print(f"naftiko: run `naftiko validate {' '.join(shlex.quote(p) for p in paths)}` to see every finding.")
    return code


def run_command(args: argparse.Namespace) -> int:
    from naftiko_runtime.binds import load_env_file
    from naftiko_runtime.build import build_plans, describe
    from naftiko_runtime.errors import StartupError, UsageError
    from naftiko_runtime.logs import configure_logging, set_secrets
    from naftiko_runtime.server import ServeOptions
    from naftiko_runtime.settings import Settings

    handler = configure_logging(args.log_level, fmt=args.log_format)
    if args.env_file is not None:
        if not args.env_file.is_file():
            _print(f"naftiko: --env-file {args.env_file}: no such file")
            return 2
        load_env_file(args.env_file)
    settings = Settings.from_args(args)
    secrets: set[str] = set()

    def remember(found: list[str]) -> None:
        secrets.update(found)  # every value ever read stays masked, also after a reload replaced it
        set_secrets(handler, sorted(secrets))

    def rebuild(quiet: bool = False):
        return build_plans(args.files, settings, mock=args.mock, base_uris=dict(args.base_uri), on_secrets=remember, quiet=quiet,
                           control_port=args.control_port)

    try:
        tls = _tls(args)
    except UsageError as exc:  # about the TLS files, not the capability: no `validate` hint
        _print(f"naftiko: {exc}")
        return 2
    try:
        plans = rebuild()
    except UsageError as exc:
        return _refuse(args.files, str(exc), 2)
    except StartupError as exc:
        for line in describe(exc, "nothing is served"):
            _print(line)
        return _refuse(args.files, "")
    known_ns = {ns for plan in plans for ns in plan.cap.exposure_namespaces()}
    unknown_ports = [ns for ns, _ in args.port if ns not in known_ns]
    if unknown_ports:
        return _refuse(args.files, f"--port names unknown exposure(s) {', '.join(unknown_ports)}; known: {', '.join(sorted(known_ns)) or 'none'}", 2)
    options = ServeOptions(host=args.host, ports=dict(args.port), log_level=args.log_level, access_log=args.access_log,
                           grace_period=settings.grace_period, tls=tls, reuse_port=args.workers > 1, docs=not args.no_docs)
    if args.stdio or _stdio_only(plans):
        if args.workers > 1 or args.reload or tls is not None:
            return _refuse(args.files, "--workers, --reload and --ssl-* apply to HTTP listeners, not to MCP over stdio", 2)
        return _run_stdio(plans, args.files)
    return _run_http(plans, options, args, rebuild)


def _tls(args: argparse.Namespace):
    from naftiko_runtime.errors import UsageError
    from naftiko_runtime.tls import Tls, TlsFiles

    if args.ssl_certfile is None:
        if args.ssl_keyfile or args.ssl_ca_certs:
            raise UsageError("--ssl-keyfile and --ssl-ca-certs need --ssl-certfile")
        return None
    return Tls(TlsFiles(args.ssl_certfile, args.ssl_keyfile, args.ssl_ca_certs))


def _stdio_only(plans) -> bool:
    """A file whose one served exposure is `transport: stdio` MCP runs on stdio without --stdio."""
    return len(plans) == 1 and not plans[0].rest and len(plans[0].mcp) == 1 and plans[0].mcp[0].exposure.transport == "stdio"


def _run_stdio(plans, paths: list[str]) -> int:
    stdio = [api for plan in plans for api in plan.mcp]
    if len(stdio) != 1:
        return _refuse(paths, f"--stdio needs exactly one MCP exposure; {'these files have' if len(plans) > 1 else 'this file has'} {len(stdio)}", 2)
    from naftiko_runtime.exposes.mcp import serve_stdio
    from naftiko_runtime.observability import Observability
    from naftiko_runtime.runtime import Runtime

    plan = next(plan for plan in plans if plan.mcp)
    observability = Observability.for_plans(plans)  # traces to an OTLP endpoint; no control port on stdio
    try:
        return _run_loop(serve_stdio(Runtime(plan, observability=observability), stdio[0]))
    finally:
        if observability is not None:
            observability.shutdown()


def _run_http(plans, options, args: argparse.Namespace, rebuild) -> int:
    from naftiko_runtime.observability import Observability
    from naftiko_runtime.reload import Watcher
    from naftiko_runtime.server import Server, layout

    listeners, problems = layout(plans, options)
    for problem in problems:
        _print(f"naftiko: {problem}")
    if problems:
        return _refuse(args.files, f"{len(problems)} problem(s); nothing is served.")
    for plan in plans:
        for api in plan.mcp:
            if api.exposure.transport == "stdio":
                _print(f"naftiko: MCP exposure '{api.exposure.namespace}' uses stdio; run `naftiko run {plan.cap.file} --stdio` to serve it")
    if not listeners:
        return _refuse(args.files, "nothing to serve over HTTP")
    suffix = " [mock upstream: in-process fake, no network]" if args.mock else ""

    def announce(listener) -> None:
        if listener.kind == "rest":
            pages = f"OpenAPI at {listener.url}/openapi.json" + (f", docs at {listener.url}/docs" if options.docs else "")
            _print(f"naftiko: REST '{listener.namespace}' on {listener.url} ({listener.routes} routes; {pages}){suffix}")
        elif listener.kind == "skill":
            _print(f"naftiko: skills '{listener.namespace}' on {listener.url}/skills")
        elif listener.kind == "control":
            _print(f"naftiko: control port on {listener.url} (/health/ready, /metrics, /traces)")
        else:
            _print(f"naftiko: MCP '{listener.namespace}' on {listener.url}/mcp (streamable HTTP){suffix}")

    watch = None
    if args.reload:
        watch = Watcher(args.files, options.tls.files.paths if options.tls else ())
        watch.update(plans)
    try:
        if args.workers > 1:
            return _supervise(args.workers, plans, listeners, options, rebuild, watch, announce, args.mock)
        return _serve(Server(options, announce, rebuild=rebuild, watch=watch, observability=Observability.for_plans(plans)), plans, listeners)
    except OSError as exc:
        return _refuse(args.files, str(exc))


def _serve(server, plans, listeners) -> int:
    """Run one server; spans still buffered are exported when it stops."""
    try:
        return _run_loop(server.run(plans, listeners))
    finally:
        if server.observability is not None:
            server.observability.shutdown()


def _supervise(count: int, plans, listeners, options, rebuild, watch, announce, mock: bool) -> int:
    """--workers N: the supervisor forks N workers; each runs a `Server` on its own sockets."""
    from naftiko_runtime.exposes.health import Lifecycle
    from naftiko_runtime.logs import label_worker
    from naftiko_runtime.observability import Observability
    from naftiko_runtime.observability.series import SharedSeries
    from naftiko_runtime.server import Server
    from naftiko_runtime.workers import Supervisor

    if mock:
        _print(f"naftiko: --mock with {count} workers: each worker has its own fake upstream (what one stores, the others do not see)")
    shared = SharedSeries(count) if Observability.wants_metrics(plans) else None  # every worker's counts, summed by /metrics

    def serve(slot: int, board, plans, listeners) -> int:
        label_worker(slot)  # this worker's log lines say so (the supervisor's name the worker too)
        series = shared.worker(slot, board.serving) if shared is not None else None
        server = Server(options, announce if slot == 0 else (lambda listener: None),
                        lifecycle=Lifecycle(workers=board), rebuild=lambda: rebuild(quiet=True),
                        on_ready=lambda: board.set(slot, True),
                        observability=Observability.for_plans(plans, series), worker=True)  # per worker, after the fork
        return _serve(server, plans, listeners)

    return Supervisor(count, serve, plans, listeners, options, rebuild, watch).run()


def _run_loop(coro) -> int:
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    except KeyboardInterrupt:
        return 0
