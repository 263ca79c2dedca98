"""
TLS (issue 14, item 6): ``ssl:`` endpoint strings for the TCP line protocol and for HTTPS/WSS,
with a self-signed certificate the test makes (``cryptography``, a dependency of
``twisted[tls]``), and clients that verify it: a TLS line client and a WSS client.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS

from psicoia import texts
from tests.helpers import LineClient, make_config, port_of, start_service
from tests.wsclient import FrameClient

GREETING_LINES = 3 + len(texts.GREETING_BODY)  # first, body, resume code, last
REPO = Path(__file__).resolve().parent.parent


def self_signed(directory: Path) -> tuple[Path, Path, bytes]:
    """(key file, certificate file, certificate PEM) for localhost and 127.0.0.1, one day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file.write_bytes(cert_pem)
    return key_file, cert_file, cert_pem


def tls_endpoint(port: int, cert_pem: bytes):
    options = optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(cert_pem))
    return wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5))


@pytest_twisted.ensureDeferred
async def test_tls_line_client_and_wss_client_are_answered(tmp_path):
    key, cert, cert_pem = self_signed(tmp_path)
    ssl = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    service = await start_service(make_config(api_key=None, server={
        "tcp": ssl, "websocket": None, "http": ssl}))
    try:
        line = await connectProtocol(tls_endpoint(await port_of(service, "tcp"), cert_pem),
                                     LineClient())
        greeting = await line.wait_lines(GREETING_LINES)
        assert greeting[0].startswith("Usuario-") and "salir" in greeting[-1]
        line.say("hola por TLS")
        lines = await line.wait_lines(GREETING_LINES + 1)
        assert lines[-1].strip()

        http_port = await port_of(service, "http")
        factory = WebSocketClientFactory(f"wss://localhost:{http_port}/ws",
                                         origin=f"https://localhost:{http_port}")
        factory.protocol = FrameClient
        socket = await tls_endpoint(http_port, cert_pem).connect(factory)
        await socket.opened.addTimeout(5, reactor)
        frames = await socket.wait_frames(GREETING_LINES)
        assert frames[0].startswith("Usuario-")
        socket.say("hola por WSS")
        frames = await socket.wait_frames(GREETING_LINES + 1)
        assert frames[-1].strip()
        line.say("salir")
        await line.closed.addTimeout(5, reactor)
        socket.sendClose()
    finally:
        await service.stopService()


def test_the_page_opens_wss_when_loaded_over_https():
    script = (REPO / "web" / "app.js").read_text(encoding="utf-8")
    assert 'location.protocol === "https:" ? "wss://" : "ws://"' in script
