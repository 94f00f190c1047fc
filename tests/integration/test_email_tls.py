"""The mailer against a real SMTP server (aiosmtpd) speaking STARTTLS or implicit TLS with a
self-signed certificate made here, with AUTH: sent when the CA is given, refused otherwise."""

from __future__ import annotations

import asyncio
import datetime
import email
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from revenge.config import load_settings
from revenge.modules.email import build_message, open_mailer
from tests.e2e.conftest import free_port

USER, PASSWORD = "mailer", "s3cret-pass"


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


Server = tuple["Inbox", int, Path, str]
"""The inbox, the port, the CA file, and the mode (tls, starttls, plain)."""


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[email.message.Message, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((email.message_from_bytes(envelope.content), session.auth_data))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.fixture
def server(
    request: pytest.FixtureRequest, certificate: tuple[Path, ssl.SSLContext]
) -> Iterator[Server]:
    mode: str = request.param
    cert, context = certificate
    inbox, port = Inbox(), free_port()
    options: dict[str, Any] = {"authenticator": _authenticator, "auth_require_tls": True}
    if mode == "tls":
        # aiosmtpd's auth_require_tls looks for STARTTLS only; this connection is TLS anyway
        options.update(ssl_context=context, auth_require_tls=False)
    elif mode == "starttls":
        options.update(tls_context=context, require_starttls=True)
    else:
        options = {}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield inbox, port, cert, mode
    finally:
        controller.stop()


def _settings(port: int, security: str, ca: Path | None, password: str = PASSWORD) -> Any:
    env = {
        "REVENGE_EMAIL__HOST": "127.0.0.1",
        "REVENGE_EMAIL__PORT": str(port),
        "REVENGE_EMAIL__SECURITY": security,
        "REVENGE_EMAIL__USERNAME": USER,
        "REVENGE_EMAIL__PASSWORD": password,
        "REVENGE_EMAIL__TIMEOUT": "5",
    }
    if ca is not None:
        env["REVENGE_EMAIL__CA_FILE"] = str(ca)
    return load_settings(env=env).email


async def _send(settings: Any, key: str = "k1") -> None:
    mailer = await open_mailer(settings)
    try:
        await mailer.send(build_message("r@example.org", "ann@example.org", "Hi", "body", key))
        await mailer.send(build_message("r@example.org", "bob@example.org", "Hi", "body", "k2"))
        await mailer.check()  # NOOP on the open connection
    finally:
        await mailer.close()
    assert not mailer.connected


@pytest.mark.parametrize("server", ["tls", "starttls"], indirect=True)
def test_sends_over_tls_with_auth_when_the_ca_is_known(server: Server) -> None:
    inbox, port, cert, mode = server
    asyncio.run(_send(_settings(port, mode, cert)))
    assert [m["To"] for m, _ in inbox.messages] == ["ann@example.org", "bob@example.org"]
    assert all(auth == USER.encode() for _, auth in inbox.messages)


@pytest.mark.parametrize("server", ["tls", "starttls"], indirect=True)
def test_an_unknown_certificate_is_refused(server: Server) -> None:
    inbox, port, _, mode = server
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError, OSError)) as refused:
        asyncio.run(_send(_settings(port, mode, None)))
    assert "certificate" in str(refused.value).lower() or isinstance(refused.value, ssl.SSLError)
    assert inbox.messages == []


@pytest.mark.parametrize("server", ["starttls"], indirect=True)
def test_a_wrong_password_is_refused(server: Server) -> None:
    inbox, port, cert, _ = server
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        asyncio.run(_send(_settings(port, "starttls", cert, password="wrong-password")))
    assert inbox.messages == []


@pytest.mark.parametrize("server", ["plain"], indirect=True)
def test_starttls_is_required_not_skipped(server: Server) -> None:
    inbox, port, cert, _ = server
    with pytest.raises(aiosmtplib.SMTPException, match=r"(?i)starttls"):
        asyncio.run(_send(_settings(port, "starttls", cert)))
    assert inbox.messages == []
