"""Fixtures of the reliability tests: a fault-injecting upstream per module."""

from __future__ import annotations

import pytest

from .faults import FaultServer


@pytest.fixture(scope="module")
def upstream():
    with FaultServer() as server:
        yield server
