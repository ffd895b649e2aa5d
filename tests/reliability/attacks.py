"""Attack clients on raw sockets (loopback only), for the connection-limit tests.

Each helper opens real TCP connections to a runtime and misbehaves the way the review's attack
process did: connect and send nothing, send a head one byte at a time, send part of a body and
stall, send a head far over the size limit. `exchange` sends bytes and reads whatever comes back
until the server closes the connection or the timeout passes.
"""

from __future__ import annotations

import socket
import time


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends before it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closed the connection within `timeout` (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with connect(port, timeout) as sock:
        sock.sendall(data)
        return read_until_closed(sock, timeout)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
