"""`naftiko run --workers N`: N processes serving the same ports, each with its own event loop,
runtimes and upstream connection pools.

The supervisor (the process the user started) loads and compiles the capabilities once, checks
that every port can be bound, then forks the workers, which inherit the compiled plans. Each worker
binds its own socket to every port with SO_REUSEPORT, so the kernel spreads new connections over
the workers evenly (measured in bench/: one shared accepting socket, as `uvicorn --workers` has,
let one worker take every connection in 4 runs of 9).

The supervisor serves nothing. It restarts a worker that dies (logged; with a growing delay when
one dies right after starting), forwards SIGTERM and SIGINT as SIGTERM (every worker drains; the
exit code is 0 only when every worker exited 0; a second signal goes on as SIGQUIT: stop at once)
and SIGHUP, and with --reload watches the files: a change is
checked once here (its findings logged once) and, when clean, every worker reloads it. It runs no
event loop and no thread of its own (signals are read with sigtimedwait), so forking is safe.

Readiness: each worker sets its byte in a shared page once it serves; `/readyz` on any worker is
200 only while every byte is set, i.e. when every worker is ready.
"""

from __future__ import annotations

import gc
import importlib
import logging
import math
import mmap
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from naftiko_runtime.build import describe
from naftiko_runtime.errors import StartupError
from naftiko_runtime.plan import Plan
from naftiko_runtime.reload import Watcher
from naftiko_runtime.server import MCP_MODULE, Listener, ServeOptions, bind, relayout

log = logging.getLogger("naftiko")
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
QUICK_DEATH = 2.0  # a worker that dies sooner than this after starting is restarted after a delay
MAX_DELAY = 30.0
TICK = 0.25  # longest wait of the supervisor's loop (file changes, restart delays)


