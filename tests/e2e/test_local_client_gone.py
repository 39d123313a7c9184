"""A client that goes away before its answer (a browser navigating on, a script timing out) costs the
local server nothing: no traceback printed, and the next request is served."""

from __future__ import annotations

import socket
import struct
from urllib.parse import urlsplit

import pytest
import requests

from dora_local.server import LocalRuntime

TIMEOUT = 30


def _reset_after_request(url: str, path: str) -> None:
    """Send a request and close the connection with a TCP reset, without reading the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_client_gone_before_its_answer_prints_no_traceback(
    local: LocalRuntime, capfd: pytest.CaptureFixture[str]
) -> None:
    for _ in range(20):  # the dashboard's bundle is large enough that writing it meets the reset
        _reset_after_request(local.url, "/app/app.js")
    assert requests.get(f"{local.url}/health", timeout=TIMEOUT).status_code == 200
    printed = capfd.readouterr().err
    assert "Traceback" not in printed
    assert "BrokenPipeError" not in printed and "ConnectionResetError" not in printed
