"""`naftiko run` as a subprocess (tests/support/servers.py), with its logs and answers kept.

Every runtime started here logs at debug level with access logs and a known API key, and every
response body read through `Naftiko.request` is kept, so each test module can end by asserting
that the key appears in no log line and no body (the secrets requirement of issue 6).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Sequence

import httpx

from tests.support.servers import REPO_ROOT, free_port, naftiko, wait_http

VAPI = REPO_ROOT / "capabilities" / "vapi-sessions.yaml"
VAPI_EXPOSURES = ("sessions-sessions-rest", "sessions-sessions-mcp")
SECRET = "sk-test-0f3a9c1e7b2d4a6f8e5c"  # the VAPI_API_KEY every runtime here is given


class Naftiko:
    """One `naftiko run FILE ARGS...`, each exposure on a free port (the first one is `url`)."""

    def __init__(self, file: Path, *args: str, exposures: Sequence[str] = VAPI_EXPOSURES,
                 env: dict[str, str] | None = None, verbose: bool = True):
        self.ports = {ns: free_port() for ns in exposures}
        logging = ["--log-level", "debug", "--access-log"] if verbose else ["--log-level", "warning"]
        ports = [arg for ns, port in self.ports.items() for arg in ("--port", f"{ns}={port}")]
        self.proc = naftiko(["run", str(file), *logging, *ports, *args], env={"VAPI_API_KEY": SECRET, **(env or {})},
                            ports_to_wait=list(self.ports.values()))
        self.port = next(iter(self.ports.values()))
        self.url = f"http://127.0.0.1:{self.port}"
        # ports accept connections once bound; the process is ready when every exposure serves
        wait_http(f"{self.url}/readyz", timeout=30, ok=lambda status: status == 200, proc=self.proc)
        self.bodies: list[bytes] = []
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def log(self) -> str:
        return self.proc.stderr_text()

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request on the shared keep-alive client; the body is kept for the secrets check."""
        response = self.client.request(method, path, **kwargs)
        self.keep(response.content)
        return response

    def keep(self, body: bytes) -> None:
        self.bodies.append(body)

    @property
    def rss_mb(self) -> float:
        """The process's resident memory now, in MB (Linux /proc)."""
        for line in Path(f"/proc/{self.proc.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS line")

    @property
    def open_fds(self) -> int:
        """File descriptors the process holds now (sockets included)."""
        return len(list(Path(f"/proc/{self.proc.popen.pid}/fd").iterdir()))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """The exit code once the process ended on its own (after a signal sent by the test)."""
        self.proc.wait(timeout)
        return self.proc.stop()

    def stop(self) -> int:
        """SIGTERM and wait: the exit code of a graceful stop."""
        self.client.close()
        return self.proc.stop()

    def assert_no_secret(self) -> None:
        """The key appears in no log line and no response body this runtime produced."""
        lines = self.log.splitlines()
        leaks = [line for line in lines if SECRET in line]
        assert not leaks, f"the API key leaked into {len(leaks)} log line(s), e.g. {leaks[0]!r}"
        bodies = [b for b in self.bodies if SECRET.encode() in b]
        assert not bodies, f"the API key leaked into {len(bodies)} response body(ies), e.g. {bodies[0][:200]!r}"
        assert len(lines) > 5, "the runtime logged almost nothing: the check would prove nothing"
