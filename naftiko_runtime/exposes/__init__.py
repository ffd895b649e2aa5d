"""The adapters a capability exposes (REST, MCP, skill catalogs, the control port) as ASGI apps."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def asgi3(method: F) -> F:
    """Mark an ASGI `__call__` that returns the inner app's coroutine instead of awaiting it (no
    coroutine frame of its own: bench/instructions.py) as an ASGI 3 app, for servers that tell
    ASGI 2 from 3 by inspecting it (uvicorn's `interface="auto"`)."""
    if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
        return inspect.markcoroutinefunction(method)
    method._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]  # what 3.11 checks
    return method
