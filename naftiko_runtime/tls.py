"""TLS on every HTTP listener: `--ssl-certfile`, `--ssl-keyfile`, `--ssl-ca-certs` (docs/deploy.md).

One server context is built at startup, before anything listens, so a missing file, a key that
does not match the certificate or an encrypted key is a usage error naming the flag, not a
traceback from the first handshake. Every listener shares the context; a reload loads the files
into it again, so a renewed certificate is used from the next handshake on without closing a
listener (open connections keep the certificate they negotiated).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from naftiko_runtime.errors import UsageError


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path
    keyfile: Path | None = None  # None: the key is in the certificate file
    ca_certs: Path | None = None  # client certificates signed by one of these are required (mutual TLS)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.certfile, self.keyfile, self.ca_certs) if p is not None)


class Tls:
    """The server context of every listener, and how to reload it."""

    def __init__(self, files: TlsFiles):
        self.files = files
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # TLS 1.2+, the ssl module's safe defaults
        self.load()

    def load(self) -> None:
        """(Re)read the files into the shared context; UsageError naming the flag and the fix."""
        files = self.files
        for flag, path in (("--ssl-certfile", files.certfile), ("--ssl-keyfile", files.keyfile), ("--ssl-ca-certs", files.ca_certs)):
            if path is not None and not path.is_file():
                raise UsageError(f"{flag} {path}: no such file")
        try:
            self.context.load_cert_chain(files.certfile, files.keyfile, password=_no_password)
        except ssl.SSLError as exc:
            raise UsageError(f"--ssl-certfile {files.certfile}{f' / --ssl-keyfile {files.keyfile}' if files.keyfile else ''}: "
                             f"cannot use this certificate and key ({exc.reason or exc}); give a PEM certificate chain and its unencrypted private key") from None
        if files.ca_certs is not None:
            try:
                self.context.load_verify_locations(cafile=files.ca_certs)
            except ssl.SSLError as exc:
                raise UsageError(f"--ssl-ca-certs {files.ca_certs}: not a PEM file of CA certificates ({exc.reason or exc})") from None
            self.context.verify_mode = ssl.CERT_REQUIRED


def _no_password() -> bytes:
    raise UsageError("the private key is encrypted; give --ssl-keyfile an unencrypted key (e.g. from a Kubernetes TLS Secret)")
