"""Operations tests: a small REST-only capability (fast to start) written to a temp directory,
served by real `naftiko run` processes against the fault server's echo on a real socket."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from tests.reliability.faults import FaultServer
from tests.support.servers import Proc, naftiko, wait_http

# `/items/{id}` calls the upstream and answers {version, target}; `/version` answers from the file alone.
CAPABILITY = """naftiko: 1.0.0-alpha2
info: {{label: ops test}}
binds:
- namespace: settings
  location: file:///./settings.env
  keys: {{EDITION: EDITION}}
capability:
  consumes:
  - type: http
    namespace: echo
    baseUri: http://127.0.0.1:9
    resources:
    - path: {prefix}/items/{{{{id}}}}
      name: items
      operations:
      - {{method: GET, name: get-item, inputParameters: [{{name: id, in: path}}]}}
  exposes:
  - type: rest
    namespace: {namespace}
    port: {port}
{extra}    resources:
    - path: /items/{{id}}
      operations:
      - method: GET
        call: echo.get-item
        with: {{id: rest.id}}
        outputParameters:
        - type: object
          properties:
            version: {{type: string, value: {version}}}
            target: {{type: string, mapping: $.target}}
    - path: /version
      operations:
      - method: GET
        outputParameters:
        - {{name: version, type: string, value: {version}}}
        - {{name: edition, type: string, value: '{{{{EDITION}}}}'}}
"""


def capability(version: str = "v1", *, port: int = 8080, namespace: str = "api", prefix: str = "", extra: str = "") -> str:
    """The test capability's text; `extra` is YAML added to the exposure (4-space indented)."""
    return CAPABILITY.format(version=version, port=port, namespace=namespace, prefix=prefix, extra=extra)


def write(path: Path, text: str) -> None:
    """Replace a file the way editors do: a new file renamed over the old one (an atomic save)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def cap_dir(tmp_path: Path) -> Path:
    """A directory with `cap.yaml` (v1) and its bind file `settings.env`."""
    (tmp_path / "settings.env").write_text("EDITION=first\n")
    write(tmp_path / "cap.yaml", capability())
    return tmp_path


@pytest.fixture(scope="module")
def upstream():
    with FaultServer() as server:
        yield server


def eventually(check: Callable[[], object], timeout: float = 10, what: str = "the condition") -> object:
    """Poll `check` until it returns something truthy (and return it), failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def get(url: str, **kwargs) -> httpx.Response:
    """One request on a fresh connection (a new connection may land on any worker)."""
    return httpx.get(url, timeout=10, **kwargs)


def start(*args: object, port: int, env: dict[str, str] | None = None) -> Proc:
    """`naftiko run ARGS` (REST-only capabilities start in well under a second), once `/readyz` is 200."""
    proc = naftiko(["run", *(str(a) for a in args)], env=env, ports_to_wait=[port])
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=20, ok=lambda status: status == 200, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return proc
