"""TLS to upstreams (custom CAs, client certificates) and proxies from the environment, on real sockets.

A test CA (trustme) signs the upstream's certificate for 127.0.0.1; the upstream is the fault
server of the reliability tests behind TLS, so what it received can be checked.
"""

from __future__ import annotations

import ssl

import anyio
import pytest
import trustme

from naftiko_runtime.errors import UpstreamUnreachable
from naftiko_runtime.settings import Settings
from naftiko_runtime.upstream.client import HttpTransport
from naftiko_runtime.upstream.request import AuthPlan, Prepared, TlsPlan, Upstream
from tests.reliability.faults import FaultServer
from tests.reliability.harness import VAPI, Naftiko


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def server_context(ca: trustme.CA, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def get(upstream: Upstream, url: str):
    transport = HttpTransport(upstream)

    async def go():
        try:
            return await transport.send(Prepared("GET", url + "/session", {}, None, [], False))
        finally:
            await transport.close()

    return anyio.run(go)


def upstream_with(tls: TlsPlan | None) -> Upstream:
    return Upstream("vault", "", AuthPlan(None, None, "vault"), Settings(retries=0), tls)  # type: ignore[arg-type]


def test_a_custom_ca_and_a_client_certificate(ca):
    client_ca = trustme.CA()
    identity = client_ca.issue_cert("naftiko-client")
    with FaultServer(ssl_context=server_context(ca, client_ca)) as server:
        pem = identity.private_key_and_cert_chain_pem.bytes()
        response = get(upstream_with(TlsPlan(ca_pems=(ca.cert_pem.bytes(),), identity_pem=pem)), server.url)
        assert response.status == 200 and server.requests[-1].target == "/session"
        with pytest.raises(UpstreamUnreachable):  # the server asks for a client certificate
            get(upstream_with(TlsPlan(ca_pems=(ca.cert_pem.bytes(),))), server.url)
        with pytest.raises(UpstreamUnreachable, match="certificate"):  # the CA is not trusted
            get(upstream_with(None), server.url)


def test_naftiko_run_trusts_ssl_cert_file_and_names_an_untrusted_certificate(ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with FaultServer(ssl_context=server_context(ca)) as server:
        runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={server.url}",
                          env={"SSL_CERT_FILE": str(bundle)}, verbose=False)
        try:
            response = runtime.request("GET", "/v1/session/abc")
            assert response.status_code == 200 and response.json()["target"] == "/session/abc"
        finally:
            assert runtime.stop() == 0
        runtime = Naftiko(VAPI, "--base-uri", f"sessions-sessions={server.url}",
                          env={"SSL_CERT_FILE": None}, verbose=False)
        try:
            response = runtime.request("GET", "/v1/session/abc")
            assert response.status_code == 502 and "certificate" in response.json()["detail"]
        finally:
            assert runtime.stop() == 0


def test_proxies_come_from_the_environment():
    with FaultServer() as proxy:
        runtime = Naftiko(VAPI, "--base-uri", "sessions-sessions=http://upstream.invalid/api",
                          env={"HTTP_PROXY": proxy.url, "NO_PROXY": ""}, verbose=False)
        try:
            response = runtime.request("GET", "/v1/session/a%2Fb")
            assert response.status_code == 200
            assert proxy.requests[-1].target == "http://upstream.invalid/api/session/a%2Fb"  # absolute form, as sent to a proxy
        finally:
            assert runtime.stop() == 0
