"""Real servers for the test suite, on real loopback sockets.

Everything here starts an actual process or an actual listening socket; nothing is mocked
in-process.  The pieces:

* ``free_port``, ``wait_tcp``, ``wait_http`` -- small polling helpers.
* ``http_request`` -- one plain HTTP request (http.client: exact request-target, no proxy,
  no redirects) returning ``HttpResponse(status, headers, body)`` with ``.text``/``.json()``.
* ``Proc`` -- a server subprocess whose stdout/stderr go to temp files (pipes never fill);
  a context manager that always stops the process on exit.
* ``start_server`` / ``naftiko`` -- start a process and wait until its ports accept TCP.
* ``prism`` -- the Stoplight Prism contract mock (tests/node) on a copy of an OpenAPI file.
* ``echo_upstream`` / ``EchoUpstream`` -- an aiohttp server in a thread that answers every
  method and path with a JSON description of the request it received (scriptable).
* ``RoutesUpstream`` -- the same server answering fixed JSON (or a handler of yours) per route.
* ``serve_asgi`` -- run an ASGI app (e.g. a bare MCP server) with uvicorn in a thread.
* ``mcp_interop`` -- run tests/node/mcp-interop.mjs (TypeScript MCP SDK client) against a URL.

See tests/support/PRISM-NOTES.md for what Prism answers to invalid requests.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import pytest

# --------------------------------------------------------------------------------------
# Paths (computed from this file, never hard-coded)
# --------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
FIXTURES_DIR = TESTS_DIR / "fixtures"
NODE_DIR = TESTS_DIR / "node"
NODE_BIN_DIR = NODE_DIR / "node_modules" / ".bin"
PRISM_BIN = NODE_BIN_DIR / "prism"
MCP_INTEROP_SCRIPT = NODE_DIR / "mcp-interop.mjs"
MCP_TS_SDK_DIR = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk"
VAPI_SLIM_OPENAPI = FIXTURES_DIR / "vapi-sessions-openapi.slim.yml"

NODE_INSTALL_HINT = "npm ci --prefix tests/node  (or: npm install --prefix tests/node)"

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A server process did not come up (exited early or never listened)."""


