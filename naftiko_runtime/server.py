"""Serve the exposures of one or more capabilities from one process, on one event loop.

Each listening port has one uvicorn server for the life of the process (or until a reload removes
its exposure). What it serves is a `Switch`: for each request it reads the current `Version` (the
runtimes and apps built from one load of the files), so a reload swaps versions with one
assignment while every listener stays open. A request keeps the version it started with; the
previous version's upstream connections close once its last request has finished.

Signals are handled here, once for all servers: SIGINT/SIGTERM stop accepting, let in-flight
requests finish (bounded by a grace period), close upstream pools, and return 0; SIGHUP reloads.

The drain is stricter than uvicorn's own (docs/RELIABILITY.md): listeners close at the signal, not
at the next 0.1 s tick, so a new connection is refused rather than accepted and then dropped; the
readiness probe turns 503; responses carry `Connection: close` (exposes/health.py); and idle
keep-alive connections stay open for a short linger, so a request already on its way on one is
answered rather than reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import uvicorn
from starlette.types import ASGIApp

from naftiko_runtime.build import describe
from naftiko_runtime.connections import GRACE_OVER, ConnectionLimits, Switch, default_max_clients, protocol_class, raise_fd_limit
from naftiko_runtime.capability.diagnostics import Pos
from naftiko_runtime.errors import StartupError
from naftiko_runtime.exposes.health import Lifecycle
from naftiko_runtime.plan import ControlApi, McpApi, Plan, RestApi, SkillApi
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.tls import Tls

log = logging.getLogger("naftiko")
MCP_MODULE = "naftiko_runtime.exposes.mcp_http"  # its wire types take ~0.2-0.4 s to import; the SDK is loaded later, when needed
KINDS = {"rest": "REST", "mcp": "MCP", "skill": "skill", "control": "control"}  # how messages name a listener's kind

IDLE_LINGER = 1.0  # seconds an idle keep-alive connection stays open once a stop begins
_TICK = 0.05


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runtime (several share one process)."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases
        return None

    def stop_accepting(self) -> None:
        """Close the listening sockets now: from here on a connect is refused, never half-served."""
        for server in getattr(self, "servers", []):
            server.close()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain: in-flight requests finish within the grace period (the apps' lifespans are the
        versions' business: see `Version.retire`)."""
        self.stop_accepting()
        loop = asyncio.get_running_loop()
        state = self.server_state
        grace = self.config.timeout_graceful_shutdown or 0.0
        start = loop.time()
        while (state.connections or state.tasks) and not self.force_exit and loop.time() - start < grace:
            if loop.time() - start >= min(IDLE_LINGER, grace / 2):
                for connection in list(state.connections):
                    connection.shutdown()  # idle: closed; busy: closed once its response is sent
            await asyncio.sleep(_TICK)
        if state.tasks:
            log.warning("%s: cancelling %d unfinished request(s)", "stopping at once" if self.force_exit else f"grace period of {grace:g}s over",
                        len(state.tasks))
            for connection in list(state.connections):
                connection.answer_stopped()  # 503 where no answer had started (connections.py)
            for task in list(state.tasks):
                task.cancel(msg=GRACE_OVER)
            await asyncio.wait(list(state.tasks), timeout=1)
        for connection in list(state.connections):
            connection.shutdown()


@dataclass
class Listener:
    """One exposure of one plan, served on one port."""

    kind: str  # rest | mcp | skill | control
    namespace: str
    host: str
    port: int
    pos: Pos  # the exposure in its file, for messages
    plan: Plan
    api: RestApi | McpApi | SkillApi | ControlApi
    scheme: str = "http"
    started: bool = False  # serving: what the control port's readiness reports per adapter

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def routes(self) -> int:
        return len(self.api.routes) + len(self.api.forwards) if isinstance(self.api, RestApi) else 0

    @property
    def identity(self) -> tuple[str, str, str]:
        """The same exposure across reloads (a port-0 listener keeps the port it was given)."""
        return (self.plan.cap.file, self.kind, self.namespace)


