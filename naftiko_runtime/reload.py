"""`naftiko run --reload`: which files a running capability depends on, and when they changed.

The watched files are the paths named on the command line, every file the last good build read
(capabilities, the files they import, bind files) and the TLS files. Their directories are watched
(watchfiles, not recursively; a directory named on the command line with its subdirectories), not
the files themselves: editors save by writing a new file and renaming it, and a Kubernetes
ConfigMap volume is updated by swapping a `..data` symlink, so the events that matter are rarely
"this file was modified". Any event in those directories leads to a content check (a digest per
file), and only a real change asks for a reload; the swap itself is server.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import watchfiles

from naftiko_runtime.plan import Plan

log = logging.getLogger("naftiko")
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every batch of events at INFO
STEP_MS = 50  # a burst of events (truncate, write, rename) is one change once quiet this long


class Watcher:
    """The files a reload depends on, and whether their contents changed since last looked at."""

    def __init__(self, paths: Sequence[str | Path], extra: Sequence[Path] = ()):
        self.paths = [Path(p).absolute() for p in paths]  # not resolved: a symlink swap is a change of content
        self.extra = [p.absolute() for p in extra]
        self.files: set[Path] = set()
        self.digests: dict[Path, bytes] = {}
        self._moved: asyncio.Event | None = None

    def update(self, plans: list[Plan]) -> None:
        """After a good build: watch what it read. Digests of files already known stay as they
        were, so an edit made while the build ran is still seen as a change."""
        before = self.dirs()
        self.files = {*self.extra, *(p for p in self.paths if not p.is_dir()), *(s for plan in plans for s in plan.sources)}
        self.digests = {f: self.digests.get(f) or _digest(f) for f in self._tracked()}
        if self.dirs() != before and self._moved is not None:
            self._moved.set()  # the running watch restarts on the new directories

    def dirs(self) -> list[Path]:
        found = {f.parent for f in self.files if f.parent.is_dir()}
        for path in self.paths:
            if path.is_dir():
                for parent, subdirs, _ in os.walk(path):
                    subdirs[:] = [d for d in subdirs if not d.startswith(".")]  # .git, a ConfigMap's ..data
                    found.add(Path(parent))
        return sorted(found)

    def relevant(self, change: watchfiles.Change, path: str) -> bool:
        """An event worth a content check: a watched file, a YAML file in a watched directory, or a
        ConfigMap volume's `..data` swap (not a log file written next to the capability)."""
        event = Path(path)
        return (event in self.files or event.name.startswith("..")
                or (event.suffix in (".yaml", ".yml") and any(p in event.parents for p in self.paths)))

    def changed(self) -> bool:
        """Whether any watched content differs from what was last seen (then remembered)."""
        now = {f: _digest(f) for f in self._tracked()}
        if now == self.digests:
            return False
        self.digests = now
        return True

    def _tracked(self) -> list[Path]:
        """The files, plus the capability files a watched directory holds now (one may be added)."""
        found = set(self.files)
        for path in self.paths:
            if path.is_dir():
                found.update(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")
                             and not any(part.startswith(".") for part in p.relative_to(path).parts))
        return sorted(found)

    async def run(self, reload: Callable[[], None]) -> None:
        """Watch until cancelled; call `reload` after each change of content."""
        while True:
            self._moved = asyncio.Event()
            async for _ in watchfiles.awatch(*self.dirs(), watch_filter=self.relevant, step=STEP_MS, stop_event=self._moved,
                                             recursive=False, ignore_permission_denied=True):
                if self.changed():
                    log.info("files changed: reloading")
                    reload()

    def ticks(self, timeout: float) -> Iterator[bool]:
        """For a process without an event loop (the workers' supervisor): yields at least every
        `timeout` seconds, True when the content changed."""
        while True:
            dirs = self.dirs()
            for events in watchfiles.watch(*dirs, watch_filter=self.relevant, step=STEP_MS, rust_timeout=int(timeout * 1000),
                                           yield_on_timeout=True, recursive=False, raise_interrupt=False,
                                           ignore_permission_denied=True):
                yield bool(events) and self.changed()
                if self.dirs() != dirs:
                    break


def _digest(path: Path) -> bytes:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return b"missing"
