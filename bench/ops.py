"""Issue 13's benchmark: `--workers`, how connections spread over workers, and hot reload under load.

    python bench/ops.py                  # everything (~3 min): table + results/ops-<time>.json
    python bench/ops.py --quick          # short cells: checks the harness, not the figures
    python bench/ops.py --only workers   # workers | balance | reload (repeatable)

Same upstream as bench.py (an nginx stub answering a fixed Session), same wrk reporting, every
process on loopback and stopped by its own pid. Unlike bench.py, nothing is pinned to a core in
the workers sections: two workers need both cores of this machine, which wrk shares with them, so
req/s with 2 workers cannot show a 2x; the figure that transfers to larger machines is the server
CPU time per request (utime + stime of the supervisor and every worker / requests served).

- workers: `naftiko run --workers 1` and `--workers 2`, wrk c=64, interleaved rounds;
- balance: with 2 workers and c=32, each worker's share of the server CPU (how evenly the kernel
  spread the connections), for `naftiko run --workers 2` (one SO_REUSEPORT socket per worker) and
  for `uvicorn --workers 2` (one listening socket shared by both) on the hand-written proxy;
- reload: `naftiko run --reload`, wrk c=32 for 20 s, without reloads and with an edit of the file
  every second (each one a reload: 20 swaps), p99 and failed requests of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402  (bench/ is this script's directory)
    API_KEY, BENCH, CLK_TCK, RESULTS, ROOT, SEED, SESSION_ID, Processes, _children, _stat_ticks, free_port, machine,
    naftiko_argv, rest_ok, run_wrk, start_nginx, _stub_locations, wait_ready,
)

ROUTE = f"/v1/session/{SESSION_ID}"


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    return {pid: _stat_ticks(pid) for pid in pids}


def cell(url: str, connections: int, seconds: float, pids: list[int], warmup: float) -> dict[str, Any]:
    """One wrk run with the CPU time of `pids` (a supervisor and its workers) accounted per process."""
    if warmup:
        run_wrk_unpinned(url, connections, warmup)
    before = cpu_ticks(pids)
    r = run_wrk_unpinned(url, connections, seconds)
    used = {pid: _stat_ticks(pid) - before[pid] for pid in pids}
    total = sum(used.values())
    return {"rps": round(r["requests"] / (r["duration_us"] / 1e6), 1), "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
            "requests": r["requests"], "errors": sum(r["errors"].values()) + r["bad"],
            "cpu_us_per_request": round(total / CLK_TCK / max(1, r["requests"]) * 1e6, 1),
            "cpu_by_pid": used, "wrk_cpu_s": round(r["wrk_cpu_s"], 2)}


def run_wrk_unpinned(url: str, connections: int, seconds: float) -> dict[str, Any]:
    """wrk on either core (`taskset -c 0,1`): it shares the machine with the workers."""
    return run_wrk(url, connections, seconds, "get.lua", {}, core="0,1")  # type: ignore[arg-type]


def start_workers(procs: Processes, name: str, workers: int, stub_port: int, extra: list[str] = ()) -> tuple[Any, int, list[int]]:
    rest, mcp = free_port(), free_port()
    argv = naftiko_argv(SEED, stub_port, rest, mcp, source=ROOT) + ["--workers", str(workers), *extra]
    proc = procs.start(name, argv, core=None, env={"VAPI_API_KEY": API_KEY})
    wait_ready(proc, rest_ok(rest, ROUTE))
    deadline = time.monotonic() + 20
    while len(_children(proc.pid)) < (workers if workers > 1 else 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # every worker past its MCP startup
    return proc, rest, [proc.pid, *_children(proc.pid)]


def workers_section(procs: Processes, stub_port: int, s: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    servers = {n: start_workers(procs, f"naftiko-workers-{n}", n, stub_port) for n in (1, 2)}
    for round_ in range(s.rounds):
        for n, (_, port, pids) in servers.items():
            row = {"section": "workers", "workers": n, "round": round_, "c": 64,
                   **cell(f"http://127.0.0.1:{port}{ROUTE}", 64, s.duration, pids, s.warmup)}
            rows.append(row)
            print(f"  workers={n} c=64 round {round_}: {row['rps']:8.0f} req/s  p99 {row['p99_ms']:6.2f} ms  "
                  f"{row['cpu_us_per_request']:6.1f} us CPU/request  errors {row['errors']}", flush=True)
    for proc, _, _ in servers.values():
        procs.stop(proc)
    return rows


def balance_section(procs: Processes, stub_port: int, s: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    naftiko, n_port, n_pids = start_workers(procs, "naftiko-balance", 2, stub_port)
    uv_port = free_port()
    uv = procs.start("uvicorn-workers-2", [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "--factory",
                                           "handwritten_proxy:factory", "--workers", "2", "--port", str(uv_port),
                                           "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"],
                     core=None, env={"VAPI_API_KEY": API_KEY, "BENCH_UPSTREAM": f"http://127.0.0.1:{stub_port}"})
    wait_ready(uv, rest_ok(uv_port, ROUTE))
    time.sleep(1.0)
    for run in range(s.balance_runs):
        for name, port, workers in (("naftiko --workers 2", n_port, n_pids[1:]), ("uvicorn --workers 2", uv_port, _busy_children(uv.pid))):
            fresh = cell(f"http://127.0.0.1:{port}{ROUTE}", 32, s.balance_duration, workers, warmup=0)
            shares = sorted((t / max(1, sum(fresh["cpu_by_pid"].values())) for t in fresh["cpu_by_pid"].values()), reverse=True)
            row = {"section": "balance", "server": name, "run": run, "c": 32, "busiest_share": round(shares[0], 3),
                   "rps": fresh["rps"], "errors": fresh["errors"]}
            rows.append(row)
            print(f"  {name:<20} run {run}: busiest worker {row['busiest_share'] * 100:5.1f}% of the server CPU  "
                  f"({row['rps']:.0f} req/s)", flush=True)
    procs.stop(naftiko)
    procs.stop(uv)
    return rows


def _busy_children(pid: int) -> list[int]:
    """uvicorn's workers: its children except multiprocessing's resource tracker (it never serves)."""
    return [p for p in _children(pid) if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]


def reload_section(procs: Processes, stub_port: int, s: argparse.Namespace) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="ops-reload-", dir=RESULTS))
    capability = folder / "vapi-sessions.yaml"
    original = SEED.read_text()
    capability.write_text(original)
    rest, mcp = free_port(), free_port()
    argv = naftiko_argv(capability, stub_port, rest, mcp, source=ROOT) + ["--reload", "--log-level", "info"]  # (the last one wins)
    proc = procs.start("naftiko-reload", argv, core=0, env={"VAPI_API_KEY": API_KEY})
    wait_ready(proc, rest_ok(rest, ROUTE))
    time.sleep(1.0)
    url = f"http://127.0.0.1:{rest}{ROUTE}"
    rows = []
    for label, reloads in (("without reloads", False), ("a reload every second", True), ("without reloads", False)):
        stop = threading.Event()
        edits = [0]

        def edit() -> None:
            while not stop.wait(1.0):
                edits[0] += 1
                tmp = folder / ".edit.tmp"
                tmp.write_text(original.replace("Vapi Create Session", f"Vapi Create Session (edit {edits[0]})", 1))
                os.replace(tmp, capability)  # as editors save: a new file renamed over the old one

        before = proc.log.read_text(errors="replace").count("reloaded:")
        rss_before = proc.rss_mb()
        editor = threading.Thread(target=edit, daemon=True)
        if reloads:
            editor.start()
        r = run_wrk(url, 32, s.reload_duration, "get.lua", {}, core=1)
        stop.set()
        if reloads:
            editor.join()
        time.sleep(0.5)
        swapped = proc.log.read_text(errors="replace").count("reloaded:") - before
        row = {"section": "reload", "case": label, "c": 32, "seconds": s.reload_duration, "edits": edits[0] if reloads else 0,
               "reloads": swapped, "rps": round(r["requests"] / (r["duration_us"] / 1e6), 1), "p50_ms": r["p50_us"] / 1000,
               "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000, "requests": r["requests"],
               "errors": sum(r["errors"].values()) + r["bad"], "error_kinds": r["errors"],
               "rss_mb_before": rss_before, "rss_mb_after": proc.rss_mb()}
        rows.append(row)
        print(f"  {label:<22} {row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  "
              f"max {row['max_ms']:7.1f} ms  reloads {swapped:2d}  failed {row['errors']}  RSS {rss_before} -> {row['rss_mb_after']} MB",
              flush=True)
    procs.stop(proc)
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    by = lambda **kw: [r for r in rows if all(r.get(k) == v for k, v in kw.items())]  # noqa: E731
    one, two = by(section="workers", workers=1), by(section="workers", workers=2)
    if one and two:
        rps1, rps2 = statistics.median(r["rps"] for r in one), statistics.median(r["rps"] for r in two)
        cpu1, cpu2 = statistics.median(r["cpu_us_per_request"] for r in one), statistics.median(r["cpu_us_per_request"] for r in two)
        out.append(f"workers, c=64: 1 worker {rps1:.0f} req/s, 2 workers {rps2:.0f} req/s ({rps2 / rps1:.2f}x; wrk shares the 2 cores)")
        out.append(f"server CPU per request: 1 worker {cpu1:.1f} us, 2 workers {cpu2:.1f} us ({(cpu2 / cpu1 - 1) * 100:+.1f}%; goal <= +10%)")
    for server in ("naftiko --workers 2", "uvicorn --workers 2"):
        runs = by(section="balance", server=server)
        if runs:
            shares = [r["busiest_share"] for r in runs]
            out.append(f"balance, {server}: busiest worker's share of the CPU per run {', '.join(f'{x * 100:.0f}%' for x in shares)}"
                       f" (50% = even; {sum(x > 0.9 for x in shares)} of {len(shares)} runs above 90%)")
    base = by(section="reload", reloads=0)
    hot = [r for r in by(section="reload") if r["case"] == "a reload every second"]
    if base and hot:
        p99 = statistics.median(r["p99_ms"] for r in base)
        out.append(f"reload, c=32: p99 {hot[0]['p99_ms']:.2f} ms with {hot[0]['reloads']} reloads vs {p99:.2f} ms without "
                   f"({hot[0]['p99_ms'] / p99:.2f}x; goal <= 2x); failed requests {hot[0]['errors']} (without: {sum(r['errors'] for r in base)})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short cells (checks the harness)")
    parser.add_argument("--only", action="append", default=[], choices=["workers", "balance", "reload"])
    s = parser.parse_args(argv)
    s.rounds, s.duration, s.warmup = (1, 2, 0.5) if s.quick else (3, 5, 1)
    s.balance_runs, s.balance_duration = (2, 2) if s.quick else (9, 3)
    s.reload_duration = 5 if s.quick else 20
    wants = lambda part: not s.only or part in s.only  # noqa: E731
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix=f"ops-{stamp}-", dir=RESULTS))
    procs = Processes(workdir)
    load = os.getloadavg()
    print(f"ops bench: logs in {workdir.relative_to(ROOT)}; load average {load[0]:.2f}"
          + ("  (busy machine: figures will be noisy)" if load[0] > 0.7 else ""), flush=True)
    rows: list[dict[str, Any]] = []
    try:
        stub_port = free_port()
        stub = start_nginx(procs, workdir, "nginx-stub", f"server {{ listen 127.0.0.1:{stub_port} backlog=4096; {_stub_locations()} }}", 1)
        wait_ready(stub, rest_ok(stub_port, f"/session/{SESSION_ID}"))
        if wants("workers"):
            print("workers (nothing pinned; wrk shares both cores):", flush=True)
            rows += workers_section(procs, stub_port, s)
        if wants("balance"):
            print("balance (2 workers, c=32):", flush=True)
            rows += balance_section(procs, stub_port, s)
        if wants("reload"):
            print("reload (naftiko on core 0, wrk and the stub on core 1):", flush=True)
            rows += reload_section(procs, stub_port, s)
    finally:
        procs.stop_all()
    lines = summary(rows)
    print("\n".join(["", *lines]))
    report = {"started": stamp, "machine": machine(), "load_before": load, "quick": s.quick, "rows": rows, "summary": lines}
    (RESULTS / f"ops-{stamp}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "ops-latest.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
