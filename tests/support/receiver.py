"""A local HTTP receiver for alert deliveries: records every request and answers the statuses it is given."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request the receiver got (header names in lower case, the raw body)."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers ``statuses`` in turn (the last one repeats); a path in ``by_path`` has answers of its own."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=lambda: [200])
    by_path: dict[str, list[int]] = field(default_factory=dict)

    def answer(self, path: str) -> int:
        answers = self.by_path.get(path, self.statuses)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def at(self, path: str) -> list[Received]:
        """The requests made to ``path``, in order."""
        return [r for r in list(self.requests) if r.path == path]


def signed_with(secret: str, request: Received) -> bool:
    """The receiver's check, as docs/API.md tells users to write it (clock: the request's own time)."""
    from dora_insights.domain.alert_destinations import verify

    stamp = int(request.headers["x-dora-timestamp"])
    return verify(secret, request.headers["x-dora-signature"], request.body, now=stamp)


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1 for the block."""
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="alert-receiver", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
