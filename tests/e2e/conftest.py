"""Start `naftiko run` as a real subprocess for the end-to-end tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.servers import Proc, free_port, naftiko

SEED = "capabilities/vapi-sessions.yaml"
REST_NS = "sessions-sessions-rest"
MCP_NS = "sessions-sessions-mcp"
API_KEY = "test-key-1f6b2c9e"


def start_seed(*extra: str, env: dict[str, str | None] | None = None) -> tuple[Proc, str]:
    """`naftiko run` on the seed capability, every exposure on a free port; returns (proc, REST url)."""
    rest, mcp = free_port(), free_port()
    args = ["run", SEED, "--port", f"{REST_NS}={rest}", "--port", f"{MCP_NS}={mcp}", *extra]
    proc = naftiko(args, env={"VAPI_API_KEY": API_KEY, **(env or {})}, ports_to_wait=[rest])
    return proc, f"http://127.0.0.1:{rest}"


@pytest.fixture(scope="module")
def seed_on_prism(prism_vapi: str) -> Iterator[str]:
    proc, url = start_seed("--base-uri", f"sessions-sessions={prism_vapi}")
    with proc:
        yield url
