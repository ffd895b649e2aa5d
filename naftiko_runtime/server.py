"""Serve every exposure of a capability from one process, on one event loop (uvicorn servers).

Each REST (and MCP) exposure gets its own uvicorn server on its own port. Signals are handled
here, once for all servers: SIGINT/SIGTERM stop accepting, let in-flight requests finish (bounded by
a grace period), close upstream pools, and return 0.

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
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import uvicorn

from naftiko_runtime.connections import ConnectionLimits, default_max_clients, protocol_class, raise_fd_limit
from naftiko_runtime.runtime import Runtime

log = logging.getLogger("naftiko")
MCP_MODULE = "naftiko_runtime.exposes.mcp"

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
        """Drain: in-flight requests finish within the grace period, then the app's lifespan ends."""
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
            log.warning("grace period of %gs over: cancelling %d unfinished request(s)", grace, len(state.tasks))
            for task in list(state.tasks):
                task.cancel(msg="grace period over")
            await asyncio.wait(list(state.tasks), timeout=1)  # they answer 503 (exposes/health.py)
        for connection in list(state.connections):
            connection.shutdown()
        if not self.force_exit:
            await self.lifespan.shutdown()


@dataclass
class Listener:
    kind: str  # rest | mcp | skill | control
    namespace: str
    host: str
    port: int
    app: Any
    paths: list[str] = field(default_factory=list)
    factory: Callable[[], Any] | None = None  # builds `app` once `module` is imported (deferred listeners)
    module: str = ""  # a heavy import this listener needs, done in a thread while the others serve
    started: bool = False  # serving (what the control port's readiness reports per adapter)

    @property
    def port_hint(self) -> str:
        return "--control-port PORT" if self.kind == "control" else f"--port {self.namespace}=PORT"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass
class ServeOptions:
    host: str | None = None  # None: 127.0.0.1 (the file's `address` is not trusted to open a port wider)
    ports: dict[str, int] = field(default_factory=dict)
    log_level: str = "info"
    grace_period: float = 30.0
    access_log: bool = False


def plan_listeners(runtime: Runtime, options: ServeOptions, build_rest: Callable, build_mcp: Callable | None,
                   build_skill: Callable | None = None, build_control: Callable | None = None) -> tuple[list[Listener], list[str]]:
    """Which app listens where; returns listeners and problems (port clashes, missing ports).

    The control app is given the list of listeners, so its readiness reports every adapter."""
    listeners: list[Listener] = []
    problems: list[str] = []
    host = options.host or "127.0.0.1"
    control = runtime.plan.control
    if control is not None and build_control is not None:
        if control.exposure.port is None:
            problems.append(f"{control.exposure.pos}: the control exposure has no port; pass --control-port PORT")
        else:
            listeners.append(Listener("control", control.exposure.namespace, host, control.exposure.port,
                                      build_control(runtime, control, listeners), ["/health/live", "/health/ready", "/metrics"]))
    for api in runtime.plan.rest:
        ns = api.exposure.namespace
        port = options.ports.get(ns, api.exposure.port)
        if not port and ns not in options.ports:
            problems.append(f"{api.exposure.pos}: REST exposure '{ns}' has no port; pass --port {ns}=PORT")
            continue
        listeners.append(Listener("rest", ns, host, port, build_rest(runtime, api, host), [r.path for r in api.routes]))
    for api in runtime.plan.mcp:
        ns = api.exposure.namespace
        if api.exposure.transport == "stdio":
            continue
        if build_mcp is None:
            continue
        port = options.ports.get(ns, api.exposure.port or 0)
        if not port and ns not in options.ports:
            problems.append(f"{api.exposure.pos}: MCP exposure '{ns}' has no port; pass --port {ns}=PORT")
            continue
        listeners.append(Listener("mcp", ns, host, port, None, ["/mcp", "/"], module=MCP_MODULE,
                                  factory=lambda api=api: build_mcp(runtime, api, host)))
    for skills in runtime.plan.skills if build_skill is not None else ():
        ns = skills.exposure.namespace
        port = options.ports.get(ns, skills.exposure.port or 0)
        if not port and ns not in options.ports:
            problems.append(f"{skills.exposure.pos}: skill exposure '{ns}' has no port; pass --port {ns}=PORT")
            continue
        listeners.append(Listener("skill", ns, host, port, build_skill(runtime, skills), ["/skills"]))
    seen: dict[int, Listener] = {}
    for listener in listeners:
        first = seen.get(listener.port)
        if listener.port and first is not None:
            problems.append(f"{first.kind} exposure '{first.namespace}' and {listener.kind} exposure '{listener.namespace}' both use "
                            f"port {listener.port}; pass {listener.port_hint}")
        seen[listener.port] = listener
    return listeners, problems


def _bind(listener: Listener) -> socket.socket:
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listener.host, listener.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {listener.host}:{listener.port} for '{listener.namespace}': {exc.strerror}; pass --port {listener.namespace}=PORT") from None
    sock.listen(2048)
    sock.setblocking(False)
    if listener.port == 0:
        listener.port = sock.getsockname()[1]
    return sock