@dataclass
class ServeOptions:
    host: str | None = None  # None: 127.0.0.1 (the file's `address` is not trusted to open a port wider)
    ports: dict[str, int] = field(default_factory=dict)
    log_level: str = "info"
    grace_period: float = 30.0
    access_log: bool = False
    tls: Tls | None = None
    reuse_port: bool = False  # --workers: every worker binds its own socket to the same ports (SO_REUSEPORT)
    docs: bool = True  # GET /docs on REST exposures (exposes/docs.py); --no-docs turns it off


def layout(plans: list[Plan], options: ServeOptions) -> tuple[list[Listener], list[str]]:
    """Which exposure listens where; returns listeners and problems (port clashes, missing ports)."""
    listeners: list[Listener] = []
    problems: list[str] = []
    host = options.host or "127.0.0.1"
    scheme = "https" if options.tls else "http"
    owners: dict[str, list[Pos]] = {}
    for plan in plans:
        apis: list[tuple[str, RestApi | McpApi | SkillApi]] = [("rest", a) for a in plan.rest]
        apis += [("mcp", a) for a in plan.mcp if a.exposure.transport != "stdio"]
        apis += [("skill", a) for a in plan.skills]
        for kind, api in apis:
            exposure = api.exposure
            ns = exposure.namespace
            owners.setdefault(ns, []).append(exposure.pos)
            port = options.ports.get(ns, exposure.port or 0)
            if not port and ns not in options.ports:
                problems.append(f"{exposure.pos}: {KINDS[kind]} exposure '{ns}' has no port; pass --port {ns}=PORT")
                continue
            listeners.append(Listener(kind, ns, host, port, exposure.pos, plan, api, scheme))
    controls = [(plan, plan.control) for plan in plans if plan.control is not None]
    for plan, control in controls[1:]:
        problems.append(f"{control.exposure.pos}: a second control exposure (the first is at {controls[0][1].exposure.pos}); "
                        "one control port serves the process")
    if controls:
        plan, control = controls[0]
        if control.exposure.port is None:
            problems.append(f"{control.exposure.pos}: the control exposure has no port; pass --control-port PORT")
        else:
            listeners.insert(0, Listener("control", control.exposure.namespace, host, control.exposure.port, control.exposure.pos,
                                         plan, control, scheme))
    for ns in options.ports:
        if len(owners.get(ns, [])) > 1:
            problems.append(f"--port {ns}=...: exposure namespace '{ns}' is declared at {' and at '.join(str(p) for p in owners[ns])}; rename one to tell them apart")
    seen: dict[int, Listener] = {}
    for listener in listeners:
        other = seen.get(listener.port)
        if listener.port and other is not None:
            problems.append(f"{listener.pos}: {KINDS[listener.kind]} exposure '{listener.namespace}' and {other.pos}: "
                            f"{KINDS[other.kind]} exposure '{other.namespace}' both use port {listener.port}; "
                            f"change one `port:` or pass {'--control-port PORT' if listener.kind == 'control' else f'--port {listener.namespace}=PORT'}")
        seen.setdefault(listener.port, listener)
    return listeners, problems


def relayout(plans: list[Plan], options: ServeOptions, current: list[Listener]) -> tuple[list[Listener], list[str]]:
    """`layout` for a reload: an exposure on port 0 keeps the port it was given; with --workers a
    new one is refused (each worker would pick a different port)."""
    listeners, problems = layout(plans, options)
    known = {lst.identity: lst.port for lst in current}
    for listener in listeners:
        if listener.port == 0 and listener.identity in known:
            listener.port = known[listener.identity]
    problems += [f"{lst.pos}: exposure '{lst.namespace}' has port 0; with --workers every new port must be fixed"
                 for lst in listeners if lst.port == 0 and options.reuse_port]
    return listeners, problems


def bind(listener: Listener, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket for `listener` (port 0: a free port, written back into the listener).

    `listen=False` only reserves the port: the workers' supervisor holds such a socket so that no
    other program takes the port, while the kernel hands connections only to listening sockets."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((listener.host, listener.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {listener.host}:{listener.port} for '{listener.namespace}': {exc.strerror}; pass --port {listener.namespace}=PORT") from None
    if listen:
        sock.listen(2048)
    sock.setblocking(False)
    if listener.port == 0:
        listener.port = sock.getsockname()[1]
    return sock


