"""Where metric observations live: plain lists in one process, or a page shared by the workers.

A series is a short array of floats (a histogram's buckets and sum, a counter, a gauge) for one
metric and one set of label values. `Metrics` asks a store for a series' cells once, keeps them,
and adds to them on each observation (`cells[i] += 1`): the per-request work is the same in both
stores.

With `--workers N` the supervisor maps one anonymous shared region before forking (workers.py
forks; the mapping is inherited), split into one slot per worker. A worker appends its series to
its own slot (only it writes there) and a scrape answered by any worker reads every slot and sums
them, so `/metrics` reports the totals of the process group whichever worker the kernel picked.
Counters survive a worker's death: the worker restarted in that slot adopts the series its
predecessor left and keeps adding to them (no reset, nothing counted twice). Gauges (`live`
series) are current values: a restarted worker zeroes its slot's gauges, and a slot whose worker
is not running is left out of their sums.

Slot layout: an 8-byte "bytes used" header, then entries `[u32 entry size][u32 key size][key
(JSON), padded to 8][float64 cells]`. An entry is written whole before the header counts it, so a
reader never sees half an entry; 8-byte aligned float stores are single machine stores, so a
reader sees each cell before or after an addition, never torn. prometheus_client's multiprocess
mode was the other candidate: its values take a lock and write through a file per process on
every observation (docs/observability.md has the measurement).
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
from typing import Callable, MutableSequence

log = logging.getLogger("naftiko")

SLOT_BYTES = 16 << 20  # per worker; pages are only backed once written (a series is ~250 bytes)
_HEADER = struct.Struct("<Q")
_ENTRY = struct.Struct("<II")

Key = tuple[str, tuple[str, ...]]  # (metric, label values)
Totals = dict[str, dict[tuple[str, ...], list[float]]]  # metric -> label values -> summed cells


class LocalSeries:
    """One process's series (no workers): lists in a dictionary."""

    def __init__(self) -> None:
        self.series: dict[Key, list[float]] = {}

    def cells(self, metric: str, labels: tuple[str, ...], size: int, live: bool = False) -> MutableSequence[float]:
        return self.series.setdefault((metric, labels), [0.0] * size)

    def totals(self) -> Totals:
        out: Totals = {}
        for (metric, labels), cells in list(self.series.items()):
            out.setdefault(metric, {})[labels] = list(cells)
        return out


class SharedSeries:
    """The workers' shared region (made by the supervisor before forking): one slot per worker."""

    def __init__(self, slots: int, slot_bytes: int = SLOT_BYTES):
        self.slots = slots
        self.slot_bytes = slot_bytes
        self.page = mmap.mmap(-1, slots * slot_bytes)
        self.view = memoryview(self.page)
        for slot in range(slots):
            _HEADER.pack_into(self.page, slot * slot_bytes, _HEADER.size)

    def worker(self, slot: int, running: Callable[[int], bool]) -> "WorkerSeries":
        """The store of the worker in `slot`; `running(slot)` says whether a slot's worker serves."""
        return WorkerSeries(self, slot, running)


class WorkerSeries:
    """One worker's view: its own slot to write, every slot to read."""

    def __init__(self, shared: SharedSeries, slot: int, running: Callable[[int], bool]):
        self.shared = shared
        self.slot = slot
        self.running = running
        self.base = slot * shared.slot_bytes
        self.full = False
        self.parsed: list[tuple[int, list[tuple[str, tuple[str, ...], bool, int, int]]]] = [(_HEADER.size, []) for _ in range(shared.slots)]
        self.own: dict[Key, MutableSequence[float]] = {}
        for metric, labels, live, start, size in self._entries(slot):  # a predecessor's series, adopted
            cells = self._cells(start, size)
            if live:
                cells[:] = _zeros(size)  # its in-flight requests died with it
            self.own[(metric, labels)] = cells

    def _cells(self, start: int, size: int) -> MutableSequence[float]:
        return self.shared.view[start:start + 8 * size].cast("d")

    def cells(self, metric: str, labels: tuple[str, ...], size: int, live: bool = False) -> MutableSequence[float]:
        found = self.own.get((metric, labels))
        if found is not None:
            return found
        key = json.dumps([metric, list(labels), live]).encode()
        padded = -(-len(key) // 8) * 8
        entry = _ENTRY.size + padded + 8 * size
        (used,) = _HEADER.unpack_from(self.shared.page, self.base)
        if used + entry > self.shared.slot_bytes:
            if not self.full:
                self.full = True
                log.warning("metrics: worker %d has more series than its shared page holds; new series are not reported", self.slot)
            return self.own.setdefault((metric, labels), [0.0] * size)
        start = self.base + used
        page = self.shared.page
        _ENTRY.pack_into(page, start, entry, len(key))
        page[start + _ENTRY.size:start + _ENTRY.size + len(key)] = key
        cells = self._cells(start + _ENTRY.size + padded, size)
        _HEADER.pack_into(page, self.base, used + entry)  # last: readers see the entry whole or not at all
        self.own[(metric, labels)] = cells
        return cells

    def _entries(self, slot: int) -> list[tuple[str, tuple[str, ...], bool, int, int]]:
        """The entries of a slot (parsed once each: entries never move), as (metric, labels, live,
        offset of the cells, cell count)."""
        base = slot * self.shared.slot_bytes
        page = self.shared.page
        done, entries = self.parsed[slot]
        (used,) = _HEADER.unpack_from(page, base)
        while done < used:
            size, key_size = _ENTRY.unpack_from(page, base + done)
            metric, labels, live = json.loads(page[base + done + _ENTRY.size:base + done + _ENTRY.size + key_size])
            cells_at = _ENTRY.size + -(-key_size // 8) * 8
            entries.append((metric, tuple(labels), live, base + done + cells_at, (size - cells_at) // 8))
            done += size
        self.parsed[slot] = (done, entries)
        return entries

    def totals(self) -> Totals:
        out: Totals = {}
        for slot in range(self.shared.slots):
            running = slot == self.slot or self.running(slot)
            for metric, labels, live, start, size in self._entries(slot):
                if live and not running:
                    continue
                _add(out, metric, labels, self._cells(start, size).tolist())
        return out  # series a full slot had no room for are left out: every worker's scrape says the same


def _add(out: Totals, metric: str, labels: tuple[str, ...], values: list[float]) -> None:
    summed = out.setdefault(metric, {}).get(labels)
    if summed is None:
        out[metric][labels] = values
    else:
        for i, value in enumerate(values):
            summed[i] += value


def _zeros(size: int) -> memoryview:
    return memoryview(bytes(8 * size)).cast("d")
