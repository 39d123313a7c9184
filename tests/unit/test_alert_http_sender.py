"""``dal.destinations.HttpSender`` against local servers: the name is resolved once and every address it
resolves to is checked, the connection goes to the checked address while TLS and the ``Host`` header keep the
name, and one deadline bounds the attempt (the lookup included)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dora_insights.dal.destinations import HttpSender
from tests.support.raw_server import RawServer

NAME = "alerts.example.test"


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class TlsServer(RawServer):
    """An HTTPS server with a certificate for ``name``: records the SNI and requests it gets."""

    def __init__(self, directory: Path, name: str) -> None:
        self.cert, key = certificate(directory, name)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, key)
        self.server_names: list[str | None] = []
        self.context.sni_callback = lambda _sock, server_name, _ctx: self.server_names.append(server_name)
        self.requests: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        with self.context.wrap_socket(conn, server_side=True) as tls:
            self.requests.append(_whole_request(tls))
            tls.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")


def _whole_request(conn: ssl.SSLSocket) -> bytes:
    """The request's head and its ``Content-Length`` bytes of body (the client may send them in several
    records: answering and closing before the rest arrived would reset the connection under it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TlsServer]:
    found = TlsServer(tmp_path, NAME)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``NAME`` (and any ``*.example.test``) resolves to 127.0.0.1; every lookup is recorded."""
    real = socket.getaddrinfo
    made: list[str] = []

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(host)
        if str(host).endswith(".example.test"):
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return made


def trusting(server: TlsServer) -> ssl.SSLContext:
    """A client context that trusts ``server``'s certificate (and checks the host name, as deployed)."""
    return ssl.create_default_context(cafile=str(server.cert))


def test_the_connection_goes_to_the_checked_address_with_the_name_for_sni_certificate_and_host(
    server: TlsServer, lookups: list[str]
) -> None:
    sender = HttpSender(2.0, allow_loopback=True, tls=trusting(server))

    sent = sender.post(f"https://{NAME}:{server.port}/hook", b"{}", {"Content-Type": "application/json"})

    assert (sent.status_code, sent.error) == (204, None)
    assert lookups == [NAME]  # resolved once: connecting does not look the name up again
    assert server.server_names == [NAME]
    assert f"Host: {NAME}:{server.port}\r\n".encode() in server.requests[0]
    assert server.requests[0].startswith(b"POST /hook HTTP/1.1\r\n")


def test_a_certificate_for_another_name_is_refused_before_anything_is_sent(
    tmp_path: Path, server: TlsServer, lookups: list[str]
) -> None:
    other = TlsServer(tmp_path, "other.example.test")
    try:
        sender = HttpSender(2.0, allow_loopback=True, tls=trusting(other))
        sent = sender.post(f"https://{NAME}:{other.port}/hook", b"{}", {})
    finally:
        other.close()

    assert sent.status_code is None and "SSLCertVerificationError" in (sent.error or ""), sent
    assert other.requests == []


def test_loopback_is_called_only_when_allowed(server: TlsServer, lookups: list[str]) -> None:
    url = f"https://{NAME}:{server.port}/hook"

    refused = HttpSender(2.0, tls=trusting(server)).post(url, b"{}", {})

    assert refused.status_code is None and "outside the public internet" in (refused.error or "")
    assert server.server_names == []  # never connected


def test_a_lookup_that_hangs_ends_with_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    def hanging(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()

    sent = HttpSender(0.2).post("https://alerts.example.com/hook", b"{}", {})

    assert time.monotonic() - started < 0.6
    assert sent.status_code is None and (sent.error or "").startswith("TimeoutError"), sent


def test_a_url_it_cannot_send_is_a_result_not_an_exception() -> None:
    sent = HttpSender(0.2).post("https://alerts.example.com/\x7f", b"{}", {})

    assert sent.status_code is None and "UrlNotAllowedError" in (sent.error or "")


def test_a_header_that_would_split_the_request_is_a_result_not_an_exception() -> None:
    sent = HttpSender(0.5, allow_loopback=True).post("http://127.0.0.1:9/hook", b"{}", {"X-A": "b\r\nX-B: c"})

    assert sent.status_code is None and "Invalid header value" in (sent.error or ""), sent
