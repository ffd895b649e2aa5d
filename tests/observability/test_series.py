"""The workers' shared metric series (observability/series.py) in one process: what a scrape
answered by either worker sums, what a restarted worker adopts, and a slot that runs out of room."""

from __future__ import annotations

import logging

from naftiko_runtime.observability.series import LocalSeries, SharedSeries


def test_every_worker_reads_the_sum_and_a_restarted_worker_continues_its_slot():
    shared = SharedSeries(2, slot_bytes=4096)
    running = {0: True, 1: True}
    first, second = shared.worker(0, running.get), shared.worker(1, running.get)
    for store, count in ((first, 3), (second, 4)):
        cells = store.cells("requests", ("GET /a", "2xx"), 2)
        cells[0] += count
        cells[1] += count * 0.5
        store.cells("in_flight", ("rest",), 1, live=True)[0] += 1
    second.cells("requests", ("GET /b", "5xx"), 2)[0] += 1
    expected = {"requests": {("GET /a", "2xx"): [7.0, 3.5], ("GET /b", "5xx"): [1.0, 0.0]}, "in_flight": {("rest",): [2.0]}}
    assert first.totals() == second.totals() == expected

    running[1] = False  # worker 1 died: its counts stay, its in-flight requests are gone
    assert first.totals()["requests"] == expected["requests"] and first.totals()["in_flight"] == {("rest",): [1.0]}
    restarted = shared.worker(1, running.get)
    running[1] = True
    restarted.cells("requests", ("GET /a", "2xx"), 2)[0] += 1  # the same series, not a second one
    assert first.totals() == {"requests": {("GET /a", "2xx"): [8.0, 3.5], ("GET /b", "5xx"): [1.0, 0.0]}, "in_flight": {("rest",): [1.0]}}


def test_a_full_slot_warns_once_and_every_scrape_reports_the_same(caplog):
    shared = SharedSeries(2, slot_bytes=256)  # room for one 16-cell series per slot
    store, other = shared.worker(0, lambda slot: True), shared.worker(1, lambda slot: True)
    with caplog.at_level(logging.WARNING, logger="naftiko"):
        for i in range(3):
            store.cells("requests", (f"op{i}",), 16)[0] += 1  # the request is still served
    assert len([r for r in caplog.records if "shared page" in r.getMessage()]) == 1
    assert store.totals() == other.totals() and list(store.totals()["requests"]) == [("op0",)]


def test_one_process_keeps_lists():
    store = LocalSeries()
    store.cells("requests", ("GET /a",), 2)[0] += 2
    assert store.cells("requests", ("GET /a",), 2) == [2.0, 0.0] and store.totals() == {"requests": {("GET /a",): [2.0, 0.0]}}
