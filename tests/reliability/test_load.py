"""Load: 20k requests at concurrency 64 through the Sessions capability, then a SIGTERM under load.

The upstream is the fault server's echo, run as its own process on loopback. The client is aiohttp
with its silent retry of idempotent requests on reused connections turned off, so every reset
would be seen. A request counts as lost unless it completed with 2xx or its connection was
refused at connect (after SIGTERM, the listener is closed).
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.support.load import EchoProcesses, Tally, client, worker

from .harness import VAPI, Naftiko

REQUESTS = 20_000
CONCURRENCY = 64


@pytest.fixture(scope="module")
def echo_process():
    """The echo upstream in its own interpreter; yields a factory taking the answer delay."""
    with EchoProcesses() as start:
        yield start


def runtime_for(upstream_url: str) -> Naftiko:
    return Naftiko(VAPI, "--base-uri", f"sessions-sessions={upstream_url}", verbose=False)


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