def available_cores() -> int:
    """`--workers auto`: the cores this process may run on, within a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


class Board:
    """Which workers serve: one byte per worker in a shared anonymous page (inherited by fork)."""

    def __init__(self, count: int):
        self.count = count
        self.page = mmap.mmap(-1, count)
        self.started = time.time()  # the supervisor's start: the service's uptime, whichever worker reports it

    def set(self, slot: int, ready: bool) -> None:
        self.page[slot] = 1 if ready else 0

    def serving(self, slot: int) -> bool:
        return self.page[slot] == 1

    def ready(self) -> int:
        return self.page[: self.count].count(1)

    def all_ready(self) -> bool:
        return self.page[: self.count] == b"\x01" * self.count


@dataclass
class _Worker:
    slot: int
    pid: int
    started: float


Serve = Callable[[int, Board, list[Plan], list[Listener]], int]  # runs one worker's server; its exit code
Rebuild = Callable[[], list[Plan]]


class Supervisor:
    """Forks, watches and restarts the workers; relays signals; checks reloads once."""

    def __init__(self, count: int, serve: Serve, plans: list[Plan], listeners: list[Listener],
                 options: ServeOptions, rebuild: Rebuild, watch: Watcher | None):
        self.count = count
        self.serve = serve
        self.plans = plans
        self.listeners = listeners
        self.options = options
        self.rebuild = rebuild
        self.watch = watch
        self.board = Board(count)
        self.workers: dict[int, _Worker] = {}  # pid -> worker
        self.delays: dict[int, float] = {}  # slot -> next restart delay
        self.pending: dict[int, float] = {}  # slot -> when to restart it
        self.stopping = 0
        self.codes: list[int] = []
        self.announced = False

    def run(self) -> int:
        """Start every worker and supervise until they all stopped; the process's exit code."""
        reserved = [bind(listener, reuse_port=True, listen=False) for listener in self.listeners]  # all or nothing
        if any(lst.kind == "mcp" for lst in self.listeners):
            # once here, shared by every worker, not once per worker: the app's module and the SDK
            importlib.import_module(importlib.import_module(MCP_MODULE).SDK_MODULE)
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        gc.collect()
        gc.freeze()  # the workers share these pages: no collection in a worker writes to them
        try:
            for slot in range(self.count):
                self._spawn(slot)
            ticks = self.watch.ticks(TICK) if self.watch is not None else None
            while self.workers or (self.pending and not self.stopping):
                changed = next(ticks) if ticks is not None else self._wait()
                self._signals()
                if changed and not self.stopping:
                    log.info("files changed: checking the new version once before the workers load it")
                    self._reload()
                self._restart_due()
                if not self.announced and self.board.all_ready():
                    self.announced = True
                    log.info("%d workers serving (pids %s)", self.count, ", ".join(str(w.pid) for w in self.workers.values()))
        finally:
            for sock in reserved:
                sock.close()
        failed = [code for code in self.codes if code != 0]
        return 0 if not failed else 1

    # ------------------------------------------------------------------ signals

    def _wait(self) -> bool:
        """Block until a signal arrives (or the next restart is due): never a file change here."""
        timeout = max(0.0, min(self.pending.values()) - time.monotonic()) if self.pending else None
        info = signal.sigtimedwait(_SIGNALS, TICK if timeout is None else min(timeout, TICK))
        if info is not None:
            self._handle(info.si_signo)
        return False

    def _signals(self) -> None:
        while (info := signal.sigtimedwait(_SIGNALS, 0)) is not None:
            self._handle(info.si_signo)

    def _handle(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum == signal.SIGHUP:
            log.info("received SIGHUP: checking the files once before the workers reload them")
            self._reload()
        else:
            self.stopping += 1
            self.pending.clear()
            log.info("received %s: stopping %d worker(s); in-flight requests finish within %gs",
                     signal.Signals(signum).name, len(self.workers), self.options.grace_period)
            for worker in self.workers.values():  # a second signal makes the workers stop at once
                _kill(worker.pid, signal.SIGTERM if self.stopping == 1 else signal.SIGQUIT)

    # ------------------------------------------------------------------ workers

    def _spawn(self, slot: int) -> None:
        self.board.set(slot, False)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
                for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor decides
                code = self.serve(slot, self.board, self.plans, self.listeners)
            except BaseException as exc:  # noqa: BLE001 -- nothing may unwind into the supervisor's code
                log.error("worker %d failed: %s", slot, exc, exc_info=exc)
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = _Worker(slot, pid, time.monotonic())
        log.debug("worker %d started (pid %d)", slot, pid)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.board.set(worker.slot, False)
            code = os.waitstatus_to_exitcode(status)
            how = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            if self.stopping:
                self.codes.append(code)
                log.log(logging.INFO if code == 0 else logging.WARNING, "worker %d (pid %d) stopped (%s)", worker.slot, pid, how)
                continue
            lived = time.monotonic() - worker.started
            delay = self.delays.get(worker.slot, 0.5) * 2 if lived < QUICK_DEATH else 0.0
            self.delays[worker.slot] = min(delay, MAX_DELAY) if delay else 0.5
            log.error("worker %d (pid %d) died (%s) after %.1fs; restarting it%s", worker.slot, pid, how, lived,
                      f" in {delay:g}s" if delay else "")
            self.pending[worker.slot] = time.monotonic() + min(delay, MAX_DELAY)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, when in list(self.pending.items()):
            if when <= now and not self.stopping:
                del self.pending[slot]
                self._spawn(slot)

    def _reload(self) -> None:
        try:
            plans = self.rebuild()
        except StartupError as exc:
            for line in describe(exc, "the last good version keeps serving"):
                log.error("%s", line)
            return
        listeners, problems = relayout(plans, self.options, self.listeners)
        if problems:
            for problem in problems:
                log.error("%s", problem)
            log.error("reload refused; the last good version keeps serving")
            return
        self.plans, self.listeners = plans, listeners  # what a restarted worker starts from
        if self.watch is not None:
            self.watch.update(plans)
        for worker in self.workers.values():
            _kill(worker.pid, signal.SIGHUP)


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
