"""Bounded load against a running `naftiko run`, counting every failure a client could see.

The client is aiohttp with its silent retry of idempotent requests on reused connections turned
off, so every reset is seen. A request counts as lost unless it completed with 2xx (with a body)
or, when the test expects the listener to close, its connection was refused at connect.

The echo upstream (tests/reliability/faults.py) runs in its own interpreter, so it does not share
the load generator's GIL.
"""

from __future__ import annotations

import asyncio
import errno
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import aiohttp

FAULTS = Path(__file__).resolve().parents[1] / "reliability" / "faults.py"


class EchoProcesses:
    """Context manager: a factory starting echo upstreams (answer delay in seconds) -> base URL."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def __enter__(self) -> Callable[..., str]:
        return self.start

    def start(self, delay: float = 0.0) -> str:
        proc = subprocess.Popen([sys.executable, str(FAULTS), "--delay", str(delay)], stdout=subprocess.PIPE, text=True)
        self.started.append(proc)
        assert proc.stdout is not None
        return f"http://127.0.0.1:{int(proc.stdout.readline())}"

    def __exit__(self, *exc: object) -> None:
        for proc in self.started:
            proc.terminate()
            proc.wait(5)


class Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.refused = 0
        self.failures: list[str] = []
        self.bodies: list[bytes] = []  # kept only when a worker is asked to (`keep=True`)


Request = Callable[[aiohttp.ClientSession, str, int], Any]  # (session, base URL, n) -> a request context


def vapi_mix(session: aiohttp.ClientSession, base: str, n: int) -> Any:
    """The Sessions capability's calls: a create, a read, and two listings out of four."""
    if n % 4 == 0:
        return session.post(f"{base}/v1/session", json={"name": f"s{n}"})
    if n % 4 == 1:
        return session.get(f"{base}/v1/session/id-{n}")
    return session.get(f"{base}/v1/session", params={"limit": "10", "name": f"n{n}"})


async def worker(session: aiohttp.ClientSession, base: str, tally: Tally, budget: list[int], stop_on_refusal: bool,
                 request: Request = vapi_mix, keep: bool = False) -> None:
    """Send requests until `budget[0]` (shared by every worker) runs out."""
    while budget[0] > 0:
        budget[0] -= 1
        try:
            async with request(session, base, budget[0]) as response:
                body = await response.read()
                if 200 <= response.status < 300 and body:
                    tally.ok += 1
                    if keep:
                        tally.bodies.append(body)
                else:
                    tally.failures.append(f"HTTP {response.status}: {body[:120]!r}")
        except aiohttp.ClientConnectorError as exc:
            if exc.os_error is not None and exc.os_error.errno == errno.ECONNREFUSED and stop_on_refusal:
                tally.refused += 1
                return
            tally.failures.append(repr(exc))
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            tally.failures.append(repr(exc))


def client(concurrency: int) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=30))
    session._retry_connection = False  # count every reset: no silent retry on a reused connection
    return session
