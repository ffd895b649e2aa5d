"""TLS on every HTTP listener (`--ssl-certfile`, `--ssl-keyfile`, `--ssl-ca-certs`), with
certificates generated for the test by a throwaway CA (trustme)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.servers import free_port, naftiko

from .conftest import capability, eventually, write
from .test_multi_file import run_cli


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    for blob in server.cert_chain_pems[1:]:
        blob.write_to_path(folder / "cert.pem", append=True)
    server.private_key_pem.write_to_path(folder / "key.pem")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(folder / "client-ca.pem")
    client_ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(folder / "client.pem")
    ca.issue_cert("stranger@example.com").private_key_and_cert_chain_pem.write_to_path(folder / "stranger.pem")
    return folder


def serve_tls(cap_dir: Path, pki: Path, *extra: str):
    port = free_port()
    write(cap_dir / "cap.yaml", capability(port=port))
    proc = naftiko(["run", str(cap_dir / "cap.yaml"), "--ssl-certfile", str(pki / "cert.pem"), "--ssl-keyfile", str(pki / "key.pem"), *extra],
                   ports_to_wait=[port])
    return proc, f"https://127.0.0.1:{port}"


def test_every_listener_serves_https_with_the_given_certificate(cap_dir: Path, pki: Path):
    proc, url = serve_tls(cap_dir, pki)
    with proc:
        verified = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        eventually(lambda: httpx.get(f"{url}/readyz", verify=verified).status_code == 200, what="readiness over TLS")
        assert httpx.get(f"{url}/version", verify=verified).json()["version"] == "v1"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/version")  # the system's CAs do not know the test CA: the certificate is really checked
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url.replace("https:", "http:") + "/version")  # no plain HTTP on a TLS listener
        assert proc.stop() == 0
    assert f"REST 'api' on {url}" in proc.stderr_text()


def test_client_certificates_are_required_with_ssl_ca_certs(cap_dir: Path, pki: Path):
    proc, url = serve_tls(cap_dir, pki, "--ssl-ca-certs", str(pki / "client-ca.pem"))
    with proc:
        def client(cert: str | None) -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
            if cert:
                context.load_cert_chain(str(pki / cert))
            return context

        eventually(lambda: httpx.get(f"{url}/readyz", verify=client("client.pem")).status_code == 200, what="readiness over mTLS")
        for refused in (None, "stranger.pem"):  # no certificate, or one the client CA did not sign
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                httpx.get(f"{url}/version", verify=client(refused))
        assert proc.stop() == 0


def test_unusable_tls_files_are_usage_errors_naming_the_flag(cap_dir: Path, pki: Path):
    result = run_cli(cap_dir / "cap.yaml", "--ssl-certfile", pki / "cert.pem", "--ssl-keyfile", pki / "ca.pem")
    assert result.returncode == 2
    assert f"naftiko: --ssl-certfile {pki / 'cert.pem'} / --ssl-keyfile {pki / 'ca.pem'}: cannot use this certificate and key" in result.stderr
    result = run_cli(cap_dir / "cap.yaml", "--ssl-certfile", pki / "missing.pem")
    assert (result.returncode, result.stderr.strip()) == (2, f"naftiko: --ssl-certfile {pki / 'missing.pem'}: no such file")
    result = run_cli(cap_dir / "cap.yaml", "--ssl-keyfile", pki / "key.pem")
    assert (result.returncode, result.stderr.strip()) == (2, "naftiko: --ssl-keyfile and --ssl-ca-certs need --ssl-certfile")