class Version:
    """What one load of the capability files serves: a runtime per plan, an app per listener.

    `active` counts the requests running on this version (moved by `Switch`); `retire` waits for it
    to reach zero before ending the apps' lifespans and closing the upstream connections.
    """

    def __init__(self, plans: list[Plan], listeners: list[Listener], lifecycle: Lifecycle, previous: "Version | None" = None,
                 observability: Any = None, docs: bool = True):
        self.docs = docs
        before = {rt.plan.cap.file: rt for rt in previous.runtimes.values()} if previous else {}
        self.runtimes = {id(plan): Runtime(plan, lifecycle, before.get(plan.cap.file), observability) for plan in plans}
        self.observability = observability  # the process's (observability/), shared by every version
        self.listeners = listeners
        self.apps: dict[int, ASGIApp] = {}  # port -> app
        self.active = 0
        self._idle: asyncio.Event | None = None
        self._lifespans: list[_Lifespan] = []

    def build(self, listeners: list[Listener]) -> None:
        """Build the apps of `listeners` (MCP ones need MCP_MODULE imported first)."""
        for listener in listeners:
            runtime = self.runtimes[id(listener.plan)]
            if listener.kind == "rest":
                from naftiko_runtime.exposes.rest import build_app

                self.apps[listener.port] = build_app(runtime, listener.api, listener.host, self.docs)  # type: ignore[arg-type]
            elif listener.kind == "skill":
                from naftiko_runtime.exposes.skill import build_app as build_skill

                self.apps[listener.port] = build_skill(runtime, listener.api, listener.host)  # type: ignore[arg-type]
            elif listener.kind == "control":
                from naftiko_runtime.exposes.control import build_app as build_control

                self.apps[listener.port] = build_control(runtime, listener.api, self.listeners, listener.host)  # type: ignore[arg-type]
                continue
            else:
                mcp = importlib.import_module(MCP_MODULE)
                self.apps[listener.port] = mcp.build_app(runtime, listener.api, listener.host)
            if self.observability is not None:  # metrics and traces per request (none for the control port itself)
                self.apps[listener.port] = self.observability.wrap_app(self.apps[listener.port], listener.kind, listener.namespace)

    async def start(self, listeners: list[Listener]) -> None:
        """Run the startup of each app's lifespan (the MCP session manager lives in it)."""
        for listener in listeners:
            lifespan = _Lifespan(self.apps[listener.port])
            await lifespan.startup()
            self._lifespans.append(lifespan)

    def leave(self) -> None:
        self.active -= 1
        if not self.active and self._idle is not None:
            self._idle.set()

    async def retire(self, grace: float) -> None:
        """Once the requests that started on this version are done (or after `grace`), end it."""
        if self.active:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("%d request(s) still running on the previous version after %gs; closing its upstream connections",
                            self.active, grace)
        for lifespan in reversed(self._lifespans):
            await lifespan.shutdown()
        for runtime in self.runtimes.values():
            await runtime.close()