async def serve(runtime: Runtime, listeners: list[Listener], options: ServeOptions, announce: Callable[[Listener], None]) -> int:
    """Serve until a signal; 0 after a graceful stop."""
    # Everything built so far (imported modules, the compiled capability, the apps) lives as long as
    # the process: move it out of the collector's sight, so collections triggered by per-request
    # garbage scan kilobytes, not the whole heap (bench/: fewer and shorter latency spikes).
    gc.collect()
    gc.freeze()
    sockets = [_bind(listener) for listener in listeners]  # all or nothing, before anything is served
    limits = connection_limits(runtime, len(listeners))
    servers: list[_Server] = []
    tasks: list[asyncio.Task] = []
    controls: list[tuple[_Server, asyncio.Task]] = []  # the control port outlives the drain it reports
    loop = asyncio.get_running_loop()
    stop_count = 0

    def stop(signum: int) -> None:
        nonlocal stop_count
        stop_count += 1
        runtime.lifecycle.draining = True
        log.info("received %s, stopping: no new connections; in-flight requests finish within %gs",
                 signal.Signals(signum).name, options.grace_period)
        keep = {id(server) for server, _ in controls} if len(controls) < len(servers) and stop_count == 1 else set()
        for server in servers:
            if id(server) in keep:
                continue
            server.stop_accepting()
            server.should_exit = True
            if stop_count > 1:
                server.force_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop, sig)
    async def start(group: list[tuple[Listener, socket.socket]]) -> None:
        started: list[tuple[Listener, _Server]] = []
        for listener, sock in group:
            server = _Server(_config(listener.app, options, limits))
            servers.append(server)
            task = asyncio.create_task(server._serve(sockets=[sock]))
            tasks.append(task)
            started.append((listener, server))
            if listener.kind == "control":
                controls.append((server, task))
        while not all(s.started for s in servers) and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        for listener, server in started:
            listener.started = server.started
            announce(listener)

    ready = [(lst, sock) for lst, sock in zip(listeners, sockets) if lst.factory is None]
    deferred = [(lst, sock) for lst, sock in zip(listeners, sockets) if lst.factory is not None]
    await start(ready)
    if deferred and not any(t.done() for t in tasks) and not runtime.lifecycle.draining:
        # The MCP SDK takes ~0.7 s to import: REST serves meanwhile (its sockets were bound
        # above, so early MCP clients wait in the listen backlog rather than being refused).
        for module in {lst.module for lst, _ in deferred if lst.module}:
            await asyncio.to_thread(importlib.import_module, module)
        for listener, _ in deferred:
            listener.app = listener.factory()  # type: ignore[misc]
        gc.freeze()
        if not runtime.lifecycle.draining:
            await start(deferred)
    runtime.lifecycle.listening = bool(servers) and all(s.started for s in servers)
    control_tasks = {id(task) for _, task in controls}
    others = [t for t in tasks if id(t) not in control_tasks]
    results = await asyncio.gather(*others, return_exceptions=True)
    if others:  # every other listener has drained: the control port closes last
        for server, _ in controls:
            server.should_exit = True
    results += await asyncio.gather(*(task for _, task in controls), return_exceptions=True)
    for sock in sockets:  # a deferred listener a stop overtook was bound but never served
        sock.close()
    await runtime.close()
    failed = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    for exc in failed:
        log.error("server failed: %s", exc)
    return 1 if failed else 0


def connection_limits(runtime: Runtime, listeners: int) -> ConnectionLimits:
    """Client connection limits per listener; `--max-clients` defaults to what the open-file limit
    (raised to its hard maximum first) leaves after the upstream pools."""
    s = runtime.plan.settings
    fd_limit = raise_fd_limit()
    max_clients = s.max_clients
    if max_clients is None:
        slots = sum(u.settings.max_connections for u in runtime.plan.upstreams.values())
        max_clients = default_max_clients(fd_limit, listeners, slots)
    return ConnectionLimits(header_timeout=s.header_timeout, body_idle_timeout=s.body_idle_timeout,
                            body_timeout=s.body_timeout, max_head_bytes=s.max_head_bytes, max_clients=max_clients)


def _config(app: Any, options: ServeOptions, limits: ConnectionLimits) -> uvicorn.Config:
    return uvicorn.Config(
        app, log_level="debug" if options.log_level == "debug" else "warning",  # its startup chatter only in debug
        access_log=options.access_log,
        lifespan="auto", timeout_graceful_shutdown=options.grace_period, log_config=None,
        server_header=False, date_header=True, timeout_keep_alive=30,
        proxy_headers=False,  # X-Forwarded-* are not trusted by default: no middleware on every request
        http=protocol_class(limits), ws="none",  # head/body/connection limits, WebSocket refused (connections.py)
    )
