"""Shared settings for every Python server in the benchmark: one uvicorn worker, uvloop, httptools.

`naftiko run` builds its own uvicorn servers (naftiko_runtime/runtime.py) on `uvloop.run` with
uvicorn's `http="auto"`, which picks httptools when it is installed; the baselines here are pinned
to the same loop and parser explicitly, with the same server options (keep-alive, headers, no
proxy-headers middleware), so every Python server is measured on equal terms.
"""

from __future__ import annotations

import argparse
from typing import Any

UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "workers": 1,
    "log_level": "warning",
    "access_log": False,
    "server_header": False,
    "date_header": True,
    "timeout_keep_alive": 30,
    # as `naftiko run` (runtime.py): no X-Forwarded-* middleware on every request. The stricter bar:
    # uvicorn's default (True) costs the baselines a middleware call per request.
    "proxy_headers": False,
    "backlog": 2048,
}


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    return p


def serve(app: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, **UVICORN_SETTINGS)