def in_ci() -> bool:
    """True when env CI is set to a truthy value (GitHub Actions etc. set CI=true)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_node_tool(path: Path, what: str) -> None:
    """Make sure a tool from tests/node is installed.

    Missing tool: in CI raise (e2e tests must never silently skip there); locally skip the
    test with the install command.
    """
    problems = []
    if not Path(path).exists():
        problems.append(f"{path} does not exist")
    if shutil.which("node") is None:
        problems.append("`node` is not on PATH")
    if not problems:
        return
    msg = f"{what} is not available ({'; '.join(problems)}). Install with: {NODE_INSTALL_HINT}"
    if in_ci():
        raise RuntimeError(msg + "  [CI=true: refusing to skip e2e tests]")
    pytest.skip(msg)


# --------------------------------------------------------------------------------------
# Polling helpers
# --------------------------------------------------------------------------------------


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close), and not
    handed out before in this process: the kernel may give a just-closed port again, and two
    listeners of one test given the same port fail to start."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _proc_diag(proc: "Proc | None", stderr: str | None = None) -> str:
    parts = []
    if proc is not None:
        parts.append(proc.describe())
    if stderr:
        parts.append(f"--- stderr ---\n{_tail(stderr)}")
    return ("\n" + "\n".join(parts)) if parts else ""


def _tail(text: str, limit: int = 8000) -> str:
    return text if len(text) <= limit else "...[truncated]...\n" + text[-limit:]


def wait_tcp(
    port: int,
    host: str = LOOPBACK,
    timeout: float = 20.0,
    proc: "Proc | None" = None,
) -> None:
    """Poll until host:port accepts a TCP connection.

    If ``proc`` is given and exits first, raise ServerStartError with its stderr at once.
    """
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(
                f"process exited (rc={proc.returncode}) before {host}:{port} accepted connections"
                + _proc_diag(proc)
            )
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as e:
            last_err = e
        if time.monotonic() >= deadline:
            raise ServerStartError(
                f"{host}:{port} did not accept TCP connections within {timeout}s "
                f"(last error: {last_err!r})" + _proc_diag(proc)
            )
        time.sleep(0.05)


def wait_http(
    url: str,
    timeout: float = 20.0,
    ok: Callable[[int], bool] = lambda status: True,
    *,
    proc: "Proc | None" = None,
    stderr: str | Callable[[], str] | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> int:
    """Poll ``url`` until the server answers with a status for which ``ok(status)`` holds.

    Any HTTP answer counts (404, 401, ...) unless ``ok`` says otherwise.  Redirects are not
    followed and proxy env vars are ignored (plain http.client).  Returns the status.
    On timeout raise ServerStartError including the captured stderr of ``proc`` (or the
    ``stderr`` text / callable).  If ``proc`` exits, fail at once.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", ""):
        raise ValueError(f"wait_http supports http:// only, got {url!r}")
    host = parts.hostname or LOOPBACK
    port = parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(
                f"process exited (rc={proc.returncode}) while waiting for {url}" + _proc_diag(proc)
            )
        conn = http.client.HTTPConnection(host, port, timeout=2.0)
        try:
            conn.request(method, target, headers=dict(headers or {}))
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if ok(status):
                return status
            last = f"HTTP {status} (predicate not satisfied)"
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        finally:
            conn.close()
        if time.monotonic() >= deadline:
            err_text = stderr() if callable(stderr) else stderr
            raise ServerStartError(
                f"{method} {url} did not get an acceptable answer within {timeout}s "
                f"(last: {last})" + _proc_diag(proc, err_text)
            )
        time.sleep(0.1)


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    json_body: Any = None,
    timeout: float = 10.0,
) -> HttpResponse:
    """One plain HTTP/1.1 request with http.client: no redirects, no proxy env, and the
    path + query of ``url`` are sent exactly as written (no re-encoding)."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    hdrs = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body)
        if not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(parts.hostname or LOOPBACK, parts.port or 80, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        resp_headers: dict[str, str] = {}
        for k, v in resp.getheaders():
            lk = k.lower()
            resp_headers[lk] = f"{resp_headers[lk]}, {v}" if lk in resp_headers else v
        return HttpResponse(resp.status, resp_headers, data)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# Subprocess wrapper
# --------------------------------------------------------------------------------------


class Proc:
    """A server subprocess.

    stdout/stderr are written to temp files so pipes can never fill and block the server.
    The process gets its own session / process group (so a Ctrl-C on pytest does not hit
    it twice, and its leftover children can be killed with the group).

    Use as a context manager: the process is always stopped on exit.
    """

    def __init__(
        self,
        cmd: Sequence[str | os.PathLike],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        name: str | None = None,
    ) -> None:
        self.cmd = [os.fspath(c) for c in cmd]
        self.name = name or Path(self.cmd[0]).name
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self._dir = tempfile.mkdtemp(prefix=f"proc-{self.name}-")
        self._out_path = os.path.join(self._dir, "stdout.log")
        self._err_path = os.path.join(self._dir, "stderr.log")
        self._out = open(self._out_path, "wb")
        self._err = open(self._err_path, "wb")
        self._final: tuple[str, str] | None = None
        self._cleanups: list[Callable[[], Any]] = []
        self._stopped = False
        try:
            self.popen = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=self._err,
                env=dict(env) if env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        except BaseException:
            self._out.close()
            self._err.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    # -- info ------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def _read(self, path: str) -> str:
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        """Everything the process wrote to stdout so far (also works after stop())."""
        if self._final is not None:
            return self._final[0]
        return self._read(self._out_path)

    def stderr_text(self) -> str:
        """Everything the process wrote to stderr so far (also works after stop())."""
        if self._final is not None:
            return self._final[1]
        return self._read(self._err_path)

    def describe(self) -> str:
        rc = self.poll()
        state = "running" if rc is None else f"exited rc={rc}"
        out = self.stdout_text()
        err = self.stderr_text()
        text = f"[{self.name}] pid={self.pid} {state}\n  cmd: {' '.join(self.cmd)}"
        if err.strip():
            text += f"\n--- {self.name} stderr ---\n{_tail(err)}"
        if out.strip():
            text += f"\n--- {self.name} stdout ---\n{_tail(out, 3000)}"
        return text

    def add_cleanup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` once after the process is stopped (e.g. remove a temp dir)."""
        self._cleanups.append(fn)

    # -- lifecycle -------------------------------------------------------------------
    def _killpg(self, sig: int) -> None:
        # The group id is our child's pid (start_new_session=True): only processes we started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` to the process, wait up to ``timeout`` s, then SIGKILL. Returns rc.

        Idempotent.  Leftover children in the process's own group are killed too.
        """
        if not self._stopped:
            try:
                if self.popen.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        self.popen.send_signal(sig)
                    try:
                        self.popen.wait(timeout)
                    except subprocess.TimeoutExpired:
                        self._killpg(signal.SIGKILL)
                        self.popen.kill()
                        self.popen.wait(10)
                self._killpg(signal.SIGKILL)  # orphans of the group, if any
            finally:
                self._stopped = True
                self._out.close()
                self._err.close()
                self._final = (self._read(self._out_path), self._read(self._err_path))
                shutil.rmtree(self._dir, ignore_errors=True)
                cleanups, self._cleanups = self._cleanups, []
                for fn in reversed(cleanups):
                    with contextlib.suppress(Exception):
                        fn()
        assert self.popen.returncode is not None
        return self.popen.returncode

    def __enter__(self) -> "Proc":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.poll()}>"


def _merged_env(env: Mapping[str, str | None] | None) -> dict[str, str]:
    """os.environ + env; a value of None removes the variable."""
    merged = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = str(v)
    return merged


def start_server(
    cmd: Sequence[str | os.PathLike],
    ports_to_wait: Iterable[int] = (),
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike | None = None,
    *,
    timeout: float = 30.0,
    name: str | None = None,
    host: str = LOOPBACK,
) -> Proc:
    """Start ``cmd`` (env = os.environ + env) and wait until each port accepts TCP.

    Raises ServerStartError with the process's stderr if it exits early or a port never
    opens (the process is stopped first).  The returned Proc is a context manager.
    """
    proc = Proc(cmd, env=_merged_env(env), cwd=cwd, name=name)
    try:
        deadline = time.monotonic() + timeout
        for port in ports_to_wait:
            wait_tcp(port, host=host, timeout=max(0.1, deadline - time.monotonic()), proc=proc)
    except BaseException:
        proc.stop(timeout=3)
        raise
    return proc


def naftiko(
    args: Sequence[str | os.PathLike],
    env: Mapping[str, str | None] | None = None,
    ports_to_wait: Iterable[int] = (),
    *,
    timeout: float = 30.0,
    cwd: str | os.PathLike | None = None,
) -> Proc:
    """Start ``python -m naftiko_runtime *args`` from the repo root and wait for its ports.

    ``env`` is added to os.environ (None removes a variable); PYTHONUNBUFFERED=1 by default
    so logs reach stderr_text() promptly.  If ``cwd`` is not the repo root, the repo root is
    put on PYTHONPATH so the package is still importable.
    """
    extra: dict[str, str | None] = {"PYTHONUNBUFFERED": "1"}
    run_dir = Path(cwd) if cwd is not None else REPO_ROOT
    if run_dir.resolve() != REPO_ROOT:
        pp = os.environ.get("PYTHONPATH")
        extra["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([pp] if pp else []))
    extra.update(env or {})
    return start_server(
        [sys.executable, "-m", "naftiko_runtime", *[os.fspath(a) for a in args]],
        ports_to_wait=ports_to_wait,
        env=extra,
        cwd=run_dir,
        timeout=timeout,
        name="naftiko",
    )


# --------------------------------------------------------------------------------------
# Prism
# --------------------------------------------------------------------------------------


def prism(
    openapi_path: str | os.PathLike,
    *,
    port: int | None = None,
    errors: bool = True,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> tuple[Proc, str]:
    """Start ``prism mock`` on a copy of ``openapi_path``; return (Proc, base_url).

    Prism validates requests (security, params, body) and answers 401/422/404/405/415 without
    any flag; ``--errors`` (default here) additionally turns *response* violations of its own
    mock into errors, i.e. the strictest mode.  See PRISM-NOTES.md.

    Missing prism: raise when CI=true, else pytest.skip with the install command.
    """
    require_node_tool(PRISM_BIN, "Prism (@stoplight/prism-cli)")
    src = Path(openapi_path)
    tmpdir = tempfile.mkdtemp(prefix="prism-spec-")
    spec = Path(tmpdir) / src.name
    shutil.copyfile(src, spec)
    attempts = 1 if port is not None else 3
    last_err: Exception | None = None
    for _ in range(attempts):
        p = port if port is not None else free_port()
        cmd = [str(PRISM_BIN), "mock", "-h", LOOPBACK, "-p", str(p)]
        if errors:
            cmd.append("--errors")
        cmd += [*extra_args, str(spec)]
        proc = Proc(cmd, env=_merged_env({"NO_COLOR": "1", "FORCE_COLOR": "0"}), name="prism")
        base_url = f"http://{LOOPBACK}:{p}"
        try:
            # Any answer means it is listening (an unknown path gets a 404 problem+json).
            wait_http(base_url + "/__prism_ready_probe__", timeout=timeout, proc=proc)
        except ServerStartError as e:
            proc.stop(timeout=3)
            last_err = e
            if "EADDRINUSE" in proc.stderr_text() + proc.stdout_text():
                continue  # lost the free-port race; try another port
            break
        proc.add_cleanup(lambda: shutil.rmtree(tmpdir, ignore_errors=True))
        return proc, base_url
    shutil.rmtree(tmpdir, ignore_errors=True)
    assert last_err is not None
    raise last_err


# --------------------------------------------------------------------------------------
# Echo upstream
# --------------------------------------------------------------------------------------


class _Echo:
    """Sentinel: answer with the echo record as JSON."""

    def __repr__(self) -> str:
        return "ECHO"


ECHO = _Echo()


@dataclass
class ScriptedResponse:
    status: int = 200
    body: Any = ECHO
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int | None = 1  # None: every following request


class EchoUpstream:
    """An HTTP server on a real loopback socket that echoes every request as JSON.

    It answers EVERY method and path with 200 and
    ``{"method", "raw_path", "path", "query", "headers", "cookies", "body", "json", ...}``:

    * ``raw_path``: the request-target exactly as received (no decoding, with query string)
    * ``path``: percent-decoded path; ``query``: list of [k, v] (form-decoded, blanks kept)
    * ``headers``: dict with lower-cased names (duplicates joined with ", ");
      ``headers_list``: the raw [name, value] pairs in order
    * ``body``: body as text (utf-8, invalid bytes replaced); ``json``: parsed body or None

    Every record is appended to ``received`` before the answer is sent.  Use
    ``respond_with`` to script the next answer(s).  Runs aiohttp on its own event loop in a
    daemon thread, so concurrent requests (and delayed answers) are served in parallel.

    Context manager; also unpacks as ``(base_url, received)``.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.host = host
        self._want_port = port
        self.port: int = 0
        self.received: list[dict[str, Any]] = []
        self._script: collections.deque[ScriptedResponse] = collections.deque()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._cond = threading.Condition()

    # -- public API ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    url = base_url

    def respond_with(
        self,
        status: int,
        body: Any = ECHO,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int | None = 1,
    ) -> "EchoUpstream":
        """Script the answer for the next ``times`` requests (None: all following ones).

        Calls queue up in order.  ``body``: ECHO (default: the echo record as JSON),
        dict/list/number/None -> JSON, str -> text/plain, bytes -> raw.  ``headers`` are
        added/override (e.g. a Content-Type).  ``delay`` seconds before answering.
        """
        with self._lock:
            self._script.append(
                ScriptedResponse(status, body, dict(headers or {}), float(delay), times)
            )
        return self

    def reset(self) -> None:
        """Forget received requests and scripted answers."""
        with self._lock:
            self._script.clear()
        self.received.clear()

    @property
    def last(self) -> dict[str, Any]:
        if not self.received:
            raise AssertionError("the echo upstream has not received any request")
        return self.received[-1]

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` requests were received; return ``received``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"echo upstream got {len(self.received)} request(s), expected {count}"
                    )
                self._cond.wait(left)
        return self.received

    def __iter__(self) -> Iterator[Any]:
        return iter((self.base_url, self.received))

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> "EchoUpstream":
        self._thread = threading.Thread(target=self._thread_main, name="echo-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise ServerStartError("echo upstream did not start within 15s")
        if self._start_error is not None:
            raise ServerStartError(f"echo upstream failed to start: {self._start_error!r}")
        return self

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)

    def __enter__(self) -> "EchoUpstream":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------
    def _next_script(self) -> ScriptedResponse | None:
        with self._lock:
            if not self._script:
                return None
            spec = self._script[0]
            if spec.times is not None:
                spec.times -= 1
                if spec.times <= 0:
                    self._script.popleft()
            return spec

    def _thread_main(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def start() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self._want_port)
            await site.start()
            self._runner = runner
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        try:
            loop.run_until_complete(start())
        except BaseException as e:  # noqa: BLE001 - reported to the starting thread
            self._start_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        raw_body = await request.read()
        text = raw_body.decode("utf-8", errors="replace")
        parsed: Any = None
        if raw_body:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        raw_path: str = request.raw_path
        query_string = raw_path.split("?", 1)[1] if "?" in raw_path else ""
        headers: dict[str, str] = {}
        headers_list: list[list[str]] = []
        for k, v in request.headers.items():
            lk = k.lower()
            headers_list.append([k, v])
            headers[lk] = f"{headers[lk]}, {v}" if lk in headers else v
        record: dict[str, Any] = {
            "method": request.method,
            "raw_path": raw_path,
            "path": request.path,
            "query": [list(p) for p in urllib.parse.parse_qsl(query_string, keep_blank_values=True)],
            "query_string": query_string,
            "headers": headers,
            "headers_list": headers_list,
            "cookies": dict(request.cookies),
            "body": text,
            "body_base64": base64.b64encode(raw_body).decode(),  # the exact bytes, for binary bodies
            "json": parsed,
            "http_version": f"{request.version.major}.{request.version.minor}",
        }
        with self._cond:
            self.received.append(record)
            self._cond.notify_all()

        spec = self._next_script() or ScriptedResponse()
        if spec.delay:
            await asyncio.sleep(spec.delay)
        body = spec.body
        content_type = "application/json"
        if body is ECHO:
            payload = json.dumps(record).encode()
        elif isinstance(body, bytes):
            payload, content_type = body, "application/octet-stream"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body).encode()
        out_headers = {"Content-Type": content_type}
        for k, v in spec.headers.items():
            for existing in [h for h in out_headers if h.lower() == k.lower()]:
                del out_headers[existing]
            out_headers[k] = v
        return web.Response(status=spec.status, body=payload, headers=out_headers)


class RoutesUpstream(EchoUpstream):
    """A fake upstream on a real loopback socket: fixed JSON answers by (method, path), each after
    ``delay`` seconds; any other request is echoed (EchoUpstream).

    A route may also be an aiohttp handler ``async (request) -> response`` (to stream, to stall).
    Every request is recorded in ``received`` with ``started`` (and, for fixed answers, ``ended``)
    times from ``time.monotonic()``, so a test can see which requests overlapped.
    """

    def __init__(self, routes: Mapping[tuple[str, str], Any], delay: float = 0.0, host: str = LOOPBACK) -> None:
        super().__init__(host)
        self.routes = dict(routes)
        self.delay = delay

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        route = self.routes.get((request.method, request.path))
        if route is None:
            return await super()._handle(request)
        record: dict[str, Any] = {"method": request.method, "path": request.path, "raw_path": request.raw_path,
                                  "headers": {k.lower(): v for k, v in request.headers.items()}, "started": time.monotonic()}
        with self._cond:
            self.received.append(record)
            self._cond.notify_all()
        if callable(route):
            return await route(request)
        await asyncio.sleep(self.delay)
        record["ended"] = time.monotonic()
        status, body = route
        return web.json_response(body, status=status)


@contextlib.contextmanager
def echo_upstream(host: str = LOOPBACK, port: int = 0) -> Iterator[EchoUpstream]:
    """Run an EchoUpstream; yields it (unpackable as ``(base_url, received)``)."""
    with EchoUpstream(host, port) as echo:
        yield echo


# --------------------------------------------------------------------------------------
# ASGI apps in a thread (e.g. a bare MCP server for interop tests)
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_asgi(app: Any, host: str = LOOPBACK, port: int | None = None, timeout: float = 15.0) -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn (lifespan on) in a daemon thread; yield its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-asgi", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise ServerStartError(f"uvicorn exited before serving on {host}:{port}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise ServerStartError(f"uvicorn did not start on {host}:{port} within {timeout}s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# --------------------------------------------------------------------------------------
# TypeScript MCP SDK client
# --------------------------------------------------------------------------------------


def mcp_interop(
    url: str,
    tool: str | None,
    arguments: Mapping[str, Any] | None = None,
    *,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Run tests/node/mcp-interop.mjs: list tools (and call ``tool`` unless None) via the
    TypeScript MCP SDK over Streamable HTTP.  Returns ``{"tools": [...], "result": ...}``.

    Raises AssertionError with the script's stderr if it fails.
    """
    require_node_tool(MCP_TS_SDK_DIR, "The TypeScript MCP SDK (@modelcontextprotocol/sdk)")
    cmd = ["node", str(MCP_INTEROP_SCRIPT), url, tool if tool is not None else "-", json.dumps(dict(arguments or {}))]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=NODE_DIR, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise AssertionError(
            f"mcp-interop.mjs failed (rc={cp.returncode})\n--- stderr ---\n{cp.stderr}\n--- stdout ---\n{cp.stdout}"
        )
    lines = [ln for ln in cp.stdout.splitlines() if ln.strip()]
    if not lines:
        raise AssertionError(f"mcp-interop.mjs printed nothing\n--- stderr ---\n{cp.stderr}")
    return json.loads(lines[-1])
