"""Pytest fixtures for the suite. Logic lives in tests/support/servers.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

# Import the helpers as `tests.support.servers` whether pytest is run as `python -m pytest`
# (cwd on sys.path) or as plain `pytest` (only tests/ on sys.path).
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.support.servers import VAPI_SLIM_OPENAPI, EchoUpstream, echo_upstream, prism  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def prism_vapi() -> Iterator[str]:
    """Base URL of one Prism mock on the slim Vapi Sessions OpenAPI, shared by the session."""
    proc, base_url = prism(VAPI_SLIM_OPENAPI)
    with proc:
        yield base_url


@pytest.fixture
def echo() -> Iterator[EchoUpstream]:
    """A fresh echo upstream per test (``echo.base_url``, ``echo.received``, ``echo.respond_with``)."""
    with echo_upstream() as upstream:
        yield upstream