class _Lifespan:
    """Runs an app's ASGI lifespan outside uvicorn, so a reloaded version's apps start and stop
    while the listener (whose uvicorn server started long before) stays up."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self._reply()
        if message is not None and message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"an app failed to start: {message.get('message') or 'no reason given'}")

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self._reply()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5)

    async def _reply(self) -> dict[str, Any] | None:
        """The app's answer; None when it does not do lifespans (it returned or raised instead)."""
        assert self.task is not None
        answer = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({answer, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            return answer.result()
        answer.cancel()
        return None


@dataclass
class _Port:
    """One open listener: its socket, its uvicorn server, and the switch it serves."""

    listener: Listener
    sock: socket.socket
    switch: Switch
    server: _Server
    task: asyncio.Task


Rebuild = Callable[[], list[Plan]]  # loads the files again (build.build_plans); raises StartupError


class Server:
    """Every listener of the process, the version they serve, signals, reloads and the drain."""

    def __init__(self, options: ServeOptions, announce: Callable[[Listener], None], *,
                 lifecycle: Lifecycle | None = None, rebuild: Rebuild | None = None,
                 on_ready: Callable[[], None] | None = None, watch: Any = None, observability: Any = None,
                 worker: bool = False):
        self.options = options
        self.worker = worker  # a --workers process: its supervisor relays signals (see `_signals`)
        self.observability = observability  # metrics and traces of this process (None: off)
        self.announce = announce
        self.lifecycle = lifecycle or Lifecycle()
        self.rebuild = rebuild
        self.on_ready = on_ready
        self.watch = watch  # reload.Watcher: with --reload, file changes ask for a reload
        self.ports: dict[int, _Port] = {}
        self.closing: list[asyncio.Task] = []  # servers of removed exposures, draining
        self.retiring: list[asyncio.Task] = []  # versions replaced by a reload, finishing their requests
        self.version: Version | None = None
        self.limits = ConnectionLimits()
        self.stopped = asyncio.Event()
        self.failed = False
        self.stop_count = 0
        self._reloading: asyncio.Task | None = None
        self._again = False

    async def run(self, plans: list[Plan], listeners: list[Listener]) -> int:
        """Serve until a signal; 0 after a graceful stop."""
        # Everything built so far (imported modules, the compiled capability) lives as long as
        # the process: move it out of the collector's sight, so collections triggered by
        # per-request garbage scan kilobytes, not the whole heap (bench/: fewer latency spikes).
        # No full collection first: it costs ~15-30 ms of every start to free a few hundred
        # objects (docs/PERFORMANCE.md), which stay frozen instead.
        gc.freeze()
        sockets = {listener.port: bind(listener, self.options.reuse_port) for listener in listeners}  # all or nothing
        self.limits = connection_limits(plans, len(listeners))
        loop = asyncio.get_running_loop()
        for sig, action in self._signals():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, action, sig)
        self.version = version = Version(plans, listeners, self.lifecycle, observability=self.observability, docs=self.options.docs)
        ready = [lst for lst in listeners if lst.kind != "mcp"]
        deferred = [lst for lst in listeners if lst.kind == "mcp"]
        version.build(ready)
        await version.start(ready)
        await self._open(ready, version, sockets)
        if deferred and not self.stopped.is_set():
            # The MCP app's wire types (mcp_types, pydantic) take ~0.2-0.4 s to import: REST serves
            # meanwhile (its sockets were bound above, so early MCP clients wait in the listen
            # backlog rather than being refused). The SDK itself loads on the first request the
            # fast path does not serve (exposes/mcp_http.py).
            await asyncio.to_thread(importlib.import_module, MCP_MODULE)
            version.build(deferred)
            gc.freeze()
            await version.start(deferred)
            if not self.stopped.is_set():
                await self._open(deferred, version, sockets)
        for sock in sockets.values():
            if not any(port.sock is sock for port in self.ports.values()):
                sock.close()  # a deferred listener a stop overtook was bound but never served
        if self.ports and not self.stopped.is_set():
            self.lifecycle.listening = True
            if self.on_ready is not None:
                self.on_ready()
            if self._again:  # a reload asked for while starting
                self.reload()
        watcher = asyncio.create_task(self.watch.run(self.reload)) if self.watch is not None else None
        await self.stopped.wait()
        if watcher is not None:
            watcher.cancel()
        if self._reloading is not None:
            await asyncio.gather(self._reloading, return_exceptions=True)
        controls = [p for p in self.ports.values() if p.listener.kind == "control"]
        results = await asyncio.gather(*(p.task for p in self.ports.values() if p not in controls), *self.closing, return_exceptions=True)
        for port in controls:  # every other listener has drained: the control port, which reported it, closes last
            port.server.should_exit = True
        results += await asyncio.gather(*(p.task for p in controls), return_exceptions=True)
        await asyncio.gather(*self.retiring, return_exceptions=True)
        if self.version is not None:
            await self.version.retire(0)
        failed = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
        for exc in failed:
            log.error("server failed: %s", exc)
        return 1 if failed or self.failed else 0

    def _signals(self) -> list[tuple[int, Callable[[int], None]]]:
        """SIGTERM and SIGINT drain, a second one stops at once; SIGHUP reloads. A worker leaves
        SIGINT ignored and takes every SIGTERM as the one drain: a Ctrl-C or a SIGTERM sent to the
        whole process group (a terminal, systemd, `timeout`) reaches it directly *and* through the
        supervisor, which counts the signals and sends SIGQUIT for "at once" (workers.py)."""
        if self.worker:
            return [(signal.SIGTERM, self.stop), (signal.SIGQUIT, self.stop), (signal.SIGHUP, self._on_hangup)]
        return [(signal.SIGINT, self.stop), (signal.SIGTERM, self.stop), (signal.SIGHUP, self._on_hangup)]

    def stop(self, signum: int) -> None:
        if self.worker and signum == signal.SIGTERM and self.stop_count:
            return  # the same stop, relayed by the supervisor
        self.stop_count += 1
        now = self.stop_count > 1 or signum == signal.SIGQUIT
        self.lifecycle.draining = True
        for port in self.ports.values():  # from here on answers carry `Connection: close`
            port.server.config.http.drain()
        if now:
            log.info("received %s: stopping at once", signal.Signals(signum).name)
        else:
            log.info("received %s, stopping: no new connections; in-flight requests finish within %gs",
                     signal.Signals(signum).name, self.options.grace_period)
        others = any(p.listener.kind != "control" for p in self.ports.values())
        for port in self.ports.values():
            if port.listener.kind == "control" and others and not now:
                continue  # it keeps reporting DRAINING until the others are done (see `run`)
            port.server.stop_accepting()
            port.server.should_exit = True
            if now:
                port.server.force_exit = True
        self.stopped.set()

    def _on_hangup(self, signum: int) -> None:
        log.info("received SIGHUP: reloading")
        self.reload()

    # ------------------------------------------------------------------ listeners

    async def _open(self, listeners: list[Listener], version: Version, sockets: dict[int, socket.socket]) -> None:
        """Start a uvicorn server per listener on its bound socket; announce each once it serves."""
        opened = []
        for listener in listeners:
            switch = Switch(version.apps[listener.port], version)
            server = _Server(_config(switch, self.options, self.limits))
            task = asyncio.create_task(server._serve(sockets=[sockets[listener.port]]))
            task.add_done_callback(self._server_ended)
            port = _Port(listener, sockets[listener.port], switch, server, task)
            self.ports[listener.port] = port
            opened.append(port)
        while not all(p.server.started for p in opened) and not any(p.task.done() for p in opened):
            await asyncio.sleep(0.01)
        for port in opened:
            if port.server.started:
                port.listener.started = True
                self.announce(port.listener)

    def _server_ended(self, task: asyncio.Task) -> None:
        """A server that ends while nothing asked it to failed: stop the process (exit 1) rather
        than serve only part of what the files declare. A removed listener's server has drained."""
        if any(task is t for t in self.closing):
            self.closing.remove(task)  # nothing of a removed listener outlives its drain
            if not task.cancelled() and task.exception() is not None:
                log.error("a removed listener failed while draining: %s", task.exception())
            return
        if self.stopped.is_set() or task.cancelled():
            return
        exc = task.exception()
        log.error("a listener stopped unexpectedly (%s); stopping", exc or "no error")
        self.failed = True
        self.stop(signal.SIGTERM)

    # ------------------------------------------------------------------ reload

    def reload(self) -> None:
        """Load the files again and swap the new version in; one at a time, the last request wins."""
        if self.rebuild is None or self.stopped.is_set():
            return
        if not self.lifecycle.listening or (self._reloading is not None and not self._reloading.done()):  # after what runs
            self._again = True
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        while True:
            self._again = False
            try:
                await self._swap()
            except Exception as exc:  # the last good version keeps serving, whatever went wrong
                log.error("reload failed: %s; the last good version keeps serving", exc, exc_info=exc)
            if not self._again or self.stopped.is_set():
                return

    async def _swap(self) -> None:
        assert self.rebuild is not None and self.version is not None
        started = time.perf_counter()
        if self.options.tls is not None:
            try:
                self.options.tls.load()
            except StartupError as exc:
                log.error("TLS files not reloaded: %s; the previous certificate stays in use", exc)
        try:
            plans = await asyncio.to_thread(self.rebuild)
        except StartupError as exc:
            for line in describe(exc, "the last good version keeps serving"):
                log.error("%s", line)
            return
        listeners, problems = relayout(plans, self.options, [p.listener for p in self.ports.values()])
        if problems:
            for problem in problems:
                log.error("%s", problem)
            log.error("reload refused; the last good version keeps serving")
            return
        old = self.version
        version = Version(plans, listeners, self.lifecycle, old, self.observability, docs=self.options.docs)
        if any(lst.kind == "mcp" for lst in listeners):
            await asyncio.to_thread(importlib.import_module, MCP_MODULE)
        await asyncio.to_thread(version.build, listeners)
        added = [lst for lst in listeners if lst.port not in self.ports]
        try:
            sockets = {lst.port: bind(lst, self.options.reuse_port) for lst in added}
        except OSError as exc:
            log.error("reload refused: %s; the last good version keeps serving", exc)
            await version.retire(0)
            return
        await version.start(listeners)
        if self.stopped.is_set():
            for sock in sockets.values():
                sock.close()
            await version.retire(0)
            return
        self.version = version
        for listener in listeners:  # the swap: from here on every new request gets the new version
            port = self.ports.get(listener.port)
            if port is not None:
                port.switch.target = (version.apps[listener.port], version)
                port.listener = listener
                listener.started = True
        wanted = {lst.port for lst in listeners}
        for number in [n for n in self.ports if n not in wanted]:
            port = self.ports.pop(number)
            log.info("%s '%s' on %s removed: its listener drains and closes", port.listener.kind.upper(), port.listener.namespace, port.listener.url)
            self.closing.append(port.task)
            port.server.should_exit = True
        await self._open(added, version, sockets)
        # No gc.freeze() here: a version frozen now could never have its reference cycles collected
        # once replaced (measured: +200 kB per reload of the seed file, +61 MB after 300 reloads;
        # unfrozen, RSS stays flat). Only what startup built is frozen.
        self.retiring.append(asyncio.create_task(old.retire(self.options.grace_period)))
        self.retiring = [t for t in self.retiring if not t.done()]
        if self.watch is not None:
            self.watch.update(plans)
        log.info("reloaded: %d capabilit%s, %d listener(s) in %.0f ms", len(plans), "y" if len(plans) == 1 else "ies", len(listeners),
                 (time.perf_counter() - started) * 1000)


def connection_limits(plans: list[Plan], listeners: int) -> ConnectionLimits:
    """Client connection limits per listener; `--max-clients` defaults to what the open-file limit
    (raised to its hard maximum first) leaves after the upstream pools."""
    s = plans[0].settings  # the command line's: the same in every plan
    fd_limit = raise_fd_limit()
    max_clients = s.max_clients
    if max_clients is None:
        slots = sum(u.settings.max_connections for plan in plans for u in plan.upstreams.values())
        max_clients = default_max_clients(fd_limit, listeners, slots)
    return ConnectionLimits(header_timeout=s.header_timeout, body_idle_timeout=s.body_idle_timeout,
                            body_timeout=s.body_timeout, max_head_bytes=s.max_head_bytes, max_clients=max_clients)


def _config(app: ASGIApp, options: ServeOptions, limits: ConnectionLimits) -> uvicorn.Config:
    """The one uvicorn configuration every listener uses."""
    tls = options.tls
    config = uvicorn.Config(
        app, log_level="debug" if options.log_level == "debug" else "warning",  # its startup chatter only in debug
        access_log=options.access_log,
        lifespan="off",  # apps' lifespans belong to their version (Version.start/retire), not to the listener
        timeout_graceful_shutdown=options.grace_period, log_config=None,  # type: ignore[arg-type]
        server_header=False, date_header=True, timeout_keep_alive=30,
        proxy_headers=False,  # X-Forwarded-* are not trusted by default: no middleware on every request
        interface="asgi3",  # a `Switch`, run by connections.run_request
        http=protocol_class(limits), ws="none",  # head/body/connection limits, WebSocket refused (connections.py)
        ssl_context_factory=(lambda config, default: tls.context) if tls is not None else None,
    )
    if options.access_log:  # uvicorn set its access logger to the level above; its lines are INFO
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return config
