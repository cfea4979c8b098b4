"""Real receivers for notification tests: an SMTP server (aiosmtpd) that requires STARTTLS
with a self-signed certificate and AUTH LOGIN, and an HTTP server (http.server in a thread)
that records webhook requests and checks their HMAC-SHA256 signature on its own (it does not
reuse the code under test)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.servers import free_port

SMTP_USER = "clpm-mailer"
SMTP_PASSWORD = "s3cret-mail"
WEBHOOK_SECRET = b"webhook-test-key"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost / 127.0.0.1 and its key (PEM files), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "smtp-cert.pem"
    key_file = directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class ReceivedMail:
    message: Message
    recipients: list[str]
    tls: bool
    login: str | None


@dataclass
class SmtpServer:
    """aiosmtpd on a loopback port; STARTTLS required before AUTH, AUTH required to send."""

    host: str
    port: int
    ca_file: Path
    received: list[ReceivedMail] = field(default_factory=list)
    fail_next: int = 0
    """Answer the next n messages with a temporary failure (451)."""

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        login = session.auth_data.login.decode() if session.authenticated else None
        self.received.append(
            ReceivedMail(
                message_from_bytes(envelope.content),  # type: ignore[arg-type]
                list(envelope.rcpt_tos),
                session.ssl is not None,
                login,
            )
        )
        return "250 OK"


def _authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    cert_file, key_file = self_signed_certificate(tmp_path_factory.mktemp("smtp"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = SmtpServer("127.0.0.1", free_port(), cert_file)
    controller = Controller(
        server,
        hostname=server.host,
        port=server.port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class WebhookRequest:
    path: str
    body: dict[str, Any]
    idempotency_key: str | None
    signature_valid: bool


@dataclass
class WebhookReceiver:
    """Records POSTs; answers ``statuses`` in turn (then 200); may hold one request."""

    port: int
    requests: list[WebhookRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hold_request: int | None = None
    """Number (1-based) of the request to hold ``hold_s`` before answering."""
    hold_s: float = 0.0
    holding: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivered_keys(self) -> list[str | None]:
        return [r.idempotency_key for r in self.requests]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.statuses.clear()
            self.hold_request = None
            self.holding.clear()


def _valid(header: str | None, body: bytes) -> bool:
    if not header:
        return False
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = parts.get("t", "")
    expected = hmac.new(
        WEBHOOK_SECRET, timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.requests.append(
                    WebhookRequest(
                        self.path,
                        json.loads(body),
                        self.headers.get("Idempotency-Key"),
                        _valid(self.headers.get("X-CLPM-Signature"), body),
                    )
                )
                number = len(receiver.requests)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            if receiver.hold_request == number:
                receiver.holding.set()
                time.sleep(receiver.hold_s)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
