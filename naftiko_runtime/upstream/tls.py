"""Client certificates (mutual TLS) for an upstream: the PEM material its transport is built with.

`authentication: {type: certificate, certificate, privateKey, passphrase, caBundle}`: each of
certificate, privateKey and caBundle is PEM text (usually from a bind) or the path of a PEM file
(relative to the capability file). An encrypted private key is decrypted here, at startup, with
`passphrase`, so the transport gets plain PEM data it can hand to any TLS stack (request.TlsPlan)
and the passphrase is needed nowhere else.
"""

from __future__ import annotations

import re
from pathlib import Path

from naftiko_runtime.errors import CompileError
from naftiko_runtime.upstream.request import TlsPlan

_PEM = "-----BEGIN "
_CERTIFICATES = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _pem(value: str, what: str, base_dir: Path, namespace: str) -> bytes:
    if _PEM in value:
        return value.encode()
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CompileError(f"consumes '{namespace}': the {what} is neither PEM text nor a readable file ({path}: {exc.strerror or exc})", "auth-certificate") from None
    if _PEM.encode() not in data:
        raise CompileError(f"consumes '{namespace}': {path} holds no PEM {what} (`-----BEGIN ...`)", "auth-certificate")
    return data


def _plain_key(pem: bytes, passphrase: str, namespace: str) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (what TLS stacks load without a password)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode() if passphrase else None)
    except TypeError:
        raise CompileError(f"consumes '{namespace}': the private key is encrypted; give its `passphrase` (from a bind)", "auth-certificate") from None
    except ValueError:
        raise CompileError(f"consumes '{namespace}': the private key cannot be read (wrong `passphrase`, or not a PEM private key)", "auth-certificate") from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def compile_tls(fields: dict[str, str], base_dir: Path, namespace: str) -> TlsPlan:
    cert = _pem(fields["certificate"], "client certificate", base_dir, namespace)
    key_source = fields.get("privateKey")
    key = _pem(key_source, "private key", base_dir, namespace) if key_source else cert  # a combined PEM file
    ca = (_pem(fields["caBundle"], "CA bundle", base_dir, namespace),) if fields.get("caBundle") else ()
    chain = b"\n".join(_CERTIFICATES.findall(cert))
    if not chain:
        raise CompileError(f"consumes '{namespace}': the client certificate holds no `-----BEGIN CERTIFICATE-----` block", "auth-certificate")
    return TlsPlan(ca_pems=ca, identity_pem=chain + b"\n" + _plain_key(key, fields.get("passphrase", ""), namespace))
