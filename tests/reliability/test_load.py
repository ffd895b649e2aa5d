"""Load: 20k requests at concurrency 64 through the Sessions capability, then a SIGTERM under load.

The upstream is the fault server's echo, run as its own process on loopback. The client is aiohttp
with its silent retry of idempotent requests on reused connections turned off, so every reset
would be seen. A request counts as lost unless it completed with 2xx or its connection was
refused at connect (after SIGTERM, the listener is closed).
"""

from __future__ import annotations

import asyncio
import errno
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from .harness import VAPI, Naftiko

REQUESTS = 20_000
CONCURRENCY = 64
FAULTS = Path(__file__).with_name("faults.py")


@pytest.fixture(scope="module")
def echo_process():
    """The echo upstream in its own interpreter; yields a factory taking the answer delay."""
    started: list[subprocess.Popen] = []

    def start(delay: float = 0.0) -> str:
        proc = subprocess.Popen([sys.executable, str(FAULTS), "--delay", str(delay)], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None
        return f"http://127.0.0.1:{int(proc.stdout.readline())}"

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(5)


def runtime_for(upstream_url: str) -> Naftiko:
    return Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream_url}", verbose=False)


class Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.refused = 0
        self.failures: list[str] = []


async def worker(session: aiohttp.ClientSession, base: str, tally: Tally, budget: list[int], stop_on_refusal: bool) -> None:
    while budget[0] > 0:
        budget[0] -= 1
        n = budget[0]
        try:
            if n % 4 == 0:
                request = session.post(f"{base}/v1/session", json={"name": f"s{n}"})
            elif n % 4 == 1:
                request = session.get(f"{base}/v1/session/id-{n}")
            else:
                request = session.get(f"{base}/v1/session", params={"limit": "10", "name": f"n{n}"})
            async with request as response:
                body = await response.read()
                if 200 <= response.status < 300 and body:
                    tally.ok += 1
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


def test_20k_requests_at_concurrency_64_without_errors(echo_process):
    runtime = runtime_for(echo_process())
    tally = Tally()

    async def run() -> float:
        async with client(CONCURRENCY) as session:
            budget = [REQUESTS]
            started = time.perf_counter()
            await asyncio.gather(*(worker(session, runtime.url, tally, budget, False) for _ in range(CONCURRENCY)))
            return time.perf_counter() - started

    elapsed = asyncio.run(run())
    assert runtime.stop() == 0
    print(f"\nload: {REQUESTS} requests, concurrency {CONCURRENCY}: {elapsed:.1f}s, {REQUESTS / elapsed:,.0f} req/s, "
          f"{tally.ok} ok, {len(tally.failures)} errors")
    assert tally.failures == [] and tally.ok == REQUESTS


def test_sigterm_under_load_loses_no_accepted_request(echo_process):
    runtime = runtime_for(echo_process(delay=0.02))  # ~64 requests always in flight upstream
    tally = Tally()

    async def run() -> None:
        async with client(CONCURRENCY) as session:
            budget = [10 ** 9]
            workers = [asyncio.create_task(worker(session, runtime.url, tally, budget, True)) for _ in range(CONCURRENCY)]
            while tally.ok < 2_000:
                await asyncio.sleep(0.01)
            runtime.signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*workers), 20)

    asyncio.run(run())
    code = runtime.wait(20)
    print(f"\nSIGTERM under load: {tally.ok} completed, {tally.refused} refused at connect, {len(tally.failures)} lost")
    assert tally.failures == []
    assert tally.refused == CONCURRENCY and tally.ok >= 2_000
    assert code == 0
