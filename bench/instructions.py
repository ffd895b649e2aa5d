"""Instructions per REST request of `naftiko run` (or a bench app), counted by callgrind: an A/B
measure that the machine's noise does not move (CPU time per request moves 3-10% run to run).

The server runs under `valgrind --tool=callgrind` (all threads) against the nginx stub; 32
keep-alive connections send `--warm` requests, callgrind dumps (and zeroes) its counters, `--count`
more requests, a second dump: its total over `--count` is one request's instructions.

    python bench/instructions.py                      # the runtime of this checkout
    python bench/instructions.py --source /path/tree  # another checkout (A/B)
    python bench/instructions.py --app raw-h1         # raw ASGI + h1 (the floor), or raw-pyreqwest, noop
    python bench/instructions.py --metrics            # the seed with a control exposure (metrics on)
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import (API_KEY, BENCH, SEED, SESSION_ID, Processes, _stub_locations, free_port, naftiko_argv,  # noqa: E402
                   observed_capability, rest_ok, start_nginx, wait_ready)

APPS = {"raw-h1": ["raw_pyreqwest.py", "--client", "h1"], "raw-pyreqwest": ["raw_pyreqwest.py"], "noop": ["noop_asgi.py"]}


async def load(port: int, path: str, count: int, connections: int = 32) -> None:
    """`count` GETs over `connections` keep-alive connections, each answer read whole."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    left = [count]

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left[0] > 0:
            left[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


def settle(pid: int, timeout: float = 300.0) -> None:
    """Wait until the idle server spends no CPU: startup work in other threads (the MCP SDK's
    import, ~50x slower under valgrind) must not be counted as requests'."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    end = time.monotonic() + timeout
    before = cpu()
    while time.monotonic() < end:
        time.sleep(1.0)
        now = cpu()
        if now - before < 0.05:
            return
        before = now


def totals(workdir: Path, pid: int) -> int:
    """Instructions since the previous dump (a dump zeroes the counters), all threads summed."""
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    time.sleep(0.5)
    total = 0
    dumps = sorted(glob.glob(str(workdir / f"callgrind.out.{pid}.*")), key=os.path.getmtime)
    newest = {}
    for name in dumps:  # one file per thread and dump: callgrind.out.PID.N-TID
        part, _, thread = Path(name).name.rpartition("-")
        newest.setdefault(part, []).append(name)
    last = sorted(newest, key=lambda k: int(k.rsplit(".", 1)[1]))[-1]
    for name in newest[last]:
        m = re.search(r"^(?:summary|totals): (\d+)", Path(name).read_text(errors="replace"), re.M)
        total += int(m.group(1)) if m else 0
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, help="a checkout whose runtime to measure (default: this one)")
    p.add_argument("--app", choices=sorted(APPS), help="a bench app instead of `naftiko run`")
    p.add_argument("--metrics", action="store_true", help="`naftiko run` with metrics on (a control exposure)")
    p.add_argument("--warm", type=int, default=600)
    p.add_argument("--count", type=int, default=2000)
    args = p.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("instructions.py needs valgrind (apt-get install valgrind)")
    workdir = Path(tempfile.mkdtemp(prefix="instructions-"))
    procs = Processes(workdir)
    try:
        stub_port = free_port()
        stub = start_nginx(procs, workdir, "nginx-stub", f"server {{ listen 127.0.0.1:{stub_port} backlog=4096; {_stub_locations()} }}", 1)
        wait_ready(stub, rest_ok(stub_port, f"/session/{SESSION_ID}"))
        port = free_port()
        if args.app:
            script, *extra = APPS[args.app]
            argv = [sys.executable, str(BENCH / script), "--port", str(port), "--upstream", f"http://127.0.0.1:{stub_port}", *extra]
            if args.app == "noop":
                argv = argv[:4]
        else:  # python -m naftiko_runtime in the tree (`env -C` execs valgrind: one pid throughout)
            capability = observed_capability(workdir, "metrics", False, None) if args.metrics else SEED
            argv = [sys.executable, "-m", "naftiko_runtime", *naftiko_argv(capability, stub_port, port, free_port())[1:]]
        tree = (args.source or BENCH.parent).resolve()
        grind = ["env", "-C", str(tree), "valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={workdir}/callgrind.out.%p"]
        proc = procs.start("server", [*grind, *argv], 0, env={"VAPI_API_KEY": API_KEY})
        wait_ready(proc, rest_ok(port, f"/v1/session/{SESSION_ID}"), timeout=180)
        pid = proc.popen.pid  # taskset execs valgrind, which runs the server in the same process
        asyncio.run(load(port, f"/v1/session/{SESSION_ID}", args.warm))
        settle(pid)
        totals(workdir, pid)  # the warm-up's, discarded
        asyncio.run(load(port, f"/v1/session/{SESSION_ID}", args.count))
        spent = totals(workdir, pid)
        print(f"{args.app or 'naftiko' + (' +metrics' if args.metrics else '')} ({args.source or 'this checkout'}): {spent / args.count / 1000:.1f}k instructions per request "
              f"(callgrind, all threads, {args.count} requests at c=32 after {args.warm})")
        if os.environ.get("KEEP_DUMPS"):
            print(f"dumps in {workdir}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
